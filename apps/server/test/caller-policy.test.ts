/**
 * The caller policy (`authenticate`, `assertPermission`) outside tRPC: a plain Fastify route
 * (a file upload, an OAuth callback) that calls it answers exactly as the procedures do,
 * with the same status, app code, message and details.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DependencyUnavailableError } from '../src/infra/dependency-errors.ts';
import { assertPermission } from '../src/modules/auth/assert-permission.ts';
import { authenticate } from '../src/modules/auth/authenticate.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  type FakeClock,
  fakeClock,
  registerAccount,
  registerAdmin,
  type TestApp,
} from './helpers/index.ts';

describe('caller policy on a plain Fastify route', () => {
  let t: TestApp;
  let clock: FakeClock;
  beforeAll(async () => {
    clock = fakeClock();
    t = await buildTestApp({
      overrides: { clock },
      plainRoutes(app, services) {
        app.get('/plain/me', async (request) => authenticate(services, request.headers.authorization));
        app.get('/plain/users', async (request) => {
          const caller = await authenticate(services, request.headers.authorization);
          const permissions = await assertPermission(services, caller, 'users:read');
          return { userId: caller.userId, permissions: [...permissions].sort() };
        });
        app.get('/plain/bug', async () => {
          throw new Error('relation "secrets" does not exist: SELECT * FROM secrets');
        });
      },
    });
  });
  afterAll(() => t.close());

  const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers });

  /** The error body without the request id, which differs per request. */
  function errorOf(response: LightMyRequestResponse) {
    const { requestId, ...body } = response.json();
    expect(requestId).toBe(response.headers['x-request-id']);
    return { status: response.statusCode, retryAfter: response.headers['retry-after'], body };
  }

  /** Asserts that the plain route and the REST procedure refuse `headers` alike, and returns the plain answer. */
  async function refusedAlike(plainUrl: string, restUrl: string, headers: Record<string, string> = {}) {
    const plain = errorOf(await get(plainUrl, headers));
    expect(plain).toEqual(errorOf(await get(restUrl, headers)));
    return plain;
  }

  it('lets a signed-in caller through, and one holding the permission', async () => {
    const admin = await registerAdmin(t.app, t.services.db);
    const me = await get('/plain/me', bearer(admin));
    expect(me.statusCode).toBe(200);
    expect(me.json()).toEqual({ userId: admin.id, sessionId: expect.any(String) });
    const users = await get('/plain/users', bearer(admin));
    expect(users.statusCode).toBe(200);
    expect(users.json()).toMatchObject({ userId: admin.id, permissions: expect.arrayContaining(['users:read']) });
  });

  it.each([
    ['no Authorization header', {}, 'Sign in first: send Authorization: Bearer <accessToken>'],
    ['another scheme', { authorization: 'Basic YTpi' }, 'Sign in first: send Authorization: Bearer <accessToken>'],
    ['a token that is not valid', { authorization: 'Bearer not.a.jwt' }, 'The access token is not valid'],
  ])('answers 401 UNAUTHORIZED to %s, as the procedures do', async (_, headers, message) => {
    const refused = await refusedAlike('/plain/me', '/api/users/me', headers);
    expect(refused).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED', appCode: 'UNAUTHORIZED', message } });
  });

  it('answers a bug in a plain route as a 500 that shows neither its message nor its stack', async () => {
    expect(errorOf(await get('/plain/bug'))).toEqual({
      status: 500,
      retryAfter: undefined,
      body: { code: 'INTERNAL_SERVER_ERROR', appCode: 'INTERNAL_ERROR', message: 'Internal server error' },
    });
  });

  it('answers 401 SESSION_REVOKED once the session has ended, as the procedures do', async () => {
    const account = await registerAccount(t.app);
    expect((await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) })).statusCode).toBe(
      200,
    );
    const refused = await refusedAlike('/plain/me', '/api/users/me', bearer(account));
    expect(refused).toMatchObject({ status: 401, body: { appCode: 'SESSION_REVOKED' } });
  });

  it('answers 403 PERMISSION_DENIED naming the permission, as the procedures do', async () => {
    const user: Account = await registerAccount(t.app);
    const refused = await refusedAlike('/plain/users', '/api/users', bearer(user));
    expect(refused).toMatchObject({
      status: 403,
      body: {
        code: 'FORBIDDEN',
        appCode: 'PERMISSION_DENIED',
        message: 'Missing permission: users:read',
        details: { permission: 'users:read' },
      },
    });
  });

  it('asks Postgres when the store cannot answer the revocation check, and fails closed (503) when neither can', async () => {
    const account = await registerAccount(t.app);
    const ended = await registerAccount(t.app);
    expect((await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(ended) })).statusCode).toBe(
      200,
    );
    const storeAway = new DependencyUnavailableError('redis', 'The store did not answer');
    // The plain route reads alone; procedures read along with their rate limit's count.
    const getMany = vi.spyOn(t.services.kv, 'getMany').mockRejectedValue(storeAway);
    // (Counted by `increment`: the in-memory store's `incrementAndGet` reads through the failing `getMany`.)
    const count = t.services.kv.increment.bind(t.services.kv);
    const incrementAndGet = vi
      .spyOn(t.services.kv, 'incrementAndGet')
      .mockImplementation(async (key, options) => ({ counter: await count(key, options), values: storeAway }));
    try {
      // Postgres, the truth, answers: the live session is let in, the ended one is not.
      for (const url of ['/plain/me', '/api/users/me']) expect((await get(url, bearer(account))).statusCode).toBe(200);
      expect(await refusedAlike('/plain/me', '/api/users/me', bearer(ended))).toMatchObject({
        status: 401,
        body: { appCode: 'SESSION_REVOKED' },
      });

      // Postgres away too: nobody is let in.
      const databaseAway = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      const selectFrom = vi.spyOn(t.services.db, 'selectFrom').mockImplementation(() => {
        throw databaseAway;
      });
      try {
        expect(await refusedAlike('/plain/me', '/api/users/me', bearer(account))).toMatchObject({
          status: 503,
          retryAfter: expect.any(String),
          body: { appCode: 'DEPENDENCY_DOWN', details: { dependency: 'database' } },
        });
      } finally {
        selectFrom.mockRestore();
      }
    } finally {
      getMany.mockRestore();
      incrementAndGet.mockRestore();
    }
  });

  it('answers 401 TOKEN_EXPIRED once the access token has expired, as the procedures do', async () => {
    const account = await registerAccount(t.app);
    clock.advance(15 * 60_000 + 1000);
    const refused = await refusedAlike('/plain/me', '/api/users/me', bearer(account));
    expect(refused).toMatchObject({
      status: 401,
      body: { appCode: 'TOKEN_EXPIRED', message: 'The access token has expired: refresh it' },
    });
  });
});
