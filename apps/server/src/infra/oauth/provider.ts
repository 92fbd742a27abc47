/**
 * An outside identity provider, as the sign-in flows use it. Each implementation wraps the
 * `openid-client` library (OpenID Connect discovery, PKCE, state, nonce and ID-token
 * checks; plain OAuth 2.0 for GitHub and Facebook); none speaks the protocol by hand.
 */

import { calculatePKCECodeChallenge, randomPKCECodeVerifier } from 'openid-client';

/** Every sign-in provider the server knows. */
export const PROVIDER_IDS = ['google', 'github', 'facebook', 'apple', 'oidc'] as const;
/** A sign-in provider: google, github, facebook, apple or oidc (any OpenID Connect provider). */
export type ProviderId = (typeof PROVIDER_IDS)[number];

/** A PKCE pair: the verifier stays on the server, the S256 challenge goes to the provider. */
export async function newPkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = randomPKCECodeVerifier();
  return { verifier, challenge: await calculatePKCECodeChallenge(verifier) };
}

/** Who signed in, as the provider vouches for it. */
export interface Identity {
  /** The provider's stable id for the person. */
  subject: string;
  email: string | null;
  /** Only true when the provider asserts it (an OIDC `email_verified`, GitHub's verified flag). */
  emailVerified: boolean;
  name: string | null;
}

export interface AuthorizationRequest {
  redirectUri: string;
  state: string;
  codeChallenge: string;
  /** Sent to OpenID Connect providers, checked in their ID token. */
  nonce: string;
}

export interface CallbackInput {
  /** The callback as the provider called it: its URL (GET) or form fields (Apple's POST). */
  url: URL;
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
  completeSignIn(input: CallbackInput): Promise<Identity>;
  /** Native apps: verifies an ID token the app obtained itself (issuer, audience, expiry, nonce). */
  verifyIdToken?(idToken: string, nonce: string | undefined): Promise<Identity>;
}

/** The provider refused, failed, or answered something that does not check out. */
export class ProviderError extends Error {
  override name = 'ProviderError';
  /** The person declined on the provider's page. */
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
