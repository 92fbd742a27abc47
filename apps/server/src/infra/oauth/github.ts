/** GitHub (and GitHub Enterprise Server): OAuth 2.0; the verified primary email from the emails API. */
import type { OAuthConfig } from '../../config.ts';
import { oauth2Provider } from './oauth2.ts';
import { normalizeIdentity, type OAuthProvider } from './provider.ts';

interface GitHubUser {
  id?: unknown;
  login?: unknown;
  name?: unknown;
}
interface GitHubEmail {
  email?: unknown;
  primary?: unknown;
  verified?: unknown;
}

export function githubProvider(
  github: NonNullable<OAuthConfig['github']>,
  options: { timeoutMs: number; allowInsecure: boolean },
): OAuthProvider {
  return oauth2Provider({
    id: 'github',
    displayName: 'GitHub',
    issuer: github.url,
    authorizationEndpoint: `${github.url}/login/oauth/authorize`,
    tokenEndpoint: `${github.url}/login/oauth/access_token`,
    clientId: github.clientId,
    clientSecret: github.clientSecret,
    scope: 'read:user user:email',
    ...options,
    async readIdentity(accessToken, get) {
      const headers = {
        authorization: `Bearer ${accessToken}`,
        accept: 'application/vnd.github+json',
        'user-agent': 'app-server',
      };
      const user = ((await get(`${github.apiUrl}/user`, headers)) ?? {}) as GitHubUser;
      // The address only links or creates an account: without it (the endpoint failing or
      // slow) a returning user, known by id, still signs in; a new one is told it is missing.
      const emails = await get(`${github.apiUrl}/user/emails`, headers).catch(() => undefined);
      const primary = Array.isArray(emails) ? (emails as GitHubEmail[]).find((e) => e?.primary === true) : undefined;
      return normalizeIdentity({
        subject: user.id,
        email: primary?.email,
        emailVerified: primary?.verified === true,
        name: typeof user.name === 'string' && user.name.trim() ? user.name : user.login,
      });
    },
  });
}
