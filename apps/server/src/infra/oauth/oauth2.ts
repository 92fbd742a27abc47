/**
 * Plain OAuth 2.0 providers (GitHub, Facebook): the authorization code flow with PKCE and
 * state on `openid-client`, given the endpoints instead of discovering them; who signed in
 * comes from the provider's API (`readIdentity`), each call bounded in time.
 */
import * as client from 'openid-client';
import { isLoopbackUrl } from '../../config.ts';
import { withTimeout } from '../with-timeout.ts';
import {
  type AuthorizationRequest,
  type CallbackInput,
  type Identity,
  type OAuthProvider,
  ProviderError,
  type ProviderId,
} from './provider.ts';

export interface OAuth2ProviderOptions {
  id: ProviderId;
  displayName: string;
  /** The provider's web origin (identifies it in openid-client). */
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  scope: string;
  timeoutMs: number;
  /** Reads the identity with the access token; `get` fetches JSON with the time bound. */
  readIdentity(
    accessToken: string,
    get: (url: string, headers?: Record<string, string>) => Promise<unknown>,
  ): Promise<Identity>;
}

export function oauth2Provider(options: OAuth2ProviderOptions): OAuthProvider {
  const config = new client.Configuration(
    {
      issuer: options.issuer,
      authorization_endpoint: options.authorizationEndpoint,
      token_endpoint: options.tokenEndpoint,
    },
    options.clientId,
    { client_secret: options.clientSecret },
    client.ClientSecretPost(options.clientSecret),
  );
  config.timeout = Math.ceil(options.timeoutMs / 1000);
  if (isLoopbackUrl(options.tokenEndpoint)) client.allowInsecureRequests(config);

  const get = (url: string, headers: Record<string, string> = {}) =>
    withTimeout(async (signal) => {
      const response = await fetch(url, { headers: { accept: 'application/json', ...headers }, signal });
      if (!response.ok) throw new Error(`${url} answered ${response.status}`);
      return response.json() as Promise<unknown>;
    }, options.timeoutMs);

  return {
    id: options.id,
    displayName: options.displayName,
    usesNonce: false,

    async authorizationUrl(request: AuthorizationRequest): Promise<URL> {
      return client.buildAuthorizationUrl(config, {
        redirect_uri: request.redirectUri,
        scope: options.scope,
        state: request.state,
        code_challenge: request.codeChallenge,
        code_challenge_method: 'S256',
      });
    },

    async completeSignIn(input: CallbackInput): Promise<Identity> {
      let accessToken: string;
      try {
        const tokens = await client.authorizationCodeGrant(config, input.url, {
          pkceCodeVerifier: input.codeVerifier,
          expectedState: input.state,
        });
        accessToken = tokens.access_token;
      } catch (error) {
        const denied = error instanceof client.AuthorizationResponseError && error.error === 'access_denied';
        throw new ProviderError(`${options.id}: the sign-in could not be completed`, { cause: error, denied });
      }
      try {
        return await options.readIdentity(accessToken, get);
      } catch (error) {
        if (error instanceof ProviderError) throw error;
        throw new ProviderError(`${options.id}: the account could not be read`, { cause: error });
      }
    },
  };
}
