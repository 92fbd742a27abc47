/**
 * The auth mode keeps the tokens of a provider sign-in: the browser flow's exchange and a
 * native app's ID token, against the real server and a local fake OpenID Connect provider.
 */
import {
  buildTestApp,
  type FakeOidcProvider,
  freePort,
  startFakeOidcProvider,
  type TestApp,
} from '@app/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, memoryTokenStore } from '../src/index.ts';

describe('auth mode with provider sign-in', () => {
  let provider: FakeOidcProvider;
  let server: TestApp;
  let url: string;

  beforeAll(async () => {
    provider = await startFakeOidcProvider({ clientId: 'sdk-client', clientSecret: 'sdk-secret' });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = await buildTestApp({
      env: {
        PUBLIC_URL: url,
        OAUTH_REDIRECT_ORIGINS: 'http://app.test',
        OAUTH_OIDC_ISSUER: provider.issuer,
        OAUTH_OIDC_CLIENT_ID: 'sdk-client',
        OAUTH_OIDC_CLIENT_SECRET: 'sdk-secret',
      },
    });
    await server.app.listen({ host: '127.0.0.1', port });
  });
  afterAll(async () => {
    await server?.close();
    await provider?.close();
  });

  it('stores the tokens of auth.oauth.exchange', async () => {
    const sub = `sdk-browser-${Date.now()}`;
    provider.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    // The browser's part: start, the provider, the callback (with the binding cookie).
    const start = await fetch(`${url}/api/auth/oauth/oidc/start?redirectTo=http://app.test/done`, {
      redirect: 'manual',
    });
    const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const atProvider = await fetch(start.headers.get('location') ?? '', { redirect: 'manual' });
    const callback = await fetch(atProvider.headers.get('location') ?? '', { redirect: 'manual', headers: { cookie } });
    const code = new URL(callback.headers.get('location') ?? '').searchParams.get('code');
    expect(code).toBeTruthy();

    const store = memoryTokenStore();
    const api = createClient({ url, auth: { tokenStore: store } });
    const result = await api.auth.oauth.exchange.mutate({ code: code ?? '' });
    expect(result.created).toBe(true);
    expect(await store.get()).toEqual({ accessToken: result.accessToken, refreshToken: result.refreshToken });
    expect((await api.users.me.query()).email).toBe(`${sub}@acme.test`);
    expect(await api.auth.identities.list.query()).toEqual([expect.objectContaining({ provider: 'oidc' })]);
  });

  it('stores the tokens of auth.oauth.signInWithIdToken', async () => {
    const sub = `sdk-native-${Date.now()}`;
    const idToken = await provider.signIdToken({ sub, email: `${sub}@acme.test`, email_verified: true });
    const store = memoryTokenStore();
    const api = createClient({ url, auth: { tokenStore: store } });
    const result = await api.auth.oauth.signInWithIdToken.mutate({ provider: 'oidc', idToken });
    expect(await store.get()).toEqual({ accessToken: result.accessToken, refreshToken: result.refreshToken });
    expect((await api.users.me.query()).id).toBe(result.user.id);
    expect(await api.auth.oauth.providers.query()).toEqual([{ id: 'oidc', name: 'Single sign-on' }]);
  });
});
