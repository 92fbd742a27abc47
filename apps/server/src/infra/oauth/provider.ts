/**
 * An outside identity provider, as the sign-in flows use it. Each implementation wraps the
 * `openid-client` library (OpenID Connect discovery, PKCE, state, nonce and ID-token
 * checks; plain OAuth 2.0 for GitHub and Facebook); none speaks the protocol by hand.
 */
import type { CustomFetchOptions } from 'openid-client';
import { asLineOfText, firstCharacters } from '../text.ts';

/** Every sign-in provider the server knows. */
export const PROVIDER_IDS = ['google', 'github', 'facebook', 'apple', 'oidc'] as const;
/** A sign-in provider: google, github, facebook, apple or oidc (any OpenID Connect provider). */
export type ProviderId = (typeof PROVIDER_IDS)[number];

/**
 * openid-client, loaded at its first use: only sign-ins use it, and only once a provider is
 * configured (providers.ts), so a server without providers never loads it.
 */
const openidClient = () => import('openid-client');

/** A PKCE pair: the verifier stays with whoever proves it later, the S256 challenge goes ahead. */
export async function newPkce(): Promise<{ verifier: string; challenge: string }> {
  const { randomPKCECodeVerifier, calculatePKCECodeChallenge } = await openidClient();
  const verifier = randomPKCECodeVerifier();
  return { verifier, challenge: await calculatePKCECodeChallenge(verifier) };
}

/** The S256 challenge of a PKCE verifier. */
export async function calculatePKCECodeChallenge(verifier: string): Promise<string> {
  return (await openidClient()).calculatePKCECodeChallenge(verifier);
}

/** Who signed in, as the provider vouches for it (see `normalizeIdentity`). */
export interface ProviderIdentity {
  /** The provider's stable id for the person: 1-255 characters. */
  subject: string;
  /** A valid address, lower-cased, or null. */
  email: string | null;
  /** Only true when the provider asserts it (an OIDC `email_verified`, GitHub's verified flag). */
  emailVerified: boolean;
  /** Up to 100 characters, or null. */
  name: string | null;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what they find
const CONTROL = /[\u0000-\u001F\u007F]/;

/**
 * What a provider sent, made safe to store: a subject that is a bounded string, an email
 * that is an address (else none), a name that fits the users table (else none). A subject
 * that is missing or unusable makes the answer unusable.
 */
export function normalizeIdentity(raw: {
  subject: unknown;
  email: unknown;
  emailVerified: unknown;
  name: unknown;
}): ProviderIdentity {
  const subject = typeof raw.subject === 'number' ? String(raw.subject) : raw.subject;
  if (
    typeof subject !== 'string' ||
    subject.length === 0 ||
    subject.length > 255 ||
    CONTROL.test(subject) ||
    // Half of a surrogate pair is stored as U+FFFD: two subjects would become one.
    !subject.isWellFormed()
  ) {
    throw new MalformedIdentityError('the provider gave no usable subject');
  }
  const email = typeof raw.email === 'string' ? raw.email.trim().toLowerCase() : '';
  const validEmail = email.length <= 320 && EMAIL.test(email) && !CONTROL.test(email) ? email : null;
  return {
    subject,
    email: validEmail,
    // Apple sends "true" as a string.
    emailVerified: validEmail !== null && (raw.emailVerified === true || raw.emailVerified === 'true'),
    name: identityName(raw.name),
  };
}

/**
 * A name a provider sent, fit for the users table and held to what the API takes for a name
 * (`asLineOfText`: no control or invisible formatting characters), up to 100 characters, else none.
 */
export function identityName(raw: unknown): string | null {
  const name = typeof raw === 'string' ? asLineOfText(firstCharacters(asLineOfText(raw), 100)) : '';
  return name || null;
}

export interface AuthorizationRequest {
  redirectUri: string;
  state: string;
  codeChallenge: string;
  /** Sent to OpenID Connect providers, checked in their ID token. */
  nonce: string;
}

export interface CallbackInput {
  /** The callback URL the provider was given, with the query it called it with. */
  url: URL;
  /** Apple posts its answer: the form fields. */
  form: Record<string, string> | undefined;
  state: string;
  codeVerifier: string;
  nonce: string;
}

export interface OAuthProvider {
  id: ProviderId;
  displayName: string;
  /** Whether the flow sends and checks a nonce (OpenID Connect). */
  usesNonce: boolean;
  authorizationUrl(request: AuthorizationRequest): Promise<URL>;
  /** Exchanges the code (with the PKCE verifier) and reads the identity. */
  completeSignIn(input: CallbackInput): Promise<ProviderIdentity>;
  /** Native apps: verifies an ID token the app obtained itself (issuer, audience, expiry, nonce). */
  verifyIdToken?(idToken: string, nonce: string | undefined): Promise<ProviderIdentity>;
}

/** The provider refused, failed, or answered something that does not check out. */
export class ProviderError extends Error {
  override name = 'ProviderError';
  /** The person declined (or cancelled) on the provider's page. */
  readonly denied: boolean;
  constructor(message: string, options: { cause?: unknown; denied?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.denied = options.denied ?? false;
  }
}

/** A bad ID token from a native app: the caller's fault, not the provider's. */
export class InvalidIdTokenError extends Error {
  override name = 'InvalidIdTokenError';
}

/** An identity whose subject cannot be stored. */
export class MalformedIdentityError extends ProviderError {
  override name = 'MalformedIdentityError';
}

/** A fetch that gives up after `timeoutMs`; shaped for openid-client's `customFetch` too. */
export function fetchWithin(
  timeoutMs: number,
): (url: string, init?: CustomFetchOptions | RequestInit) => Promise<Response> {
  return (url, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return fetch(url, { ...(init as RequestInit), signal });
  };
}
