/**
 * Facebook Login: OAuth 2.0 with PKCE; the profile from the Graph API. Facebook does not
 * say whether the email is verified, so its email never links to an existing account.
 */
import { createHmac } from 'node:crypto';
import type { OAuthConfig } from '../../config.ts';
import { oauth2Provider } from './oauth2.ts';
import { normalizeIdentity, type OAuthProvider } from './provider.ts';

/** The Graph API version the calls are written for. */
export const FACEBOOK_API_VERSION = 'v21.0';

export function facebookProvider(
  facebook: NonNullable<OAuthConfig['facebook']>,
  options: { timeoutMs: number; allowInsecure: boolean },
): OAuthProvider {
  return oauth2Provider({
    id: 'facebook',
    displayName: 'Facebook',
    issuer: facebook.url,
    authorizationEndpoint: `${facebook.url}/${FACEBOOK_API_VERSION}/dialog/oauth`,
    tokenEndpoint: `${facebook.graphUrl}/${FACEBOOK_API_VERSION}/oauth/access_token`,
    clientId: facebook.clientId,
    clientSecret: facebook.clientSecret,
    scope: 'email public_profile',
    ...options,
    async readIdentity(accessToken, get) {
      // appsecret_proof: the call works even with "Require App Secret" on.
      const proof = createHmac('sha256', facebook.clientSecret).update(accessToken).digest('hex');
      const url = new URL(`${facebook.graphUrl}/${FACEBOOK_API_VERSION}/me`);
      url.search = new URLSearchParams({ fields: 'id,name,email', appsecret_proof: proof }).toString();
      const me = ((await get(url.toString(), { authorization: `Bearer ${accessToken}` })) ?? {}) as {
        id?: unknown;
        name?: unknown;
        email?: unknown;
      };
      return normalizeIdentity({ subject: me.id, email: me.email, emailVerified: false, name: me.name });
    },
  });
}
