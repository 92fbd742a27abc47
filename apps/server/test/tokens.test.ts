import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVELOPMENT_JWT_SECRET, loadConfig } from '../src/config.ts';
import { createTokenService } from '../src/infra/tokens.ts';
import {
  buildTestApp,
  fakeClock,
  registerAccount,
  startTestServer,
  type TestApp,
  testConfig,
} from './helpers/index.ts';

describe('access tokens', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  const me = (authorization?: string) =>
    t.app.inject({ method: 'GET', url: '/api/users/me', headers: authorization ? { authorization } : {} });

  it('carry sub, sid, jti, iat, exp, iss and aud, signed with HS256 by default', async () => {
    const account = await registerAccount(t.app);
    expect(decodeProtectedHeader(account.accessToken).alg).toBe('HS256');
    const claims = decodeJwt(account.accessToken);
    expect(claims).toMatchObject({ sub: account.id, iss: 'app', aud: 'app' });
    expect(claims.sid).toMatch(/^[0-9a-f-]{36}$/);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);
  });

  describe('hostile tokens are refused with 401 and change nothing', () => {
    let victim: { id: string; accessToken: string };
    let sid: string;
    beforeAll(async () => {
      victim = await registerAccount(t.app);
      sid = decodeJwt(victim.accessToken).sid as string;
    });

    const sign = (
      secret: string,
      claims: Record<string, unknown> = {},
      options: { exp?: number; iss?: string; aud?: string } = {},
    ) =>
      new SignJWT({ sid, ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(victim.id)
        .setJti('00000000-0000-4000-8000-000000000000')
        .setIssuedAt()
        .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600)
        .setIssuer(options.iss ?? 'app')
        .setAudience(options.aud ?? 'app')
        .sign(new TextEncoder().encode(secret));

    it.each([
      ['no Authorization header', async () => undefined, 'UNAUTHORIZED'],
      ['a non-Bearer scheme', async () => `Basic ${Buffer.from('a:b').toString('base64')}`, 'UNAUTHORIZED'],
      ['garbage', async () => 'Bearer not.a.jwt', 'UNAUTHORIZED'],
      [
        'a token signed with another secret',
        async () => `Bearer ${await sign('another-secret-that-is-long-enough-1234')}`,
        'UNAUTHORIZED',
      ],
      [
        'an unsigned token (alg: none)',
        async () =>
          `Bearer ${new UnsecuredJWT({ sid }).setSubject(victim.id).setIssuer('app').setAudience('app').setIssuedAt().setExpirationTime('10m').encode()}`,
        'UNAUTHORIZED',
      ],
      [
        'an expired token',
        async () => `Bearer ${await sign(DEVELOPMENT_JWT_SECRET, {}, { exp: Math.floor(Date.now() / 1000) - 10 })}`,
        'TOKEN_EXPIRED',
      ],
      [
        'a token for another audience',
        async () => `Bearer ${await sign(DEVELOPMENT_JWT_SECRET, {}, { aud: 'other-app' })}`,
        'UNAUTHORIZED',
      ],
      [
        'a token from another issuer',
        async () => `Bearer ${await sign(DEVELOPMENT_JWT_SECRET, {}, { iss: 'evil' })}`,
        'UNAUTHORIZED',
      ],
      [
        'a token without a session id',
        async () => `Bearer ${await sign(DEVELOPMENT_JWT_SECRET, { sid: undefined })}`,
        'UNAUTHORIZED',
      ],
      ['a huge header', async () => `Bearer ${'a'.repeat(7_000)}`, 'UNAUTHORIZED'],
    ])('%s', async (_, authorization, appCode) => {
      const response = await me(await authorization());
      expect(response.statusCode).toBe(401);
      expect(response.json().appCode).toBe(appCode);
    });

    it('accepts a well-formed token signed with the real secret (the check above is not vacuous)', async () => {
      const response = await me(`Bearer ${await sign(DEVELOPMENT_JWT_SECRET)}`);
      expect(response.statusCode).toBe(200);
      expect(response.json().id).toBe(victim.id);
    });
  });

  describe('verified tokens remembered by the process', () => {
    const jwt = testConfig({}).jwt;
    it('still expire on time, and a token altered by one character is verified afresh (and refused)', async () => {
      const clock = fakeClock();
      const tokens = await createTokenService(jwt, clock);
      const { token } = await tokens.issueAccessToken({ userId: randomUUID(), sessionId: randomUUID() });
      const claims = await tokens.verifyAccessToken(token);
      expect(await tokens.verifyAccessToken(token)).toEqual(claims);

      const [header, payload, signature] = token.split('.') as [string, string, string];
      // The first character: all six of its bits are the signature's (the last one's lowest
      // bits are padding, which base64url decoding drops: changing only those changes nothing).
      const flipped = `${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
      await expect(tokens.verifyAccessToken(`${header}.${payload}.${flipped}`)).rejects.toMatchObject({
        reason: 'invalid',
      });
      const forgedPayload = Buffer.from(JSON.stringify({ ...claims, sub: randomUUID() })).toString('base64url');
      await expect(tokens.verifyAccessToken(`${header}.${forgedPayload}.${signature}`)).rejects.toMatchObject({
        reason: 'invalid',
      });

      clock.advance(jwt.accessTokenTtlSeconds * 1000 - 1_000);
      expect(await tokens.verifyAccessToken(token)).toEqual(claims);
      clock.advance(1_000);
      await expect(tokens.verifyAccessToken(token)).rejects.toMatchObject({ reason: 'expired' });
    });

    it('are not shared by a process with another secret', async () => {
      const clock = fakeClock();
      const issuer = await createTokenService(jwt, clock);
      const other = await createTokenService({ ...jwt, secret: `${jwt.secret}-other` }, clock);
      const { token } = await issuer.issueAccessToken({ userId: randomUUID(), sessionId: randomUUID() });
      await issuer.verifyAccessToken(token);
      await expect(other.verifyAccessToken(token)).rejects.toMatchObject({ reason: 'invalid' });
    });
  });

  it('serves an empty JWKS with HS256: a shared secret is never published', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ keys: [] });
  });
});

describe('a JWT key pair', () => {
  it('is refused at start-up when its public key is another pair’s (no token could be verified)', () => {
    const [signing, other] = [generateKeyPairSync('ed25519'), generateKeyPairSync('ed25519')];
    const pem = {
      JWT_PRIVATE_KEY: signing.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      JWT_PUBLIC_KEY: other.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    };
    const result = loadConfig(pem);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.problems.join('\n')).toMatch(
      /JWT_PUBLIC_KEY: is not the public half of JWT_PRIVATE_KEY/,
    );
    const matching = { ...pem, JWT_PUBLIC_KEY: signing.publicKey.export({ format: 'pem', type: 'spki' }).toString() };
    expect(loadConfig(matching).ok).toBe(true);
  });
});

describe('EdDSA access tokens', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const env = {
    JWT_PRIVATE_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString().replaceAll('\n', '\\n'),
    JWT_PUBLIC_KEY: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    JWT_KEY_ID: 'key-2026-11',
  };
  let server: TestApp & { url: string };
  beforeAll(async () => {
    server = await startTestServer({ env });
  });
  afterAll(() => server.close());

  it('are signed with the configured key and verifiable by another service through the JWKS', async () => {
    const account = await registerAccount(server.app);
    expect(decodeProtectedHeader(account.accessToken)).toMatchObject({ alg: 'EdDSA', kid: 'key-2026-11' });
    const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(account.accessToken, jwks, { issuer: 'app', audience: 'app' });
    expect(payload.sub).toBe(account.id);
    const keys = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as {
      keys: Record<string, string>[];
    };
    expect(keys.keys).toEqual([
      expect.objectContaining({ kty: 'OKP', crv: 'Ed25519', kid: 'key-2026-11', alg: 'EdDSA', use: 'sig' }),
    ]);
    expect(keys.keys[0]).not.toHaveProperty('d'); // never the private part
  });

  it('refuse an HS256 token made with the public key as secret (algorithm confusion)', async () => {
    const account = await registerAccount(server.app);
    const claims = decodeJwt(account.accessToken);
    const forged = await new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: 'HS256', kid: 'key-2026-11' })
      .setSubject(account.id)
      .setJti('00000000-0000-4000-8000-000000000000')
      .setIssuedAt()
      .setExpirationTime('10m')
      .setIssuer('app')
      .setAudience('app')
      .sign(new TextEncoder().encode(env.JWT_PUBLIC_KEY));
    const response = await server.app.inject({
      method: 'GET',
      url: '/api/users/me',
      headers: { authorization: `Bearer ${forged}` },
    });
    expect(response.statusCode).toBe(401);
  });
});
