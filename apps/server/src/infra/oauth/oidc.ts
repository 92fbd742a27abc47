/**
 * OpenID Connect providers (Google, Apple, any standards-compliant issuer) on
 * `openid-client`: discovery, the authorization code flow with PKCE, state and nonce, and
 * the ID token checked by the library; the email from userinfo when the ID token has none.
 * Native apps' ID tokens are checked with `jose` against the issuer's published keys.
 */
import { createHash } from 'node:crypto';
import type { JWTHeaderParameters, JWTPayload } from 'jose';
import * as joseErrors from 'jose/errors';
import { createRemoteJWKSet } from 'jose/jwks/remote';
import { jwtVerify } from 'jose/jwt/verify';
import * as client from 'openid-client';
import {
  type AuthorizationRequest,
  type CallbackInput,
  fetchWithin,
  InvalidIdTokenError,
  identityName,
  MalformedIdentityError,
  normalizeIdentity,
  type OAuthProvider,
  ProviderError,
  type ProviderId,
  type ProviderIdentity,
} from './provider.ts';
import { signInFailure } from './sign-in-failure.ts';

export interface OidcProviderOptions {
  id: ProviderId;
  displayName: string;
  issuer: string;
  /** Other spellings of the issuer its ID tokens may carry (Google: `accounts.google.com`). */
  issuerAliases?: string[];
  clientId: string;
  /** The client secret, or (Apple) a function that makes one for each token request. */
  clientSecret: string | (() => Promise<string>);
  /** Client ids whose ID tokens native apps may present. */
  audiences: string[];
  scope: string;
  /** Apple posts its answer (`form_post`) when names or emails are asked for. */
  responseMode?: 'form_post';
  timeoutMs: number;
  /** Plain http (a provider on this machine). */
  allowInsecure: boolean;
  /** Reads the name a provider sends outside the ID token (Apple's `user` form field). */
  nameFromForm?: (form: Record<string, string>) => string | null;
}

/** Errors of fetching the issuer's keys: the provider's fault, not the token's. */
const KEY_FETCH_FAILURES = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

export function oidcProvider(options: OidcProviderOptions): OAuthProvider {
  const bounded = fetchWithin(options.timeoutMs);
  const prepare = (config: client.Configuration) => {
    config[client.customFetch] = bounded;
    if (options.allowInsecure) client.allowInsecureRequests(config);
  };
  let discovered: Promise<client.Configuration> | undefined;
  /** Discovery once per process; a failed one is retried by the next sign-in. */
  const configuration = () => {
    discovered ??= client
      .discovery(new URL(options.issuer), options.clientId, undefined, client.None(), {
        [client.customFetch]: bounded,
        execute: options.allowInsecure ? [client.allowInsecureRequests] : [],
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw new ProviderError(`${options.id}: discovery of ${options.issuer} failed`, { cause: error });
      });
    return discovered;
  };
  /** A configuration with the client's credentials (Apple's secret is made fresh). */
  const authenticated = async () => {
    const metadata = (await configuration()).serverMetadata();
    const secret = typeof options.clientSecret === 'string' ? options.clientSecret : await options.clientSecret();
    const methods = metadata.token_endpoint_auth_methods_supported;
    // Post unless the provider only takes HTTP Basic (the default when it says nothing is Basic,
    // but every provider here takes post; Okta apps set to Basic list only Basic).
    const basicOnly = methods?.includes('client_secret_basic') && !methods.includes('client_secret_post');
    const auth = !secret
      ? client.None()
      : basicOnly
        ? client.ClientSecretBasic(secret)
        : client.ClientSecretPost(secret);
    const config = new client.Configuration(metadata, options.clientId, { client_secret: secret }, auth);
    prepare(config);
    return config;
  };
  let keys: ReturnType<typeof createRemoteJWKSet> | undefined;

  return {
    id: options.id,
    displayName: options.displayName,
    usesNonce: true,

    async authorizationUrl(request: AuthorizationRequest): Promise<URL> {
      const config = await configuration();
      try {
        return client.buildAuthorizationUrl(config, {
          redirect_uri: request.redirectUri,
          scope: options.scope,
          state: request.state,
          nonce: request.nonce,
          code_challenge: request.codeChallenge,
          code_challenge_method: 'S256',
          ...(options.responseMode && { response_mode: options.responseMode }),
        });
      } catch (error) {
        // (Its discovery document names no usable authorization endpoint.)
        throw new ProviderError(`${options.id}: no sign-in page to send the browser to`, { cause: error });
      }
    },

    async completeSignIn(input: CallbackInput): Promise<ProviderIdentity> {
      if (!input.codeVerifier || !input.nonce)
        throw new ProviderError(`${options.id}: the flow lost its PKCE verifier`);
      const config = await authenticated();
      const callback = input.form
        ? new Request(input.url, { method: 'POST', body: new URLSearchParams(input.form) })
        : input.url;
      try {
        const tokens = await client.authorizationCodeGrant(config, callback, {
          pkceCodeVerifier: input.codeVerifier,
          expectedState: input.state,
          expectedNonce: input.nonce,
          idTokenExpected: true,
        });
        const claims = tokens.claims();
        if (!claims) throw new ProviderError(`${options.id}: no ID token`);
        // Some providers put the email in userinfo only. The address only links or creates an
        // account: without it (userinfo failing) a returning user, known by subject, still
        // signs in; a new one is told it is missing (as GitHub's emails endpoint failing is).
        const profile =
          typeof claims.email === 'string'
            ? claims
            : await client.fetchUserInfo(config, tokens.access_token, claims.sub).catch(() => claims);
        const identity = normalizeIdentity({
          subject: claims.sub,
          email: profile.email,
          emailVerified: profile.email_verified,
          name: profile.name,
        });
        const formName = input.form && options.nameFromForm ? identityName(options.nameFromForm(input.form)) : null;
        return { ...identity, name: identity.name ?? formName };
      } catch (error) {
        throw signInFailure(options.id, error);
      }
    },

    async verifyIdToken(idToken: string, nonce: string | undefined): Promise<ProviderIdentity> {
      const metadata = (await configuration()).serverMetadata();
      if (!metadata.jwks_uri || !URL.canParse(metadata.jwks_uri)) {
        throw new ProviderError(`${options.issuer} publishes no keys (jwks_uri ${metadata.jwks_uri ?? 'missing'})`);
      }
      keys ??= createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: options.timeoutMs });
      let payload: JWTPayload;
      let header: JWTHeaderParameters;
      try {
        ({ payload, protectedHeader: header } = await jwtVerify(idToken, keys, {
          issuer: [metadata.issuer, ...(options.issuerAliases ?? [])],
          audience: options.audiences,
          requiredClaims: ['sub', 'exp', 'iat'],
        }));
      } catch (error) {
        if (!(error instanceof joseErrors.JOSEError) || KEY_FETCH_FAILURES.has(error.code)) {
          throw new ProviderError(`${options.id}: its keys could not be fetched`, { cause: error });
        }
        throw new InvalidIdTokenError(`the ID token is not valid: ${error.message}`);
      }
      checkIssuedToThisApp(header, payload, options.audiences);
      checkNonce(payload.nonce, nonce);
      try {
        return normalizeIdentity({
          subject: payload.sub,
          email: payload.email,
          emailVerified: payload.email_verified,
          name: payload.name,
        });
      } catch (error) {
        if (error instanceof MalformedIdentityError) throw new InvalidIdTokenError(error.message);
        throw error;
      }
    },
  };
}

/**
 * An ID token issued to one of this app's clients: its authorized party (`azp`), when it names
 * one, is a configured client id, and a token for several audiences names one. Another client
 * of the same provider may hold a token with this app among its audiences, signed by the same
 * keys (Keycloak puts it there for a user with roles on this client): an access token, which
 * is never a sign-in here (a JWT access token's type says so, Keycloak's `typ` claim too).
 */
function checkIssuedToThisApp(header: JWTHeaderParameters, payload: JWTPayload, audiences: string[]): void {
  const { azp } = payload;
  if (azp !== undefined && (typeof azp !== 'string' || !audiences.includes(azp))) {
    throw new InvalidIdTokenError(`the ID token was issued to another client (azp ${String(azp)})`);
  }
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && azp === undefined) {
    throw new InvalidIdTokenError('the token has several audiences and names no authorized party (azp)');
  }
  const headerType = header.typ?.toLowerCase();
  if (headerType === 'at+jwt' || headerType === 'application/at+jwt' || payload.typ === 'Bearer') {
    throw new InvalidIdTokenError('an access token is no ID token');
  }
}

/**
 * The token's nonce must be the one the app sent; Apple's native SDK puts the SHA-256 of the
 * app's nonce in the token, so that form matches too. A token with a nonce needs one here.
 */
function checkNonce(inToken: unknown, given: string | undefined): void {
  if (inToken === undefined && given === undefined) return;
  if (typeof inToken !== 'string' || given === undefined) {
    throw new InvalidIdTokenError('the ID token and the request must carry the same nonce');
  }
  const hashed = createHash('sha256').update(given).digest('hex');
  if (inToken !== given && inToken !== hashed) throw new InvalidIdTokenError('the nonce does not match');
}
