/** The configured sign-in providers, by id: each one is on when its client id is set. */

import { isLoopbackUrl } from '@app/db';
import { SignJWT } from 'jose/jwt/sign';
import { importPKCS8 } from 'jose/key/import';
import type { OAuthConfig } from '../../config.ts';
import { type OAuthProvider, PROVIDER_IDS, type ProviderId } from './provider.ts';

export type OAuthProviders = ReadonlyMap<ProviderId, OAuthProvider>;

/**
 * The providers' modules, with the OAuth and OIDC clients under them: loaded only when a
 * provider is configured (and by the Docker image's compile-cache warm-up).
 */
export const loadProviderModules = () =>
  Promise.all([import('./facebook.ts'), import('./github.ts'), import('./oidc.ts')]);

/** The configured providers; a server without any never loads their modules. */
export async function createOAuthProviders(oauth: OAuthConfig): Promise<OAuthProviders> {
  if (PROVIDER_IDS.every((id) => !oauth[id])) return new Map();
  const [{ facebookProvider }, { githubProvider }, { oidcProvider }] = await loadProviderModules();
  const providers: OAuthProvider[] = [];
  const { timeoutMs } = oauth;
  const within = (url: string) => ({ timeoutMs, allowInsecure: isLoopbackUrl(url) });
  if (oauth.google) {
    providers.push(
      oidcProvider({
        id: 'google',
        displayName: 'Google',
        issuer: oauth.google.issuer,
        // Google's ID tokens may name the issuer without the scheme.
        issuerAliases: ['accounts.google.com'],
        clientId: oauth.google.clientId,
        clientSecret: oauth.google.clientSecret,
        audiences: oauth.google.audiences,
        scope: 'openid email profile',
        ...within(oauth.google.issuer),
      }),
    );
  }
  if (oauth.github) providers.push(githubProvider(oauth.github, within(oauth.github.url)));
  if (oauth.facebook) providers.push(facebookProvider(oauth.facebook, within(oauth.facebook.graphUrl)));
  if (oauth.apple) {
    const apple = oauth.apple;
    providers.push(
      oidcProvider({
        id: 'apple',
        displayName: 'Apple',
        issuer: apple.issuer,
        clientId: apple.clientId,
        clientSecret: appleClientSecret(apple),
        audiences: apple.audiences,
        scope: 'openid name email',
        // Apple posts its answer when a name or email is asked for.
        responseMode: 'form_post',
        ...within(apple.issuer),
        nameFromForm: appleName,
      }),
    );
  }
  if (oauth.oidc) {
    providers.push(
      oidcProvider({
        id: 'oidc',
        displayName: oauth.oidc.name,
        issuer: oauth.oidc.issuer,
        clientId: oauth.oidc.clientId,
        clientSecret: oauth.oidc.clientSecret,
        audiences: oauth.oidc.audiences,
        scope: 'openid email profile',
        ...within(oauth.oidc.issuer),
      }),
    );
  }
  return new Map(providers.map((provider) => [provider.id, provider]));
}

/**
 * Apple's client secret is a short-lived JWT signed (ES256) with the .p8 key from the
 * developer account; one is made per hour. Without a key (development) it is empty, and
 * Apple refuses the code exchange.
 */
function appleClientSecret(apple: NonNullable<OAuthConfig['apple']>): () => Promise<string> {
  let cached: { secret: string; until: number } | undefined;
  return async () => {
    if (!apple.privateKey || !apple.teamId || !apple.keyId) return '';
    const now = Math.floor(Date.now() / 1000);
    if (cached && cached.until > now) return cached.secret;
    const key = await importPKCS8(apple.privateKey, 'ES256');
    const secret = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: apple.keyId })
      .setIssuer(apple.teamId)
      .setSubject(apple.clientId)
      .setAudience(apple.issuer.replace(/\/+$/, ''))
      .setIssuedAt(now)
      .setExpirationTime(now + 3_600)
      .sign(key);
    cached = { secret, until: now + 3_000 };
    return secret;
  };
}

/** Apple sends the person's name once, on the first sign-in, in the `user` form field. */
function appleName(form: Record<string, string>): string | null {
  try {
    const user = JSON.parse(form.user ?? '{}') as { name?: { firstName?: unknown; lastName?: unknown } } | null;
    const parts = [user?.name?.firstName, user?.name?.lastName].filter((part) => typeof part === 'string');
    return parts.join(' ').trim() || null;
  } catch {
    return null;
  }
}
