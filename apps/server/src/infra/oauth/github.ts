/** GitHub (and GitHub Enterprise Server): OAuth 2.0; the verified primary email from the emails API. */
import type { OAuthConfig } from '../../config.ts';
import { oauth2Provider } from './oauth2.ts';
import { type OAuthProvider, ProviderError } from './provider.ts';

interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
}
interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

export function githubProvider(github: NonNullable<OAuthConfig['github']>, timeoutMs: number): OAuthProvider {
  return oauth2Provider({
    id: 'github',
    displayName: 'GitHub',
    issuer: github.url,
    authorizationEndpoint: `${github.url}/login/oauth/authorize`,
    tokenEndpoint: `${github.url}/login/oauth/access_token`,
    clientId: github.clientId,
    clientSecret: github.clientSecret,
    scope: 'read:user user:email',
    timeoutMs,
    async readIdentity(accessToken, get) {
      const headers = {
        authorization: `Bearer ${accessToken}`,
        accept: 'application/vnd.github+json',
        'user-agent': 'app-server',
      };
      const user = (await get(`${github.apiUrl}/user`, headers)) as GitHubUser;
      if (typeof user?.id !== 'number') throw new ProviderError('github: the user has no id');
      const emails = (await get(`${github.apiUrl}/user/emails`, headers)) as GitHubEmail[];
      const primary = Array.isArray(emails) ? emails.find((e) => e.primary) : undefined;
      return {
        subject: String(user.id),
        email: primary ? primary.email.trim().toLowerCase() : null,
        emailVerified: primary?.verified === true,
        name: user.name?.trim() || user.login || null,
      };
    },
  });
}
