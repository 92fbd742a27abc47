/**
 * OpenID Connect providers (Google, Apple, any standards-compliant issuer) on
 * `openid-client`: discovery, the authorization code flow with PKCE, state and nonce, and
 * the ID token checked by the library. Native apps' ID tokens are checked with `jose`
 * against the issuer's published keys.
 */
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { isLoopbackUrl } from '../../config.ts';
import {
  type AuthorizationRequest,
  type CallbackInput,
  type Identity,
  InvalidIdTokenError,
  type OAuthProvider,
  ProviderError,
  type ProviderId,
} from './provider.ts';

export interface OidcProviderOptions {
  id: ProviderId;
  displayName: string;
  issuer: string;
  clientId: string;
  /** The client secret, or (Apple) a function that makes one for each token request. */
  clientSecret: string | (() => Promise<string>);
  /** Client ids whose ID tokens native apps may present. */
  audiences: string[];
  scope: string;
  /** Apple posts its answer (`form_post`) when names or emails are asked for. */
  responseMode?: 'form_post';
  timeoutMs: number;
  /** Reads the name a provider sends outside the ID token (Apple's `user` form field). */
  nameFromForm?: (form: Record<string, string>) => string | null;
}

export function oidcProvider(options: OidcProviderOptions): OAuthProvider {
  let discovered: Promise<client.Configuration> | undefined;
  /** Discovery once per process; a failed one is retried by the next sign-in. */
  const configuration = () => {
    discovered ??= client
      .discovery(new URL(options.issuer), options.clientId, undefined, client.None(), {
        timeout: Math.ceil(options.timeoutMs / 1000),
        execute: isLoopbackUrl(options.issuer) ? [client.allowInsecureRequests] : [],
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw new ProviderError(`discovery of ${options.issuer} failed`, { cause: error });
      });
    return discovered;
  };
  /** A configuration with the client's credentials (Apple's secret is made fresh). */
  const authenticated = async () => {
    const discoveredConfig = await configuration();
    const secret = typeof options.clientSecret === 'string' ? options.clientSecret : await options.clientSecret();
    const config = new client.Configuration(
      discoveredConfig.serverMetadata(),
      options.clientId,
      { client_secret: secret },
      secret ? client.ClientSecretPost(secret) : client.None(),
    );
    config.timeout = Math.ceil(options.timeoutMs / 1000);
    if (isLoopbackUrl(options.issuer)) client.allowInsecureRequests(config);
    return config;
  };
  let keys: ReturnType<typeof createRemoteJWKSet> | undefined;

  return {
    id: options.id,
    displayName: options.displayName,
    usesNonce: true,

    async authorizationUrl(request: AuthorizationRequest): Promise<URL> {
      return client.buildAuthorizationUrl(await configuration(), {
        redirect_uri: request.redirectUri,
        scope: options.scope,
        state: request.state,
        nonce: request.nonce,
        code_challenge: request.codeChallenge,
        code_challenge_method: 'S256',
        ...(options.responseMode && { response_mode: options.responseMode }),
      });
    },

    async completeSignIn(input: CallbackInput): Promise<Identity> {
      const config = await authenticated();
      const callback = input.form
        ? new Request(input.url, { method: 'POST', body: new URLSearchParams(input.form) })
        : input.url;
      let claims: client.IDToken | undefined;
      try {
        const tokens = await client.authorizationCodeGrant(config, callback, {
          pkceCodeVerifier: input.codeVerifier,
          expectedState: input.state,
          expectedNonce: input.nonce,
          idTokenExpected: true,
        });
        claims = tokens.claims();
      } catch (error) {
        const denied = error instanceof client.AuthorizationResponseError && error.error === 'access_denied';
        throw new ProviderError(`${options.id}: the sign-in could not be completed`, { cause: error, denied });
      }
      if (!claims) throw new ProviderError(`${options.id}: no ID token`);
      const identity = identityFromClaims(claims);
      const formName = input.form && options.nameFromForm?.(input.form);
      return { ...identity, name: identity.name ?? formName ?? null };
    },

    async verifyIdToken(idToken: string, nonce: string | undefined): Promise<Identity> {
      const metadata = (await configuration()).serverMetadata();
      if (!metadata.jwks_uri) throw new ProviderError(`${options.issuer} publishes no keys (jwks_uri)`);
      keys ??= createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: options.timeoutMs });
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(idToken, keys, { issuer: metadata.issuer, audience: options.audiences }));
      } catch (error) {
        // The keys could not be fetched: the provider's fault, not the token's.
        if (error instanceof joseErrors.JWKSTimeout || !(error instanceof joseErrors.JOSEError)) {
          throw new ProviderError(`${options.id}: its keys could not be fetched`, { cause: error });
        }
        throw new InvalidIdTokenError(`the ID token is not valid: ${error.message}`);
      }
      checkNonce(payload.nonce, nonce);
      return identityFromClaims(payload);
    },
  };
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

function identityFromClaims(claims: JWTPayload): Identity {
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new ProviderError('the ID token has no subject');
  const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : null;
  // Apple sends "true" as a string.
  const verified = claims.email_verified === true || claims.email_verified === 'true';
  const name = typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim() : null;
  return { subject: claims.sub, email, emailVerified: email !== null && verified, name };
}
