/**
 * The fake identity providers, driven by the real `openid-client` over real HTTP: if the
 * library signs in against them, and fails where it fails against the real providers, the
 * server's sign-in tests can trust them.
 */
import { request as httpRequest } from 'node:http';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FakeFacebook,
  type FakeGitHub,
  type FakeOidcProvider,
  formPostFields,
  startFakeFacebook,
  startFakeGitHub,
  startFakeOidcProvider,
} from './helpers/index.ts';

/** Never visited: the test reads the redirect itself, as the browser would follow it. */
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** What an app does to start a sign-in: the authorization URL, and what it keeps in the session. */
async function startSignIn(config: client.Configuration, parameters: Record<string, string> = {}) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    ...parameters,
  });
  return { url, codeVerifier, state };
}

/** The browser's step: open the authorization URL and take the redirect back to the app. */
async function callbackFrom(url: URL): Promise<URL> {
  const response = await fetch(url, { redirect: 'manual' });
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location') ?? '');
}

/** A configuration from manual metadata (GitHub and Facebook have no discovery document). */
function oauthConfig(
  endpoints: { issuer: string; authorization_endpoint: string; token_endpoint: string },
  id: string,
  secret: string,
) {
  const config = new client.Configuration(endpoints, id, secret);
  client.allowInsecureRequests(config);
  return config;
}

describe('the fake OIDC provider', () => {
  let provider: FakeOidcProvider;
  let config: client.Configuration;
  beforeAll(async () => {
    provider = await startFakeOidcProvider();
    config = await client.discovery(new URL(provider.issuer), provider.clientId, 'fake-oidc-secret', undefined, {
      execute: [client.allowInsecureRequests],
    });
  });
  afterAll(() => provider.close());

  /** Up to the callback, with a nonce: what the app holds when the browser comes back. */
  async function signIn() {
    const nonce = client.randomNonce();
    const started = await startSignIn(config, { scope: 'openid email profile', nonce });
    const checks = { pkceCodeVerifier: started.codeVerifier, expectedState: started.state, expectedNonce: nonce };
    return { callback: await callbackFrom(started.url), checks };
  }

  it('signs in: discovery, PKCE, an ID token the library validates, userinfo', async () => {
    const { callback, checks } = await signIn();
    expect(callback.searchParams.get('iss')).toBe(provider.issuer);
    const tokens = await client.authorizationCodeGrant(config, callback, checks);
    expect(tokens).toMatchObject({ token_type: 'bearer', expires_in: 3600, scope: 'openid email profile' });
    expect(decodeProtectedHeader(tokens.id_token ?? '')).toMatchObject({ alg: 'RS256', kid: expect.any(String) });
    expect(tokens.claims()).toMatchObject({
      iss: provider.issuer,
      aud: provider.clientId,
      sub: provider.user.sub,
      email: provider.user.email,
      email_verified: true,
      name: provider.user.name,
      nonce: checks.expectedNonce,
    });
    expect(await client.fetchUserInfo(config, tokens.access_token, provider.user.sub)).toEqual(provider.user);
    const unknown = await fetch(`${provider.issuer}/userinfo`, { headers: { authorization: 'Bearer nope' } });
    expect(unknown.status).toBe(401);
  });

  it('refuses a wrong PKCE verifier, and a code used twice, with invalid_grant', async () => {
    const wrongVerifier = await signIn();
    const checks = { ...wrongVerifier.checks, pkceCodeVerifier: client.randomPKCECodeVerifier() };
    await expect(client.authorizationCodeGrant(config, wrongVerifier.callback, checks)).rejects.toMatchObject({
      error: 'invalid_grant',
      status: 400,
    });
    const reused = await signIn();
    await client.authorizationCodeGrant(config, reused.callback, reused.checks);
    await expect(client.authorizationCodeGrant(config, reused.callback, reused.checks)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('sends a denial, or a request without PKCE, back to the app; an unknown client gets a 400', async () => {
    provider.nextOutcome = 'deny';
    const denied = await signIn();
    expect(provider.nextOutcome).toBe('approve');
    const grant = client.authorizationCodeGrant(config, denied.callback, denied.checks);
    await expect(grant).rejects.toBeInstanceOf(client.AuthorizationResponseError);
    await expect(grant).rejects.toMatchObject({ error: 'access_denied' });

    const noPkce = await callbackFrom(
      client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, state: 's1' }),
    );
    expect(Object.fromEntries(noPkce.searchParams)).toMatchObject({ error: 'invalid_request', state: 's1' });

    const stranger = client.buildAuthorizationUrl(config, {
      client_id: 'stranger',
      redirect_uri: REDIRECT_URI,
      state: 's',
    });
    expect((await fetch(stranger, { redirect: 'manual' })).status).toBe(400);
  });

  it('token endpoint faults: a 500, and a hang the client gives up on', async () => {
    const failing = await signIn();
    provider.tokenEndpoint = 'error500';
    await expect(client.authorizationCodeGrant(config, failing.callback, failing.checks)).rejects.toMatchObject({
      code: 'OAUTH_RESPONSE_IS_NOT_CONFORM',
      cause: { status: 500 },
    });

    const impatient = await client.discovery(
      new URL(provider.issuer),
      provider.clientId,
      'fake-oidc-secret',
      undefined,
      {
        execute: [client.allowInsecureRequests],
        timeout: 1,
      },
    );
    const hanging = await signIn();
    provider.tokenEndpoint = 'hang';
    const tokenRequests = () => provider.requests.filter((r) => r.method === 'POST' && r.path === '/token').length;
    const before = tokenRequests();
    try {
      await expect(client.authorizationCodeGrant(impatient, hanging.callback, hanging.checks)).rejects.toMatchObject({
        code: 'OAUTH_TIMEOUT',
      });
    } finally {
      provider.tokenEndpoint = 'ok';
    }
    expect(tokenRequests()).toBe(before + 1);
  });

  it('signIdToken: verifies against the JWKS, unless signed by a foreign key, expired, or for another app', async () => {
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri ?? ''));
    const verify = (token: string) => jwtVerify(token, jwks, { issuer: provider.issuer, audience: provider.clientId });
    const { payload } = await verify(await provider.signIdToken({ sub: 'native-1', nonce: 'n' }));
    expect(payload).toMatchObject({ sub: 'native-1', nonce: 'n' });
    await expect(verify(await provider.signIdToken({ sub: 'x' }, { signWithForeignKey: true }))).rejects.toMatchObject({
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
    await expect(verify(await provider.signIdToken({ sub: 'x' }, { expiresInSeconds: -60 }))).rejects.toMatchObject({
      code: 'ERR_JWT_EXPIRED',
    });
    await expect(verify(await provider.signIdToken({ sub: 'x' }, { audience: 'other-app' }))).rejects.toMatchObject({
      claim: 'aud',
    });
  });
});

describe('the fake OIDC provider as Apple: ES256, a JWT client secret over Basic auth, form_post', () => {
  const clientId = 'com.example.web';
  let apple: FakeOidcProvider;
  beforeAll(async () => {
    apple = await startFakeOidcProvider({
      alg: 'ES256',
      clientId,
      clientSecret: (secret) => decodeJwt(secret).sub === clientId,
    });
    apple.user = {
      sub: '001234.abcd',
      email: 'x1@privaterelay.appleid.com',
      email_verified: 'true',
      given_name: 'Ada',
      family_name: 'Lovelace',
    };
  });
  afterAll(() => apple.close());

  const configWith = (secret: string) =>
    client.discovery(new URL(apple.issuer), clientId, undefined, client.ClientSecretBasic(secret), {
      execute: [client.allowInsecureRequests],
    });

  /** Signs in through the form_post page: its fields, and the tokens (or the failure). */
  async function signIn(config: client.Configuration) {
    const nonce = client.randomNonce();
    const started = await startSignIn(config, { scope: 'openid name email', nonce, response_mode: 'form_post' });
    const page = await fetch(started.url, { redirect: 'manual' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const { action, fields } = formPostFields(await page.text());
    expect(action).toBe(REDIRECT_URI);
    const callback = new Request(action, { method: 'POST', body: new URLSearchParams(fields) });
    const checks = { pkceCodeVerifier: started.codeVerifier, expectedState: started.state, expectedNonce: nonce };
    return { fields, tokens: client.authorizationCodeGrant(config, callback, checks) };
  }

  it('posts the code back, with the user only the first time; the ID token carries string email_verified', async () => {
    const privateKey = (await generateKeyPair('ES256')).privateKey;
    const secret = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject(clientId).sign(privateKey);
    const config = await configWith(secret);

    const first = await signIn(config);
    expect(JSON.parse(first.fields.user ?? '')).toEqual({
      name: { firstName: 'Ada', lastName: 'Lovelace' },
      email: 'x1@privaterelay.appleid.com',
    });
    const tokens = await first.tokens;
    expect(decodeProtectedHeader(tokens.id_token ?? '').alg).toBe('ES256');
    expect(tokens.claims()).toMatchObject({ sub: '001234.abcd', email_verified: 'true' });

    const second = await signIn(config);
    expect(second.fields).not.toHaveProperty('user');
    expect(Object.keys(second.fields).sort()).toEqual(['code', 'state']);
    await second.tokens;
  });

  it('refuses a client secret the predicate rejects with invalid_client', async () => {
    const { tokens } = await signIn(await configWith('not-a-jwt'));
    await expect(tokens).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
  });
});

describe('the fake GitHub', () => {
  let github: FakeGitHub;
  let config: client.Configuration;
  let endpoints: { issuer: string; authorization_endpoint: string; token_endpoint: string };
  beforeAll(async () => {
    github = await startFakeGitHub();
    endpoints = {
      issuer: github.url,
      authorization_endpoint: `${github.url}/login/oauth/authorize`,
      token_endpoint: `${github.url}/login/oauth/access_token`,
    };
    config = oauthConfig(endpoints, github.clientId, 'fake-github-secret');
  });
  afterAll(() => github.close());

  async function signIn(verifier?: string) {
    const { url, codeVerifier, state } = await startSignIn(config, { scope: 'read:user user:email' });
    const callback = await callbackFrom(url);
    return client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier ?? codeVerifier,
      expectedState: state,
    });
  }

  it('signs in with PKCE; the API answers with the user and their emails', async () => {
    const tokens = await signIn();
    expect(tokens).toMatchObject({ token_type: 'bearer', scope: 'read:user,user:email' });
    const api = async (path: string) => {
      const url = new URL(`${github.apiUrl}${path}`);
      return (await client.fetchProtectedResource(config, tokens.access_token, url, 'GET')).json();
    };
    expect(await api('/user')).toEqual({
      id: 1001,
      login: 'octo-ada',
      name: 'Ada Lovelace',
      email: null,
      avatar_url: expect.stringContaining('1001'),
    });
    expect(await api('/user/emails')).toEqual([
      { email: 'ada@example.com', primary: true, verified: true, visibility: 'private' },
      { email: 'ada@old.example.com', primary: false, verified: false, visibility: null },
    ]);
  });

  it('the API takes `token` auth, and refuses a missing User-Agent (403) or an unknown token (401)', async () => {
    const { access_token } = await signIn();
    const get = (authorization: string, userAgent?: string) =>
      new Promise<number>((resolve, reject) => {
        const headers = { authorization, ...(userAgent && { 'user-agent': userAgent }) };
        httpRequest(`${github.apiUrl}/user`, { headers }, (response) => resolve(response.resume().statusCode ?? 0))
          .on('error', reject)
          .end();
      });
    expect(await get(`token ${access_token}`, 'my-app')).toBe(200);
    expect(await get(`token ${access_token}`)).toBe(403);
    expect(await get('token gho_unknown', 'my-app')).toBe(401);
  });

  it('answers token errors like GitHub: HTTP 200 with an error, form-encoded unless JSON is asked for', async () => {
    await expect(signIn(client.randomPKCECodeVerifier())).rejects.toMatchObject({
      code: 'OAUTH_INVALID_RESPONSE',
      cause: { cause: { body: { error: 'bad_verification_code' } } },
    });
    const body = new URLSearchParams({
      client_id: github.clientId,
      client_secret: 'fake-github-secret',
      code: 'unknown',
      redirect_uri: REDIRECT_URI,
    });
    const json = await fetch(endpoints.token_endpoint, {
      method: 'POST',
      body,
      headers: { accept: 'application/json' },
    });
    expect(json.status).toBe(200);
    expect(await json.json()).toMatchObject({ error: 'bad_verification_code' });
    const form = await fetch(endpoints.token_endpoint, { method: 'POST', body });
    expect(form.headers.get('content-type')).toContain('application/x-www-form-urlencoded');
    expect(new URLSearchParams(await form.text()).get('error')).toBe('bad_verification_code');
  });

  it('sends a denial back to the app, and can fail its token endpoint with a 500', async () => {
    github.nextOutcome = 'deny';
    await expect(signIn()).rejects.toMatchObject({ error: 'access_denied' });
    github.tokenEndpoint = 'error500';
    try {
      await expect(signIn()).rejects.toMatchObject({ cause: { status: 500 } });
    } finally {
      github.tokenEndpoint = 'ok';
    }
  });
});

describe('the fake Facebook', () => {
  let facebook: FakeFacebook;
  let config: client.Configuration;
  const configFor = (fb: FakeFacebook) =>
    oauthConfig(
      {
        issuer: fb.url,
        authorization_endpoint: `${fb.url}/v21.0/dialog/oauth`,
        token_endpoint: `${fb.graphUrl}/v21.0/oauth/access_token`,
      },
      fb.clientId,
      'fake-facebook-secret',
    );
  beforeAll(async () => {
    facebook = await startFakeFacebook();
    config = configFor(facebook);
  });
  afterAll(() => facebook.close());

  async function signIn(options: { verifier?: string; config?: client.Configuration } = {}) {
    const { url, codeVerifier, state } = await startSignIn(config, { scope: 'email public_profile' });
    const callback = await callbackFrom(url);
    const checks = { pkceCodeVerifier: options.verifier ?? codeVerifier, expectedState: state };
    return client.authorizationCodeGrant(options.config ?? config, callback, checks);
  }

  it('signs in with PKCE; /me answers only the fields asked for', async () => {
    const { access_token, token_type } = await signIn();
    expect(token_type).toBe('bearer');
    const me = await fetch(`${facebook.graphUrl}/v21.0/me?fields=id,name,email&access_token=${access_token}`);
    expect(await me.json()).toEqual(facebook.user);
    const idOnly = await fetch(`${facebook.graphUrl}/v21.0/me?fields=id`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(await idOnly.json()).toEqual({ id: facebook.user.id });

    facebook.user = { id: '10000000000002', name: 'No Email' };
    const withoutEmail = (await signIn()).access_token;
    const noEmail = await fetch(`${facebook.graphUrl}/v21.0/me?fields=id,name,email&access_token=${withoutEmail}`);
    expect(await noEmail.json()).toEqual({ id: '10000000000002', name: 'No Email' });
  });

  it('fails like Facebook: denial with error_reason, Graph errors, a hanging token endpoint', async () => {
    facebook.nextOutcome = 'deny';
    const { url } = await startSignIn(config);
    expect(Object.fromEntries((await callbackFrom(url)).searchParams)).toMatchObject({
      error: 'access_denied',
      error_reason: 'user_denied',
    });

    // Graph's error body is not OAuth's, so the library sees only an unexpected 400.
    const wrongVerifier = signIn({ verifier: client.randomPKCECodeVerifier() });
    await expect(wrongVerifier).rejects.toMatchObject({
      code: 'OAUTH_RESPONSE_IS_NOT_CONFORM',
      cause: { status: 400 },
    });
    const me = await fetch(`${facebook.graphUrl}/v21.0/me?access_token=unknown`);
    expect(me.status).toBe(400);
    expect(await me.json()).toMatchObject({ error: { type: 'OAuthException', code: 190 } });

    const impatient = configFor(facebook);
    impatient.timeout = 1;
    facebook.tokenEndpoint = 'hang';
    try {
      await expect(signIn({ config: impatient })).rejects.toMatchObject({ code: 'OAUTH_TIMEOUT' });
    } finally {
      facebook.tokenEndpoint = 'ok';
    }
  });
});
