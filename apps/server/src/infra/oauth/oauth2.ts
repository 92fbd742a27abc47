/**
 * Plain OAuth 2.0 providers (GitHub, Facebook): the authorization code flow with PKCE and
 * state on `openid-client`, given the endpoints instead of discovering them; who signed in
 * comes from the provider's API (`readIdentity`), each call bounded in time.
 */
import * as client from 'openid-client';
import {
  type AuthorizationRequest,
  type CallbackInput,
  fetchWithin,
  type OAuthProvider,
  ProviderError,
  type ProviderId,
  type ProviderIdentity,
} from './provider.ts';
import { signInFailure } from './sign-in-failure.ts';

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
  /** Plain http (a provider on this machine). */
  allowInsecure: boolean;
  /** Reads the identity with the access token; `get` fetches JSON within the time bound. */
  readIdentity(
    accessToken: string,
    get: (url: string, headers?: Record<string, string>) => Promise<unknown>,
  ): Promise<ProviderIdentity>;
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
  const bounded = fetchWithin(options.timeoutMs);
  config[client.customFetch] = bounded;
  if (options.allowInsecure) client.allowInsecureRequests(config);

  const get = async (url: string, headers: Record<string, string> = {}) => {
    const response = await bounded(url, { headers: { accept: 'application/json', ...headers } });
    if (!response.ok) throw new ProviderError(`${options.id}: ${new URL(url).pathname} answered ${response.status}`);
    return (await response.json()) as unknown;
  };

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

    async completeSignIn(input: CallbackInput): Promise<ProviderIdentity> {
      if (!input.codeVerifier) throw new ProviderError(`${options.id}: the flow lost its PKCE verifier`);
      try {
        const tokens = await client.authorizationCodeGrant(config, input.url, {
          pkceCodeVerifier: input.codeVerifier,
          expectedState: input.state,
        });
        return await options.readIdentity(tokens.access_token, get);
      } catch (error) {
        throw signInFailure(options.id, error);
      }
    },
  };
}
