/**
 * Sign-in with providers, end to end over real HTTP: the real server, the real
 * `openid-client`, and local fake providers (OpenID Connect as Google, Apple and a company
 * IdP; GitHub-shaped; Facebook-shaped). The test plays the browser: it follows each
 * redirect, carries the cookie, and posts Apple's form.
 */
import { createPublicKey, verify } from 'node:crypto';
import { createServer, type Server as NetServer } from 'node:net';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { calculatePKCECodeChallenge, randomPKCECodeVerifier } from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashOpaqueToken } from '../src/infra/tokens.ts';
import { reclaim } from '../src/modules/auth/identities.service.ts';
import {
  buildTestApp,
  type FakeClock,
  type FakeFacebook,
  type FakeGitHub,
  type FakeOidcProvider,
  failRevocationsOf,
  failWrites,
  fakeClock,
  formPostFields,
  freePort,
  startFakeFacebook,
  startFakeGitHub,
  startFakeOidcProvider,
  type TestApp,
  untilWaitingOnLocks,
} from './helpers/index.ts';

const FRONTEND = 'http://app.test';
const APPLE_TEAM = 'TEAM123456';
const APPLE_KEY_ID = 'KEY1234567';

interface Providers {
  google: FakeOidcProvider;
  apple: FakeOidcProvider;
  oidc: FakeOidcProvider;
  github: FakeGitHub;
  facebook: FakeFacebook;
}

let fakes: Providers;
let appleKeys: { privatePem: string; publicPem: string };

/** Apple's client secret is a JWT the server signs with its .p8 key: the fake checks it. */
function isAppleClientSecret(secret: string): boolean {
  const [header, payload, signature] = secret.split('.');
  if (!header || !payload || !signature) return false;
  const signed = verify(
    'sha256',
    Buffer.from(`${header}.${payload}`),
    { key: createPublicKey(appleKeys.publicPem), dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  );
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  const { kid } = JSON.parse(Buffer.from(header, 'base64url').toString());
  return (
    signed &&
    kid === APPLE_KEY_ID &&
    claims.iss === APPLE_TEAM &&
    claims.sub === 'com.example.web' &&
    claims.aud === fakes.apple.issuer &&
    claims.exp > Date.now() / 1000
  );
}

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  appleKeys = { privatePem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey) };
  fakes = {
    google: await startFakeOidcProvider({ clientId: 'google-web-client', clientSecret: 'google-secret' }),
    apple: await startFakeOidcProvider({
      alg: 'ES256',
      clientId: 'com.example.web',
      clientSecret: isAppleClientSecret,
    }),
    oidc: await startFakeOidcProvider({ clientId: 'company-client', clientSecret: 'company-secret' }),
    github: await startFakeGitHub({ clientId: 'github-client', clientSecret: 'github-secret' }),
    facebook: await startFakeFacebook({ clientId: 'facebook-app', clientSecret: 'facebook-secret' }),
  };
});
afterAll(async () => {
  await Promise.all(Object.values(fakes ?? {}).map((fake) => fake.close()));
});

function providerEnv(): Record<string, string> {
  return {
    OAUTH_REDIRECT_ORIGINS: FRONTEND,
    // Generous: the fake providers answer at once, but a loaded CI machine can take over a
    // second for a sign-in's provider calls. The test of a silent provider sets its own.
    OAUTH_TIMEOUT_MS: '10000',
    OAUTH_GOOGLE_CLIENT_ID: 'google-web-client',
    OAUTH_GOOGLE_CLIENT_SECRET: 'google-secret',
    OAUTH_GOOGLE_ISSUER: fakes.google.issuer,
    OAUTH_GOOGLE_AUDIENCES: 'google-ios-client',
    OAUTH_APPLE_CLIENT_ID: 'com.example.web',
    OAUTH_APPLE_TEAM_ID: APPLE_TEAM,
    OAUTH_APPLE_KEY_ID: APPLE_KEY_ID,
    OAUTH_APPLE_PRIVATE_KEY: appleKeys.privatePem,
    OAUTH_APPLE_ISSUER: fakes.apple.issuer,
    OAUTH_APPLE_AUDIENCES: 'com.example.ios',
    OAUTH_OIDC_ISSUER: fakes.oidc.issuer,
    OAUTH_OIDC_CLIENT_ID: 'company-client',
    OAUTH_OIDC_CLIENT_SECRET: 'company-secret',
    OAUTH_OIDC_NAME: 'Acme SSO',
    OAUTH_GITHUB_CLIENT_ID: 'github-client',
    OAUTH_GITHUB_CLIENT_SECRET: 'github-secret',
    OAUTH_GITHUB_URL: fakes.github.url,
    OAUTH_GITHUB_API_URL: fakes.github.apiUrl,
    OAUTH_FACEBOOK_CLIENT_ID: 'facebook-app',
    OAUTH_FACEBOOK_CLIENT_SECRET: 'facebook-secret',
    OAUTH_FACEBOOK_URL: fakes.facebook.url,
    OAUTH_FACEBOOK_GRAPH_URL: fakes.facebook.graphUrl,
  };
}

type Server = TestApp & { url: string; clock: FakeClock };

/** A JSON answer, read loosely: the assertions say what it must hold. */
// biome-ignore lint/suspicious/noExplicitAny: the assertions check the shape
type Answer = any;

/** A test app listening on the port its PUBLIC_URL names (the callback URLs are built on it). */
async function startServer(env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const clock = fakeClock();
  const t = await buildTestApp({
    env: { PUBLIC_URL: `http://127.0.0.1:${port}`, ...providerEnv(), ...env },
    overrides: { clock },
  });
  await t.app.listen({ host: '127.0.0.1', port });
  return { ...t, url: `http://127.0.0.1:${port}`, clock };
}

interface BrowserResult {
  /** Where the server sent the browser at the end (the frontend). */
  landing: URL;
  /** The callback request, to replay it. */
  callback: { url: string; init: RequestInit };
}

/**
 * The browser up to the provider's answer: start → the provider (which approves, denies or
 * answers with Apple's form); returns the callback request to make, with the binding cookie.
 */
async function untilCallback(
  server: Server,
  provider: string,
  options: { redirectTo?: string } = {},
): Promise<BrowserResult['callback']> {
  const redirectTo = options.redirectTo ?? `${FRONTEND}/signed-in?from=sso`;
  const start = await fetch(
    `${server.url}/api/auth/oauth/${provider}/start?redirectTo=${encodeURIComponent(redirectTo)}`,
    { redirect: 'manual' },
  );
  expect(start.status, await start.clone().text()).toBe(302);
  const setCookie = start.headers.get('set-cookie') ?? '';
  expect(setCookie).toMatch(/HttpOnly/);
  const cookie = setCookie.split(';')[0] ?? '';
  const atProvider = await fetch(start.headers.get('location') ?? '', { redirect: 'manual' });
  let callback: BrowserResult['callback'];
  if (atProvider.status === 302) {
    callback = { url: atProvider.headers.get('location') ?? '', init: { headers: { cookie }, redirect: 'manual' } };
  } else {
    expect(atProvider.status).toBe(200);
    const { action, fields } = formPostFields(await atProvider.text());
    callback = {
      url: action,
      init: {
        method: 'POST',
        body: new URLSearchParams(fields).toString(),
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        redirect: 'manual',
      },
    };
  }
  return callback;
}

/** The whole browser flow: … → the callback → where the server sends the browser (the frontend). */
async function signInWithBrowser(
  server: Server,
  provider: string,
  options: { redirectTo?: string; beforeCallback?: () => Promise<void> } = {},
): Promise<BrowserResult> {
  const callback = await untilCallback(server, provider, options);
  await options.beforeCallback?.();
  const answer = await fetch(callback.url, callback.init);
  expect([302, 303], await answer.clone().text()).toContain(answer.status);
  // The location may carry a one-time code: no cache keeps it.
  expect(answer.headers.get('cache-control')).toBe('no-store');
  return { landing: new URL(answer.headers.get('location') ?? ''), callback };
}

async function post(server: Server, path: string, body: unknown, token?: string) {
  const response = await fetch(`${server.url}/api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Answer };
}

async function get(server: Server, path: string, token?: string) {
  const response = await fetch(`${server.url}/api${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: response.status, body: (await response.json()) as Answer };
}

async function exchange(server: Server, landing: URL) {
  const code = landing.searchParams.get('code');
  expect(code, landing.toString()).toBeTruthy();
  return post(server, '/auth/oauth/exchange', { code });
}

let server: Server;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.close());
afterEach(() => {
  for (const fake of [fakes.google, fakes.apple, fakes.oidc, fakes.github, fakes.facebook]) {
    fake.tokenEndpoint = 'ok';
  }
});

let counter = 0;
const unique = (name: string) => `${name}-${Date.now()}-${++counter}`;

describe('providers', () => {
  it('lists the configured providers with their display names', async () => {
    const { status, body } = await get(server, '/auth/oauth/providers');
    expect(status).toBe(200);
    expect(body).toEqual([
      { id: 'google', name: 'Google' },
      { id: 'github', name: 'GitHub' },
      { id: 'facebook', name: 'Facebook' },
      { id: 'apple', name: 'Apple' },
      { id: 'oidc', name: 'Acme SSO' },
    ]);
  });

  it('lists none, and starts none, when no provider is configured', async () => {
    const bare = await buildTestApp();
    try {
      expect((await bare.app.inject({ url: '/api/auth/oauth/providers' })).json()).toEqual([]);
      const start = await bare.app.inject({ url: `/api/auth/oauth/google/start?redirectTo=${FRONTEND}` });
      expect(start.statusCode).toBe(404);
      expect(start.json().appCode).toBe('NOT_FOUND');
    } finally {
      await bare.close();
    }
  });
});

describe('the browser flow', () => {
  it('signs up with the company provider, then signs in again to the same account', async () => {
    const sub = unique('company');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true, name: 'Ada Company' };
    const first = await signInWithBrowser(server, 'oidc');
    expect(first.landing.origin + first.landing.pathname).toBe(`${FRONTEND}/signed-in`);
    expect(first.landing.searchParams.get('from')).toBe('sso');
    const signedUp = await exchange(server, first.landing);
    expect(signedUp.status).toBe(200);
    expect(signedUp.body).toMatchObject({
      created: true,
      tokenType: 'Bearer',
      user: { email: `${sub}@acme.test`, name: 'Ada Company', emailVerified: true, roles: ['user'] },
    });
    const me = await get(server, '/users/me', signedUp.body.accessToken);
    expect(me.body.id).toBe(signedUp.body.user.id);

    const again = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    expect(again.body).toMatchObject({ created: false, user: { id: signedUp.body.user.id } });
    const identities = await get(server, '/auth/identities', again.body.accessToken);
    expect(identities.body).toEqual([
      { provider: 'oidc', email: `${sub}@acme.test`, createdAt: expect.any(String), lastUsedAt: expect.any(String) },
    ]);
  });

  it('sends state, PKCE (S256) and a nonce to the provider', async () => {
    const start = await fetch(`${server.url}/api/auth/oauth/google/start?redirectTo=${FRONTEND}/`, {
      redirect: 'manual',
    });
    const location = new URL(start.headers.get('location') ?? '');
    expect(location.origin).toBe(fakes.google.issuer);
    expect(Object.fromEntries(location.searchParams)).toMatchObject({
      client_id: 'google-web-client',
      response_type: 'code',
      redirect_uri: `${server.url}/api/auth/oauth/google/callback`,
      code_challenge_method: 'S256',
      code_challenge: expect.stringMatching(/^[\w-]{43}$/),
      state: expect.stringMatching(/^[\w-]{32,}$/),
      nonce: expect.stringMatching(/^[\w-]{32,}$/),
      scope: 'openid email profile',
    });
    expect(start.headers.get('cache-control')).toBe('no-store');
  });

  it('signs up with Google, GitHub and Facebook', async () => {
    const googleSub = unique('google');
    fakes.google.user = { sub: googleSub, email: `${googleSub}@gmail.test`, email_verified: true, name: 'Grace' };
    const google = await exchange(server, (await signInWithBrowser(server, 'google')).landing);
    expect(google.body).toMatchObject({ created: true, user: { email: `${googleSub}@gmail.test`, name: 'Grace' } });

    const login = unique('octo');
    fakes.github.user = {
      id: 1_000_000 + counter,
      login,
      name: null,
      emails: [
        { email: `${login}@old.test`, primary: false, verified: true },
        { email: `${login}@github.test`, primary: true, verified: true },
      ],
    };
    const github = await exchange(server, (await signInWithBrowser(server, 'github')).landing);
    expect(github.body).toMatchObject({
      created: true,
      user: { email: `${login}@github.test`, name: login, emailVerified: true },
    });

    const fbName = unique('fb');
    fakes.facebook.user = { id: fbName, name: 'Face Book', email: `${fbName}@facebook.test` };
    const facebook = await exchange(server, (await signInWithBrowser(server, 'facebook')).landing);
    // Facebook does not vouch for the address: the account starts unverified (and no
    // verification email goes out: proving the address later would unlink Facebook).
    expect(facebook.body).toMatchObject({
      created: true,
      user: { email: `${fbName}@facebook.test`, name: 'Face Book', emailVerified: false },
    });
  });

  it('signs up with Apple (its answer is a POST), keeping the name Apple sends only the first time', async () => {
    const sub = unique('apple');
    fakes.apple.user = {
      sub,
      email: `${sub}@privaterelay.test`,
      email_verified: 'true',
      given_name: 'Tim',
      family_name: 'Apple',
    };
    const first = await signInWithBrowser(server, 'apple');
    expect(first.callback.init.method).toBe('POST');
    const signedUp = await exchange(server, first.landing);
    expect(signedUp.body).toMatchObject({
      created: true,
      user: { email: `${sub}@privaterelay.test`, name: 'Tim Apple', emailVerified: true },
    });
    const again = await exchange(server, (await signInWithBrowser(server, 'apple')).landing);
    expect(again.body).toMatchObject({ created: false, user: { id: signedUp.body.user.id, name: 'Tim Apple' } });
  });

  it("cleans the name Apple posts as it does any provider's: no control characters, up to 100 characters", async () => {
    const sub = unique('apple');
    // A NUL byte reached Postgres (invalid in text): the sign-in failed as INTERNAL_ERROR.
    fakes.apple.user = {
      sub,
      email: `${sub}@privaterelay.test`,
      given_name: 'Ti\u0000m',
      family_name: 'A'.repeat(200),
    };
    const signedUp = await exchange(server, (await signInWithBrowser(server, 'apple')).landing);
    expect(signedUp.body).toMatchObject({ created: true, user: { name: `Tim ${'A'.repeat(96)}` } });
  });

  it('links to the account with the same email when the provider vouches for it', async () => {
    const email = `${unique('linked')}@example.test`;
    const registered = await post(server, '/auth/register', { email, password: 'Linked-pass-1' });
    await server.services.db
      .updateTable('users')
      .set({ email_verified_at: new Date() })
      .where('email', '=', email)
      .execute();
    fakes.google.user = { sub: unique('google'), email, email_verified: true };
    const linked = await exchange(server, (await signInWithBrowser(server, 'google')).landing);
    expect(linked.body).toMatchObject({ created: false, user: { id: registered.body.user.id } });
    // The password still works: nothing was taken from a verified account.
    expect((await post(server, '/auth/login', { email, password: 'Linked-pass-1' })).status).toBe(200);
  });

  it('refuses to link to an existing account when the provider does not vouch for the email', async () => {
    const email = `${unique('unvouched')}@example.test`;
    await post(server, '/auth/register', { email, password: 'Unvouched-pass-1' });
    fakes.github.user = {
      id: 2_000_000 + counter,
      login: unique('gh'),
      name: 'Mallory',
      emails: [{ email, primary: true, verified: false }],
    };
    expect((await signInWithBrowser(server, 'github')).landing.searchParams.get('error')).toBe('EMAIL_TAKEN');
    fakes.facebook.user = { id: unique('fb'), name: 'Mallory', email };
    expect((await signInWithBrowser(server, 'facebook')).landing.searchParams.get('error')).toBe('EMAIL_TAKEN');
  });

  it('takes an unverified account back from whoever registered the email first (pre-account-takeover)', async () => {
    const email = `${unique('victim')}@example.test`;
    const squatter = await post(server, '/auth/register', { email, password: 'Squatter-pass-1' });
    expect(squatter.body.user.emailVerified).toBe(false);
    fakes.google.user = { sub: unique('google'), email, email_verified: true, name: 'Victim' };
    const victim = await exchange(server, (await signInWithBrowser(server, 'google')).landing);
    expect(victim.body).toMatchObject({ created: false, user: { id: squatter.body.user.id, emailVerified: true } });
    // The squatter's password is gone and their session has ended.
    expect((await post(server, '/auth/login', { email, password: 'Squatter-pass-1' })).body.appCode).toBe(
      'INVALID_CREDENTIALS',
    );
    expect((await get(server, '/users/me', squatter.body.accessToken)).body.appCode).toBe('SESSION_REVOKED');
    expect((await get(server, '/users/me', victim.body.accessToken)).status).toBe(200);
  });

  it('takes such an account back once when sign-ins proving the address arrive at once: none ends another', async () => {
    const email = `${unique('victim')}@example.test`;
    const squatter = await post(server, '/auth/register', { email, password: 'Squatter-pass-1' });
    const sub = unique('google-at-once');
    const idToken = () =>
      fakes.google.signIdToken({ sub, email, email_verified: true }, { audience: 'google-ios-client' });
    const signIns = await Promise.all(
      Array.from({ length: 4 }, async () =>
        post(server, '/auth/oauth/id-token', { provider: 'google', idToken: await idToken() }),
      ),
    );
    expect(signIns.map((signIn) => signIn.status)).toEqual([200, 200, 200, 200]);
    // Before: each read the account as unverified and took it back, ending the sessions the
    // others had started.
    for (const signIn of signIns) {
      expect((await get(server, '/users/me', signIn.body.accessToken)).status).toBe(200);
      const refreshed = await post(server, '/auth/refresh', { refreshToken: signIn.body.refreshToken });
      expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    }
    expect((await get(server, '/users/me', squatter.body.accessToken)).body.appCode).toBe('SESSION_REVOKED');
    // A sign-in that read the account as unverified just before the others took it back (a
    // window these four may or may not hit): its reclaim now finds the address proven.
    await reclaim(server.services, squatter.body.user.id);
    for (const signIn of signIns) {
      expect((await get(server, '/users/me', signIn.body.accessToken)).status).toBe(200);
    }
  });

  it('takes such an account back whole or not at all: a retry ends the sessions a failed try left alive', async () => {
    const email = `${unique('victim')}@example.test`;
    const squatter = await post(server, '/auth/register', { email, password: 'Squatter-pass-1' });
    fakes.google.user = { sub: unique('google'), email, email_verified: true, name: 'Victim' };
    const restore = await failRevocationsOf(server.services.db, squatter.body.user.id);
    try {
      const failed = await signInWithBrowser(server, 'google');
      expect(failed.landing.searchParams.get('error')).toBe('DEPENDENCY_DOWN');
    } finally {
      await restore();
    }
    // Nothing was taken: had the password gone and the address been proven, no later sign-in
    // would take the account back, and the squatter's session would live on.
    expect((await post(server, '/auth/login', { email, password: 'Squatter-pass-1' })).status).toBe(200);
    const victim = await exchange(server, (await signInWithBrowser(server, 'google')).landing);
    expect(victim.body).toMatchObject({ created: false, user: { id: squatter.body.user.id, emailVerified: true } });
    expect((await get(server, '/users/me', squatter.body.accessToken)).body.appCode).toBe('SESSION_REVOKED');
  });

  it('answers error=OAUTH_DENIED when the person declines', async () => {
    fakes.oidc.nextOutcome = 'deny';
    const { landing } = await signInWithBrowser(server, 'oidc');
    expect(landing.searchParams.get('error')).toBe('OAUTH_DENIED');
    expect(landing.searchParams.has('code')).toBe(false);
  });

  it('answers error=ACCOUNT_DISABLED for a disabled account', async () => {
    const sub = unique('disabled');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const created = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    await server.services.db
      .updateTable('users')
      .set({ disabled_at: new Date() })
      .where('id', '=', created.body.user.id)
      .execute();
    expect((await signInWithBrowser(server, 'oidc')).landing.searchParams.get('error')).toBe('ACCOUNT_DISABLED');
  });

  it('answers error=ACCOUNT_ARCHIVED for an archived account, and signs it in again once restored', async () => {
    const sub = unique('archived');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const created = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    const archived = await fetch(`${server.url}/api/users/me/archive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${created.body.accessToken}` },
    });
    expect(archived.status).toBe(200);
    const { landing } = await signInWithBrowser(server, 'oidc');
    expect(landing.searchParams.get('error')).toBe('ACCOUNT_ARCHIVED');
    expect(landing.searchParams.has('code')).toBe(false);
    await server.services.db
      .updateTable('users')
      .set({ archived_at: null })
      .where('id', '=', created.body.user.id)
      .execute();
    const again = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    expect(again.body).toMatchObject({ created: false, user: { id: created.body.user.id, archived: false } });
  });

  it('answers error=OAUTH_EMAIL_MISSING when the provider shares no email', async () => {
    fakes.github.user = { id: 3_000_000 + counter, login: unique('noemail'), name: null, emails: [] };
    expect((await signInWithBrowser(server, 'github')).landing.searchParams.get('error')).toBe('OAUTH_EMAIL_MISSING');
  });

  it('signs a returning GitHub user in while GitHub’s email endpoint fails (the address is not needed)', async () => {
    const login = unique('returning');
    fakes.github.user = {
      id: 4_000_000 + counter,
      login,
      name: null,
      emails: [{ email: `${login}@github.test`, primary: true, verified: true }],
    };
    const first = await exchange(server, (await signInWithBrowser(server, 'github')).landing);
    expect(first.body).toMatchObject({ created: true });
    fakes.github.emailsStatus = 502;
    try {
      const again = await exchange(server, (await signInWithBrowser(server, 'github')).landing);
      expect(again.body).toMatchObject({ created: false, user: { id: first.body.user.id } });
      // Someone new cannot be linked or created without it.
      fakes.github.user = { ...fakes.github.user, id: 5_000_000 + counter, login: unique('new') };
      const landing = (await signInWithBrowser(server, 'github')).landing;
      expect(landing.searchParams.get('error')).toBe('OAUTH_EMAIL_MISSING');
    } finally {
      fakes.github.emailsStatus = 200;
    }
  });

  it('signs a returning OpenID Connect user in while userinfo fails and the ID token has no email', async () => {
    const sub = unique('oidc-returning');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const first = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    expect(first.body).toMatchObject({ created: true });
    // The address in userinfo only, and userinfo failing.
    fakes.oidc.user = { sub };
    fakes.oidc.userinfoWorks = false;
    try {
      const again = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
      expect(again.body).toMatchObject({ created: false, user: { id: first.body.user.id } });
      // The address the provider gave before is kept, not wiped by its outage.
      const identities = await get(server, '/auth/identities', again.body.accessToken);
      expect(identities.body).toMatchObject([{ provider: 'oidc', email: `${sub}@acme.test` }]);
      fakes.oidc.user = { sub: unique('oidc-new') };
      const landing = (await signInWithBrowser(server, 'oidc')).landing;
      expect(landing.searchParams.get('error')).toBe('OAUTH_EMAIL_MISSING');
    } finally {
      fakes.oidc.userinfoWorks = true;
    }
  });
});

describe('a flow that does not check out', () => {
  it('refuses a replayed callback (the state works once)', async () => {
    const sub = unique('replay');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const { callback } = await signInWithBrowser(server, 'oidc');
    const replay = await fetch(callback.url, callback.init);
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as Answer).appCode).toBe('OAUTH_STATE_INVALID');
  });

  it('refuses a state it never issued, and a callback without the browser cookie (login CSRF)', async () => {
    const tampered = await fetch(`${server.url}/api/auth/oauth/oidc/callback?code=x&state=forged`, {
      redirect: 'manual',
    });
    expect(tampered.status).toBe(400);
    expect(((await tampered.json()) as Answer).appCode).toBe('OAUTH_STATE_INVALID');
    // An unknown provider, even a NUL byte in its place, with a well-formed cookie: 404, never a 500.
    for (const provider of ['%00', 'nope']) {
      const unknown = await fetch(`${server.url}/api/auth/oauth/${provider}/callback?code=x&state=y`, {
        redirect: 'manual',
        headers: { cookie: `app_oauth_browser=${'a'.repeat(43)}` },
      });
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as Answer).appCode).toBe('NOT_FOUND');
    }

    // An attacker's own sign-in, finished in another browser (no cookie, or another one).
    for (const cookie of ['', 'app_oauth_browser=someone-else']) {
      const sub = unique('csrf');
      fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
      const start = await fetch(`${server.url}/api/auth/oauth/oidc/start?redirectTo=${FRONTEND}/`, {
        redirect: 'manual',
      });
      const atProvider = await fetch(start.headers.get('location') ?? '', { redirect: 'manual' });
      const planted = await fetch(atProvider.headers.get('location') ?? '', {
        redirect: 'manual',
        headers: cookie ? { cookie } : {},
      });
      expect(planted.status).toBe(400);
      expect(((await planted.json()) as Answer).appCode).toBe('OAUTH_STATE_INVALID');
    }
  });

  it('refuses a flow older than 10 minutes (and takes one just younger)', async () => {
    const sub = unique('slow');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const { landing } = await signInWithBrowser(server, 'oidc', {
      beforeCallback: async () => server.clock.advance(10 * 60_000 - 1_000),
    });
    expect(landing.searchParams.get('code')).toBeTruthy();
    const callback = await untilCallback(server, 'oidc');
    server.clock.advance(10 * 60_000 + 1);
    const late = await fetch(callback.url, callback.init);
    expect(late.status).toBe(400);
    expect(((await late.json()) as Answer).appCode).toBe('OAUTH_STATE_INVALID');
  });

  /** Changes the stored flow of this callback (found by its state) before the browser returns. */
  async function tamper(
    callback: BrowserResult['callback'],
    change: { code_verifier?: string | null; nonce?: string },
  ) {
    const state = new URL(callback.url).searchParams.get('state') ?? '';
    const changed = await server.services.db
      .updateTable('oauth_flows')
      .set(change)
      .where('state_hash', '=', hashOpaqueToken(state))
      .executeTakeFirst();
    expect(changed.numUpdatedRows).toBe(1n);
    const answer = await fetch(callback.url, callback.init);
    return new URL(answer.headers.get('location') ?? '');
  }

  it('answers error=OAUTH_PROVIDER_ERROR when the PKCE verifier is wrong or missing', async () => {
    const tokenRequests = () => fakes.oidc.requests.filter((r) => r.path === '/token').length;
    const before = tokenRequests();
    const wrong = await tamper(await untilCallback(server, 'oidc'), { code_verifier: 'x'.repeat(43) });
    expect(wrong.searchParams.get('error')).toBe('OAUTH_PROVIDER_ERROR');
    // The provider itself refused the wrong verifier.
    expect(tokenRequests()).toBe(before + 1);
    // A flow without its verifier is refused before the provider is asked (never a code exchange without PKCE).
    const missing = await tamper(await untilCallback(server, 'oidc'), { code_verifier: null });
    expect(missing.searchParams.get('error')).toBe('OAUTH_PROVIDER_ERROR');
    expect(tokenRequests()).toBe(before + 1);
  });

  it('answers error=OAUTH_PROVIDER_ERROR when the ID token carries another nonce', async () => {
    const landing = await tamper(await untilCallback(server, 'google'), { nonce: 'another-nonce' });
    expect(landing.searchParams.get('error')).toBe('OAUTH_PROVIDER_ERROR');
  });

  it('answers error=OAUTH_PROVIDER_ERROR, not a 500 or a hang, when the provider fails or does not answer', async () => {
    for (const mode of ['error500', 'hang'] as const) {
      for (const fake of [fakes.google, fakes.github]) {
        fake.tokenEndpoint = mode;
        const provider = fake === fakes.google ? 'google' : 'github';
        const { landing } = await signInWithBrowser(server, provider);
        expect(landing.searchParams.get('error'), `${provider} ${mode}`).toBe('OAUTH_PROVIDER_ERROR');
        fake.tokenEndpoint = 'ok';
      }
    }
  });

  it('answers error=OAUTH_STATE_INVALID, not a code that cannot work, when the sign-in is removed meanwhile', async () => {
    // While the provider answers, the flow goes (an expired-flow purge, say).
    fakes.oidc.beforeToken = async () => {
      await server.services.db.deleteFrom('oauth_flows').where('state_hash', 'is', null).execute();
    };
    try {
      const { landing } = await signInWithBrowser(server, 'oidc');
      expect(landing.searchParams.get('code')).toBeNull();
      expect(landing.searchParams.get('error')).toBe('OAUTH_STATE_INVALID');
    } finally {
      fakes.oidc.beforeToken = undefined;
    }
  });

  it('answers error=OAUTH_PROVIDER_ERROR at the start when the provider cannot be discovered', async () => {
    const down = await startFakeOidcProvider({ clientId: 'down-client' });
    const issuer = down.issuer;
    await down.close();
    const isolated = await startServer({ OAUTH_OIDC_ISSUER: issuer, OAUTH_OIDC_CLIENT_ID: 'down-client' });
    try {
      const start = await fetch(`${isolated.url}/api/auth/oauth/oidc/start?redirectTo=${FRONTEND}/x`, {
        redirect: 'manual',
      });
      expect(start.status).toBe(302);
      expect(start.headers.get('location')).toBe(`${FRONTEND}/x?error=OAUTH_PROVIDER_ERROR`);
    } finally {
      await isolated.close();
    }
  });

  it('refuses to send the browser anywhere but an allowed origin', async () => {
    for (const redirectTo of [
      'http://evil.example/steal',
      '//evil.example/steal',
      'javascript:alert(1)',
      '/relative/path',
      'http://app.test.evil.example/',
      'http://user:pass@app.test/',
      '',
    ]) {
      const start = await fetch(
        `${server.url}/api/auth/oauth/google/start?redirectTo=${encodeURIComponent(redirectTo)}`,
        { redirect: 'manual' },
      );
      expect(start.status, redirectTo).toBe(400);
      expect(((await start.json()) as Answer).appCode, redirectTo).toBe('VALIDATION_FAILED');
    }
    const unknown = await fetch(`${server.url}/api/auth/oauth/myspace/start?redirectTo=${FRONTEND}/`, {
      redirect: 'manual',
    });
    expect(unknown.status).toBe(404);
  });
});

describe('the one-time code', () => {
  it('works once', async () => {
    const sub = unique('once');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const { landing } = await signInWithBrowser(server, 'oidc');
    expect((await exchange(server, landing)).status).toBe(200);
    const again = await exchange(server, landing);
    expect(again.status).toBe(401);
    expect(again.body.appCode).toBe('INVALID_CODE');
  });

  it('stays usable for a retry when the session it starts cannot be stored (the database failing then)', async () => {
    const sub = unique('retry');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const first = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    const { landing } = await signInWithBrowser(server, 'oidc');
    const restore = await failWrites(server.services.db, {
      table: 'sessions',
      when: `new.user_id = '${first.body.user.id}'`,
    });
    try {
      const failed = await exchange(server, landing);
      expect([failed.status, failed.body.appCode]).toEqual([503, 'DEPENDENCY_DOWN']);
    } finally {
      await restore();
    }
    const retried = await exchange(server, landing);
    expect([retried.status, retried.body.user?.id]).toEqual([200, first.body.user.id]);
  });

  it('loses cleanly to a reset that drops the sign-ins of its account meanwhile (no deadlock)', async () => {
    const sub = unique('reset-meanwhile');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const first = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    const userId: string = first.body.user.id;
    const { landing } = await signInWithBrowser(server, 'oidc');
    // A reset in progress: the account's row changed, then its sign-ins dropped, in that order.
    let exchanging: ReturnType<typeof exchange> | undefined;
    await server.services.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ password_changed_at: new Date() }).where('id', '=', userId).execute();
      exchanging = exchange(server, landing);
      await untilWaitingOnLocks(server.services.db, 1, exchanging);
      await trx.deleteFrom('oauth_flows').where('user_id', '=', userId).execute();
    });
    const refused = await (exchanging as ReturnType<typeof exchange>);
    expect([refused.status, refused.body.appCode]).toEqual([401, 'INVALID_CODE']);
  });

  it('expires after 60 seconds', async () => {
    const sub = unique('late');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const early = await signInWithBrowser(server, 'oidc');
    server.clock.advance(59_000);
    expect((await exchange(server, early.landing)).status).toBe(200);
    const { landing } = await signInWithBrowser(server, 'oidc');
    server.clock.advance(61_000);
    const late = await exchange(server, landing);
    expect(late.body.appCode).toBe('INVALID_CODE');
  });

  it('does not sign in an account disabled after the callback', async () => {
    const sub = unique('disabled-later');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const first = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    const { landing } = await signInWithBrowser(server, 'oidc');
    await server.services.db
      .updateTable('users')
      .set({ disabled_at: new Date() })
      .where('id', '=', first.body.user.id)
      .execute();
    const refused = await exchange(server, landing);
    expect(refused.status).toBe(403);
    expect(refused.body.appCode).toBe('ACCOUNT_DISABLED');
  });

  it('does not sign in an account archived after the callback: 403 ACCOUNT_ARCHIVED', async () => {
    const sub = unique('archived-later');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const first = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    const { landing } = await signInWithBrowser(server, 'oidc');
    await server.services.db
      .updateTable('users')
      .set({ archived_at: new Date() })
      .where('id', '=', first.body.user.id)
      .execute();
    const refused = await exchange(server, landing);
    expect(refused.status).toBe(403);
    expect(refused.body.appCode).toBe('ACCOUNT_ARCHIVED');
    expect(refused.body.accessToken).toBeUndefined();
  });
});

describe('native apps: signInWithIdToken', () => {
  it('signs up with a Google ID token issued to the iOS client', async () => {
    const sub = unique('ios');
    const idToken = await fakes.google.signIdToken(
      { sub, email: `${sub}@gmail.test`, email_verified: true, nonce: 'n-1' },
      { audience: 'google-ios-client' },
    );
    const signedIn = await post(server, '/auth/oauth/id-token', { provider: 'google', idToken, nonce: 'n-1' });
    expect(signedIn.status).toBe(200);
    expect(signedIn.body).toMatchObject({ created: true, user: { email: `${sub}@gmail.test` } });
    const again = await post(server, '/auth/oauth/id-token', {
      provider: 'google',
      idToken: await fakes.google.signIdToken({ sub }, { audience: 'google-web-client' }),
    });
    expect(again.body).toMatchObject({ created: false, user: { id: signedIn.body.user.id } });
  });

  it('signs in with an Apple ID token whose nonce is the SHA-256 of the app nonce', async () => {
    const sub = unique('apple-native');
    const { createHash } = await import('node:crypto');
    const nonce = 'raw-app-nonce';
    const idToken = await fakes.apple.signIdToken(
      {
        sub,
        email: `${sub}@privaterelay.test`,
        email_verified: 'true',
        nonce: createHash('sha256').update(nonce).digest('hex'),
      },
      { audience: 'com.example.ios' },
    );
    const signedIn = await post(server, '/auth/oauth/id-token', { provider: 'apple', idToken, nonce });
    expect(signedIn.body).toMatchObject({ created: true, user: { email: `${sub}@privaterelay.test` } });
  });

  it('refuses a token with the wrong issuer, audience, nonce, signature, or past its expiry', async () => {
    const claims = { sub: unique('bad'), email: 'bad@gmail.test', email_verified: true, nonce: 'n-2' };
    const bad = {
      issuer: await fakes.google.signIdToken(claims, { issuer: 'https://accounts.evil.example' }),
      audience: await fakes.google.signIdToken(claims, { audience: 'someone-elses-client' }),
      expired: await fakes.google.signIdToken(claims, { expiresInSeconds: -60 }),
      signature: await fakes.google.signIdToken(claims, { signWithForeignKey: true }),
      otherProvider: await fakes.oidc.signIdToken(claims),
      // Tokens another client of the provider holds, with this app among their audiences.
      anotherClients: await fakes.google.signIdToken({ ...claims, azp: 'someone-elses-client' }),
      severalAudiencesNoAzp: await fakes.google.signIdToken(claims, { audience: ['google-web-client', 'another'] }),
      accessToken: await fakes.google.signIdToken(claims, { type: 'at+jwt' }),
      keycloakAccessToken: await fakes.google.signIdToken({ ...claims, typ: 'Bearer' }),
    };
    for (const [what, idToken] of Object.entries(bad)) {
      const refused = await post(server, '/auth/oauth/id-token', { provider: 'google', idToken, nonce: 'n-2' });
      expect(refused.status, what).toBe(401);
      expect(refused.body.appCode, what).toBe('INVALID_ID_TOKEN');
    }
    const good = await fakes.google.signIdToken(claims);
    // Issued to the app's native client for its server, as Google's Android SDK does: let in.
    const viaAndroid = await fakes.google.signIdToken(
      { ...claims, sub: unique('android'), email: `${unique('android')}@gmail.test`, azp: 'google-ios-client' },
      { audience: 'google-web-client' },
    );
    expect(
      (await post(server, '/auth/oauth/id-token', { provider: 'google', idToken: viaAndroid, nonce: 'n-2' })).status,
    ).toBe(200);
    for (const nonce of ['another', undefined]) {
      const refused = await post(server, '/auth/oauth/id-token', { provider: 'google', idToken: good, nonce });
      expect(refused.body.appCode, `nonce ${nonce}`).toBe('INVALID_ID_TOKEN');
    }
  });

  it('refuses an email a provider does not vouch for when an account has it, and a disabled account', async () => {
    const email = `${unique('taken')}@example.test`;
    const owner = await post(server, '/auth/register', { email, password: 'Taken-pass-1' });
    const unverified = await fakes.oidc.signIdToken({ sub: unique('x'), email, email_verified: false });
    const taken = await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: unverified });
    expect(taken.status).toBe(409);
    expect(taken.body.appCode).toBe('EMAIL_TAKEN');

    const noEmail = await fakes.oidc.signIdToken({ sub: unique('noemail') });
    expect((await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: noEmail })).body.appCode).toBe(
      'OAUTH_EMAIL_MISSING',
    );

    await server.services.db
      .updateTable('users')
      .set({ disabled_at: new Date(), email_verified_at: new Date() })
      .where('id', '=', owner.body.user.id)
      .execute();
    const verified = await fakes.oidc.signIdToken({ sub: unique('y'), email, email_verified: true });
    const disabled = await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: verified });
    expect(disabled.status).toBe(403);
    expect(disabled.body.appCode).toBe('ACCOUNT_DISABLED');
  });

  it('refuses an archived account, linked or matched by its email: 403 ACCOUNT_ARCHIVED', async () => {
    const sub = unique('native-archived');
    const email = `${sub}@gmail.test`;
    const idToken = () =>
      fakes.google.signIdToken({ sub, email, email_verified: true }, { audience: 'google-ios-client' });
    const signedIn = await post(server, '/auth/oauth/id-token', { provider: 'google', idToken: await idToken() });
    expect(signedIn.status).toBe(200);
    const archived = await fetch(`${server.url}/api/users/me/archive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${signedIn.body.accessToken}` },
    });
    expect(archived.status).toBe(200);
    expect((await get(server, '/users/me', signedIn.body.accessToken)).body.appCode).toBe('SESSION_REVOKED');

    // The linked identity.
    const linked = await post(server, '/auth/oauth/id-token', { provider: 'google', idToken: await idToken() });
    expect(linked.status).toBe(403);
    expect(linked.body.appCode).toBe('ACCOUNT_ARCHIVED');
    // Another provider vouching for the same address (no identity yet): matched by email, refused the same.
    const byEmail = await post(server, '/auth/oauth/id-token', {
      provider: 'oidc',
      idToken: await fakes.oidc.signIdToken({ sub: unique('other'), email, email_verified: true }),
    });
    expect(byEmail.status).toBe(403);
    expect(byEmail.body.appCode).toBe('ACCOUNT_ARCHIVED');
    const identities = await server.services.db
      .selectFrom('user_identities')
      .select('provider')
      .where('user_id', '=', signedIn.body.user.id)
      .execute();
    expect(identities.map((identity) => identity.provider)).toEqual(['google']);
  });

  it('answers 404 for a provider that is not configured, 400 for one without ID tokens', async () => {
    const bare = await buildTestApp();
    try {
      const response = await bare.app.inject({
        method: 'POST',
        url: '/api/auth/oauth/id-token',
        payload: { provider: 'google', idToken: 'x' },
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().appCode).toBe('NOT_FOUND');
    } finally {
      await bare.close();
    }
    const github = await post(server, '/auth/oauth/id-token', { provider: 'github', idToken: 'x' });
    expect(github.status).toBe(400);
    expect(github.body.appCode).toBe('VALIDATION_FAILED');
  });

  it('answers 502 OAUTH_PROVIDER_ERROR when the provider cannot be reached', async () => {
    const down = await startFakeOidcProvider({ clientId: 'down-client' });
    const token = await down.signIdToken({ sub: 'someone', email: 'someone@down.test', email_verified: true });
    const issuer = down.issuer;
    await down.close();
    const isolated = await startServer({ OAUTH_OIDC_ISSUER: issuer, OAUTH_OIDC_CLIENT_ID: 'down-client' });
    try {
      const refused = await post(isolated, '/auth/oauth/id-token', { provider: 'oidc', idToken: token });
      expect(refused.status).toBe(502);
      expect(refused.body.appCode).toBe('OAUTH_PROVIDER_ERROR');
    } finally {
      await isolated.close();
    }
  });
});

describe('identities', () => {
  it('unlinks a provider, but never the last way to sign in', async () => {
    const sub = unique('only');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const signedIn = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    const token = signedIn.body.accessToken;
    const deleteIdentity = (provider: string) =>
      fetch(`${server.url}/api/auth/identities/${provider}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}` },
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Answer }));

    const last = await deleteIdentity('oidc');
    expect(last.status).toBe(409);
    expect(last.body.appCode).toBe('LAST_SIGN_IN_METHOD');
    expect((await deleteIdentity('github')).body.appCode).toBe('NOT_FOUND');

    // A second provider with the same verified email links; then the first may go.
    fakes.google.user = { sub: unique('google'), email: `${sub}@acme.test`, email_verified: true };
    await exchange(server, (await signInWithBrowser(server, 'google')).landing);
    expect((await deleteIdentity('oidc')).status).toBe(200);
    const remaining = await get(server, '/auth/identities', token);
    expect(remaining.body.map((identity: { provider: string }) => identity.provider)).toEqual(['google']);
  });
});

describe('rate limit', () => {
  it('counts the redirects against the per-address limit', async () => {
    const limited = await startServer({ RATE_LIMIT_DEFAULT_PER_MINUTE: '2' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const start = await fetch(`${limited.url}/api/auth/oauth/google/start?redirectTo=${FRONTEND}/`, {
          redirect: 'manual',
        });
        statuses.push(start.status);
        if (start.status === 429) expect(start.headers.get('retry-after')).toMatch(/^\d+$/);
      }
      expect(statuses).toEqual([302, 302, 429]);
    } finally {
      await limited.close();
    }
  });
});

describe('the redirects, when something else fails', () => {
  it('refuses a callback POST that is not a form, or too large, and a broken form', async () => {
    const callback = `${server.url}/api/auth/oauth/apple/callback`;
    const cases = [
      [{ 'content-type': 'application/json' }, JSON.stringify({ state: 'x' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [{ 'content-type': 'text/plain' }, 'state=x', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [{ 'content-type': 'application/x-www-form-urlencoded' }, `user=${'x'.repeat(20_000)}`, 413, 'PAYLOAD_TOO_LARGE'],
      [{ 'content-type': 'application/x-www-form-urlencoded' }, 'code=x', 400, 'OAUTH_STATE_INVALID'],
    ] as const;
    for (const [headers, body, status, appCode] of cases) {
      const response = await fetch(callback, { method: 'POST', headers, body, redirect: 'manual' });
      expect(response.status, appCode).toBe(status);
      expect(((await response.json()) as Answer).appCode, appCode).toBe(appCode);
    }
  });

  it('answers 503 DEPENDENCY_DOWN to a callback or an ID token, and sends a start back with error=DEPENDENCY_DOWN, while the database is down', async () => {
    const { createDb } = await import('@app/db');
    const down = await buildTestApp({
      env: { PUBLIC_URL: 'http://127.0.0.1:9', ...providerEnv() },
      overrides: { db: createDb({ url: 'postgres://postgres@127.0.0.1:1/nowhere', connectionTimeoutMs: 500 }) },
    });
    try {
      const start = await down.app.inject({ url: `/api/auth/oauth/oidc/start?redirectTo=${FRONTEND}/x` });
      expect(start.statusCode).toBe(302);
      expect(start.headers.location).toBe(`${FRONTEND}/x?error=DEPENDENCY_DOWN`);
      const callback = await down.app.inject({
        url: '/api/auth/oauth/oidc/callback?code=x&state=y',
        headers: { cookie: `app_oauth_browser=${'z'.repeat(43)}` },
      });
      expect(callback.statusCode).toBe(503);
      expect(callback.json().appCode).toBe('DEPENDENCY_DOWN');
      expect(Number(callback.headers['retry-after'])).toBeGreaterThan(0);
      // A native sign-in: the token checks out with the provider, then the database is needed.
      const sub = unique('down');
      const idToken = await fakes.oidc.signIdToken({ sub, email: `${sub}@acme.test`, email_verified: true });
      const native = await down.app.inject({
        method: 'POST',
        url: '/api/auth/oauth/id-token',
        payload: { provider: 'oidc', idToken },
      });
      expect(native.statusCode).toBe(503);
      expect(native.json().appCode).toBe('DEPENDENCY_DOWN');
    } finally {
      await down.close();
    }
  });
});
describe('whoever proves the address owns the account', () => {
  it('drops a squatter who linked a provider that does not vouch for the email, when a vouching one proves it', async () => {
    const email = `${unique('victim-fb')}@example.test`;
    // The squatter signs up through Facebook with the victim's address: an unverified account.
    const squatterFacebook = { id: unique('fb-squatter'), name: 'Squatter', email };
    fakes.facebook.user = squatterFacebook;
    const squatter = await exchange(server, (await signInWithBrowser(server, 'facebook')).landing);
    expect(squatter.body).toMatchObject({ created: true, user: { emailVerified: false } });
    await server.settle();
    expect(server.mail.sent.filter((mail) => mail.to === email)).toEqual([]);

    // The victim signs in with Google, which vouches for the address.
    fakes.google.user = { sub: unique('google-victim'), email, email_verified: true };
    const victim = await exchange(server, (await signInWithBrowser(server, 'google')).landing);
    expect(victim.body).toMatchObject({ created: false, user: { id: squatter.body.user.id, emailVerified: true } });
    expect((await get(server, '/users/me', squatter.body.accessToken)).body.appCode).toBe('SESSION_REVOKED');
    const identities = await get(server, '/auth/identities', victim.body.accessToken);
    expect(identities.body.map((i: { provider: string }) => i.provider)).toEqual(['google']);

    // The squatter's Facebook no longer reaches the account.
    fakes.facebook.user = squatterFacebook;
    const again = await signInWithBrowser(server, 'facebook');
    expect(again.landing.searchParams.get('error')).toBe('EMAIL_TAKEN');
  });

  it('drops unproven identities when the address is proven by the emailed link', async () => {
    const email = `${unique('fb-link')}@example.test`;
    const facebookUser = { id: unique('fb'), name: 'Someone', email };
    fakes.facebook.user = facebookUser;
    const viaFacebook = await exchange(server, (await signInWithBrowser(server, 'facebook')).landing);
    // Someone asks for the verification email; the link is followed signed in as the account.
    expect((await post(server, '/auth/email/resend', {}, viaFacebook.body.accessToken)).status).toBe(200);
    await server.settle();
    const mail = server.mail.sent.findLast((m) => m.to === email);
    const token = new URL(
      /https?:\/\/\S+verify-email\?token=[\w-]+/.exec(mail?.text ?? '')?.[0] ?? 'x:',
    ).searchParams.get('token');
    expect((await post(server, '/auth/email/verify', { token }, viaFacebook.body.accessToken)).status).toBe(200);
    fakes.facebook.user = facebookUser;
    expect((await signInWithBrowser(server, 'facebook')).landing.searchParams.get('error')).toBe('EMAIL_TAKEN');
  });

  it('voids a provider sign-in not yet exchanged when the password is reset', async () => {
    const email = `${unique('fb-reset')}@example.test`;
    fakes.facebook.user = { id: unique('fb'), name: 'Someone', email };
    const account = await exchange(server, (await signInWithBrowser(server, 'facebook')).landing);
    expect(account.status).toBe(200);
    // A sign-in finished at the provider, its code not yet exchanged for a session.
    const pending = (await signInWithBrowser(server, 'facebook')).landing;
    expect((await post(server, '/auth/password/forgot', { email })).status).toBe(200);
    await server.settle();
    const mail = server.mail.sent.findLast((m) => m.to === email && m.template === 'reset-password');
    const token = /reset-password\?token=([\w-]+)/.exec(mail?.text ?? '')?.[1];
    expect((await post(server, '/auth/password/reset', { token, newPassword: 'After-reset-123' })).status).toBe(200);
    // The reset ended every session: the code would have started one it did not end.
    const late = await exchange(server, pending);
    expect([late.status, late.body.appCode]).toEqual([401, 'INVALID_CODE']);
  });

  it("gives a nameless account the provider's name when it links", async () => {
    const email = `${unique('nameless')}@example.test`;
    const registered = await post(server, '/auth/register', { email, password: 'Nameless-pass-1' });
    expect(registered.body.user.name).toBeNull();
    fakes.apple.user = { sub: unique('apple'), email, email_verified: 'true', given_name: 'Ada', family_name: 'L' };
    const linked = await exchange(server, (await signInWithBrowser(server, 'apple')).landing);
    expect(linked.body.user).toMatchObject({ id: registered.body.user.id, name: 'Ada L' });
  });
});

describe("the frontend's own PKCE (codeChallenge)", () => {
  async function started(codeChallenge?: string) {
    const sub = unique('pkce');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    const query = new URLSearchParams({ redirectTo: `${FRONTEND}/cb`, ...(codeChallenge && { codeChallenge }) });
    const start = await fetch(`${server.url}/api/auth/oauth/oidc/start?${query}`, { redirect: 'manual' });
    const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const atProvider = await fetch(start.headers.get('location') ?? '', { redirect: 'manual' });
    const back = await fetch(atProvider.headers.get('location') ?? '', { redirect: 'manual', headers: { cookie } });
    return new URL(back.headers.get('location') ?? '').searchParams.get('code') ?? '';
  }

  it('binds the code to the frontend that started the sign-in', async () => {
    const verifier = randomPKCECodeVerifier();
    const challenge = await calculatePKCECodeChallenge(verifier);
    // Without the verifier, or with another one: refused (an attacker's code planted in a frontend).
    for (const codeVerifier of [undefined, randomPKCECodeVerifier()]) {
      const refused = await post(server, '/auth/oauth/exchange', { code: await started(challenge), codeVerifier });
      expect(refused.body.appCode, String(codeVerifier)).toBe('INVALID_CODE');
    }
    // A verifier for a sign-in started without a challenge: refused too.
    const planted = await post(server, '/auth/oauth/exchange', { code: await started(), codeVerifier: verifier });
    expect(planted.body.appCode).toBe('INVALID_CODE');
    const signedIn = await post(server, '/auth/oauth/exchange', {
      code: await started(challenge),
      codeVerifier: verifier,
    });
    expect(signedIn.status).toBe(200);
  });

  it('refuses a malformed challenge', async () => {
    const start = await fetch(
      `${server.url}/api/auth/oauth/oidc/start?redirectTo=${FRONTEND}/&codeChallenge=plain-text-verifier`,
      { redirect: 'manual' },
    );
    expect(start.status).toBe(400);
    expect(((await start.json()) as Answer).appCode).toBe('VALIDATION_FAILED');
  });

  it('never returns a code or an error that was planted in redirectTo', async () => {
    const sub = unique('planted');
    fakes.oidc.user = { sub, email: `${sub}@acme.test`, email_verified: true };
    fakes.oidc.nextOutcome = 'deny';
    const { landing } = await signInWithBrowser(server, 'oidc', {
      redirectTo: `${FRONTEND}/cb?code=attacker-code&error=NONE&keep=1`,
    });
    expect(landing.searchParams.getAll('code')).toEqual([]);
    expect(landing.searchParams.getAll('error')).toEqual(['OAUTH_DENIED']);
    expect(landing.searchParams.get('keep')).toBe('1');
  });
});

describe('more that can go wrong', () => {
  /** A TCP server that accepts connections and never answers. */
  async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
    const sockets = new Set<import('node:net').Socket>();
    const tcp: NetServer = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const { port } = tcp.address() as { port: number };
    return {
      url: `http://127.0.0.1:${port}`,
      close: () =>
        new Promise((resolve) => {
          for (const socket of sockets) socket.destroy();
          tcp.close(() => resolve());
        }),
    };
  }

  it('gives up on a provider whose discovery or API never answers (OAUTH_TIMEOUT_MS)', async () => {
    const silent = await silentServer();
    const isolated = await startServer({
      OAUTH_TIMEOUT_MS: '1000',
      OAUTH_OIDC_ISSUER: silent.url,
      OAUTH_GITHUB_API_URL: `${silent.url}/api`,
    });
    try {
      const start = await fetch(`${isolated.url}/api/auth/oauth/oidc/start?redirectTo=${FRONTEND}/x`, {
        redirect: 'manual',
      });
      expect(start.headers.get('location')).toBe(`${FRONTEND}/x?error=OAUTH_PROVIDER_ERROR`);
      fakes.github.user = { id: 4_000_000 + counter, login: unique('gh'), name: null, emails: [] };
      const github = await signInWithBrowser(isolated, 'github');
      expect(github.landing.searchParams.get('error')).toBe('OAUTH_PROVIDER_ERROR');
    } finally {
      await isolated.close();
      await silent.close();
    }
  });

  it("answers 502 when the provider's keys cannot be fetched, not 401", async () => {
    const broken = await startBrokenIssuer((issuer) => ({
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
    }));
    const isolated = await startServer({ OAUTH_OIDC_ISSUER: broken.issuer });
    try {
      const idToken = await fakes.oidc.signIdToken({ sub: 'x', email: 'x@acme.test' }, { issuer: broken.issuer });
      const refused = await post(isolated, '/auth/oauth/id-token', { provider: 'oidc', idToken });
      expect(refused.status).toBe(502);
      expect(refused.body.appCode).toBe('OAUTH_PROVIDER_ERROR');
    } finally {
      await isolated.close();
      await broken.close();
    }
  });

  it('answers OAUTH_PROVIDER_ERROR, never a 500, to a discovery document without its endpoints or with keys at no URL', async () => {
    const broken = await startBrokenIssuer((issuer) => ({
      issuer,
      token_endpoint: `${issuer}/token`,
      jwks_uri: 'no url',
    }));
    const isolated = await startServer({ OAUTH_OIDC_ISSUER: broken.issuer });
    try {
      const start = await fetch(`${isolated.url}/api/auth/oauth/oidc/start?redirectTo=${FRONTEND}/`, {
        redirect: 'manual',
      });
      expect(new URL(start.headers.get('location') ?? '').searchParams.get('error')).toBe('OAUTH_PROVIDER_ERROR');
      const idToken = await fakes.oidc.signIdToken({ sub: 'x', email: 'x@acme.test' }, { issuer: broken.issuer });
      const refused = await post(isolated, '/auth/oauth/id-token', { provider: 'oidc', idToken });
      expect([refused.status, refused.body.appCode]).toEqual([502, 'OAUTH_PROVIDER_ERROR']);
    } finally {
      await isolated.close();
      await broken.close();
    }
  });

  it('treats Apple\'s "cancel" as a refusal', async () => {
    const callback = await untilCallback(server, 'apple');
    const form = new URLSearchParams(String(callback.init.body));
    const cancelled = await fetch(callback.url, {
      ...callback.init,
      body: new URLSearchParams({ state: form.get('state') ?? '', error: 'user_cancelled_authorize' }).toString(),
    });
    expect(cancelled.status).toBe(303);
    expect(new URL(cancelled.headers.get('location') ?? '').searchParams.get('error')).toBe('OAUTH_DENIED');
  });

  it('stores only what fits: a bounded subject, a valid email, a name of at most 100 characters', async () => {
    const tooLong = await fakes.oidc.signIdToken({
      sub: 'x'.repeat(300),
      email: 'long@acme.test',
      email_verified: true,
    });
    expect((await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: tooLong })).body.appCode).toBe(
      'INVALID_ID_TOKEN',
    );
    const notAnEmail = await fakes.oidc.signIdToken({
      sub: unique('bad-email'),
      email: 'not an email',
      email_verified: true,
    });
    expect((await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: notAnEmail })).body.appCode).toBe(
      'OAUTH_EMAIL_MISSING',
    );
    const sub = unique('long-name');
    const longName = await fakes.oidc.signIdToken({
      sub,
      email: `${sub}@acme.test`,
      email_verified: true,
      name: `Ada\u0000 ${'L'.repeat(200)}`,
    });
    const signedIn = await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: longName });
    expect(signedIn.body.user.name).toBe(`Ada ${'L'.repeat(96)}`);
    // Cut by characters, as the users table counts them: never half of an emoji (stored as U+FFFD).
    const emojiSub = unique('emoji-name');
    const emojiName = await fakes.oidc.signIdToken({
      sub: emojiSub,
      email: `${emojiSub}@acme.test`,
      email_verified: true,
      name: `Ada ${'L'.repeat(95)}😀😀`,
    });
    const emojiSignedIn = await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: emojiName });
    expect(emojiSignedIn.body.user.name).toBe(`Ada ${'L'.repeat(95)}😀`);
    // Held to what the API takes for a name: no bidi override, zero-width space or line separator;
    // nothing visible left is no name.
    for (const [name, stored] of [
      ['\u202EAda\u200B Love\u2028lace\uFEFF', 'Ada Lovelace'],
      ['\u3164', null],
      ['👩\u200D💻 Ada \u200F', '👩\u200D💻 Ada \u200F'],
    ] as const) {
      const nameSub = unique('clean-name');
      const token = await fakes.oidc.signIdToken({
        sub: nameSub,
        email: `${nameSub}@acme.test`,
        email_verified: true,
        name,
      });
      const cleaned = await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: token });
      expect(cleaned.body.user.name, JSON.stringify(name)).toBe(stored);
    }
    // Half of a surrogate pair is no subject: two of them would be stored as the same U+FFFD.
    const halfPair = await fakes.oidc.signIdToken({ sub: `x\ud800${unique('half')}`, email: 'half@acme.test' });
    expect((await post(server, '/auth/oauth/id-token', { provider: 'oidc', idToken: halfPair })).body.appCode).toBe(
      'INVALID_ID_TOKEN',
    );
  });

  it('lets only one of two concurrent unlinks remove the last way to sign in', async () => {
    const sub = unique('race');
    const email = `${sub}@acme.test`;
    fakes.oidc.user = { sub, email, email_verified: true };
    const signedIn = await exchange(server, (await signInWithBrowser(server, 'oidc')).landing);
    fakes.google.user = { sub: unique('google'), email, email_verified: true };
    await exchange(server, (await signInWithBrowser(server, 'google')).landing);
    const unlink = (provider: string) =>
      fetch(`${server.url}/api/auth/identities/${provider}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${signedIn.body.accessToken}` },
      }).then((r) => r.status);
    expect((await Promise.all([unlink('oidc'), unlink('google')])).sort()).toEqual([200, 409]);
  });

  it('sets a __Host- cookie, Secure and SameSite=None, on an https PUBLIC_URL (Apple posts cross-site)', async () => {
    const secure = await buildTestApp({ env: { ...providerEnv(), PUBLIC_URL: 'https://api.example.test' } });
    try {
      const start = await secure.app.inject({ url: `/api/auth/oauth/oidc/start?redirectTo=${FRONTEND}/` });
      expect(start.statusCode).toBe(302);
      expect(String(start.headers['set-cookie'])).toMatch(
        /^__Host-app_oauth_browser=[\w-]{43}; Path=\/; Max-Age=600; HttpOnly; Secure; SameSite=None$/,
      );
      // The same value without the prefix (a cookie a sibling subdomain could set) is not read.
      const value = String(start.headers['set-cookie']).split(';')[0]?.split('=')[1];
      const state = new URL(String(start.headers.location)).searchParams.get('state');
      const planted = await secure.app.inject({
        url: `/api/auth/oauth/oidc/callback?state=${state}&code=x`,
        headers: { cookie: `app_oauth_browser=${value}` },
      });
      expect(planted.json().appCode).toBe('OAUTH_STATE_INVALID');
    } finally {
      await secure.close();
    }
  });
});

/** An issuer whose discovery document is `document` (the fields every provider has added) and whose other endpoints fail. */
async function startBrokenIssuer(document: (issuer: string) => Record<string, unknown>) {
  const { createServer: createHttpServer } = await import('node:http');
  let issuer = '';
  const broken = createHttpServer((request, response) => {
    if (request.url === '/.well-known/openid-configuration') {
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          ...document(issuer),
        }),
      );
    } else {
      response.statusCode = 500;
      response.end('down');
    }
  });
  await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(broken.address() as { port: number }).port}`;
  return { issuer, close: () => new Promise((resolve) => broken.close(resolve)) };
}
