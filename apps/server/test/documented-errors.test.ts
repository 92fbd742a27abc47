/**
 * The app codes every operation documents because of what it is built on — signed in,
 * permission-gated, rate limited, taking input, a JSON body, a path parameter, backed by
 * Postgres or Redis — answered for real by each operation that lists them, read from
 * /openapi.json as a client reads it. Each module's own tests get the codes its services
 * answer; the test helpers hold every answer to the document (helpers/error-observations.ts).
 */
import { randomUUID } from 'node:crypto';
import { createDb } from '@app/db';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVELOPMENT_JWT_SECRET } from '../src/config.ts';
import { RedisStore } from '../src/infra/kv/index.ts';
import { type Account, bearer, buildTestApp, registerAccount, registerAdmin, type TestApp } from './helpers/index.ts';

interface Parameter {
  name: string;
  in: string;
  schema?: { type?: string; maxLength?: number };
}
interface DocumentedOperation {
  /** `POST /auth/register` */
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  codes: Set<string>;
  signedIn: boolean;
  query: Parameter[];
}

const SOME_ID = '01900000-0000-7000-8000-000000000000';
const url = (operation: DocumentedOperation, id = SOME_ID) => `/api${operation.path.replace(/\{\w+\}/g, id)}`;

/**
 * The procedures' operations. Plain routes (`x-plain-route`: the sign-in redirects, file
 * bytes) are not built on the procedure builders; their own tests get each code they list.
 */
async function documentedOperations(app: FastifyInstance): Promise<DocumentedOperation[]> {
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, Record<string, unknown>>>;
  };
  const plain = (operation: Record<string, unknown>) => operation['x-plain-route'] === true;
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([, operation]) => !plain(operation))
      .map(([method, operation]) => {
        const responses = operation.responses as Record<string, { content?: Record<string, { schema?: unknown }> }>;
        const codes = Object.entries(responses)
          .filter(([status]) => Number(status) >= 400)
          .flatMap(([, response]) => {
            const schema = response.content?.['application/json']?.schema as {
              properties?: { appCode?: { enum?: string[] } };
            };
            return schema?.properties?.appCode?.enum ?? [];
          });
        return {
          name: `${method.toUpperCase()} ${path}`,
          method: method.toUpperCase() as DocumentedOperation['method'],
          path,
          codes: new Set(codes),
          signedIn: JSON.stringify(operation.security ?? []).includes('bearerAuth'),
          query: ((operation.parameters as Parameter[] | undefined) ?? []).filter((p) => p.in === 'query'),
        };
      }),
  );
}

function documenting(operations: DocumentedOperation[], code: string): DocumentedOperation[] {
  const found = operations.filter((operation) => operation.codes.has(code));
  expect(found.length, `operations documenting ${code}`).toBeGreaterThan(0);
  return found;
}

function call(app: FastifyInstance, operation: DocumentedOperation, options: Partial<InjectOptions> = {}) {
  return app.inject({
    method: operation.method,
    url: url(operation),
    ...(operation.method !== 'GET' && { payload: {} }),
    ...options,
  } as InjectOptions);
}

/** An access token the server signed (the development secret), for any user and session. */
function accessToken(claims: { sub: string; sid: string }, expiresAt = Math.floor(Date.now() / 1000) + 600) {
  return new SignJWT({ sid: claims.sid })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(expiresAt)
    .setIssuer('app')
    .setAudience('app')
    .sign(new TextEncoder().encode(DEVELOPMENT_JWT_SECRET));
}

const sessionOf = (account: Account) =>
  JSON.parse(Buffer.from(account.accessToken.split('.')[1] as string, 'base64url').toString()).sid as string;

/** An input each operation refuses: no schema here accepts a JSON array, a non-UUID id or a non-number limit. */
function invalidInput(operation: DocumentedOperation): Partial<InjectOptions> {
  if (operation.method !== 'GET') return { payload: [] };
  if (operation.path.includes('{')) return { url: url(operation, 'not-a-uuid') };
  const numeric = operation.query.find((parameter) => ['integer', 'number'].includes(parameter.schema?.type ?? ''));
  if (numeric) return { url: `${url(operation)}?${numeric.name}=many` };
  const flag = operation.query.find((parameter) => parameter.schema?.type === 'boolean');
  if (flag) return { url: `${url(operation)}?${flag.name}=maybe` };
  throw new Error(`${operation.name}: teach invalidInput() an input this operation refuses`);
}

describe('the codes each operation documents because of what it is built on', () => {
  let t: TestApp;
  let operations: DocumentedOperation[];
  beforeAll(async () => {
    t = await buildTestApp({ env: { BODY_LIMIT_BYTES: '1024' } });
    operations = await documentedOperations(t.app);
  });
  afterAll(() => t?.close());

  it('answers PERMISSION_DENIED, naming the permission, to a caller without it', async () => {
    const user = await registerAccount(t.app);
    for (const operation of documenting(operations, 'PERMISSION_DENIED')) {
      const response = await call(t.app, operation, { headers: bearer(user) });
      expect(response.statusCode, operation.name).toBe(403);
      expect(response.json(), operation.name).toMatchObject({
        appCode: 'PERMISSION_DENIED',
        details: { permission: expect.any(String) },
      });
    }
  });

  it('answers TOKEN_EXPIRED to an expired access token', async () => {
    const account = await registerAccount(t.app);
    const expired = await accessToken({ sub: account.id, sid: sessionOf(account) }, Math.floor(Date.now() / 1000) - 10);
    for (const operation of documenting(operations, 'TOKEN_EXPIRED')) {
      const response = await call(t.app, operation, { headers: { authorization: `Bearer ${expired}` } });
      expect(response.statusCode, operation.name).toBe(401);
      expect(response.json().appCode, operation.name).toBe('TOKEN_EXPIRED');
    }
  });

  it('answers SESSION_REVOKED to the token of an ended session', async () => {
    const account = await registerAccount(t.app);
    const logout = await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) });
    expect(logout.statusCode).toBe(200);
    for (const operation of documenting(operations, 'SESSION_REVOKED').filter((o) => o.signedIn)) {
      const response = await call(t.app, operation, { headers: bearer(account) });
      expect(response.statusCode, operation.name).toBe(401);
      expect(response.json().appCode, operation.name).toBe('SESSION_REVOKED');
    }
  });

  it('answers VALIDATION_FAILED with the issues to an invalid input', async () => {
    const admin = await registerAdmin(t.app, t.services.db);
    for (const operation of documenting(operations, 'VALIDATION_FAILED')) {
      const response = await call(t.app, operation, { headers: bearer(admin), ...invalidInput(operation) });
      expect(response.statusCode, operation.name).toBe(400);
      expect(response.json(), operation.name).toMatchObject({
        appCode: 'VALIDATION_FAILED',
        issues: [expect.objectContaining({ message: expect.any(String) })],
      });
    }
  });

  it('answers BAD_REQUEST, 413 and 415 to a malformed, oversized or non-JSON body', async () => {
    const json = { 'content-type': 'application/json' };
    for (const operation of operations.filter((o) => o.method !== 'GET')) {
      const cases = [
        [{ headers: json, payload: '{"unfinished": ' }, 400, 'BAD_REQUEST'],
        [{ headers: json, payload: JSON.stringify({ padding: 'x'.repeat(2_000) }) }, 413, 'PAYLOAD_TOO_LARGE'],
        [{ headers: { 'content-type': 'text/plain' }, payload: 'hello' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ] as const;
      for (const [options, status, appCode] of cases) {
        expect(operation.codes, operation.name).toContain(appCode);
        const response = await call(t.app, operation, options);
        expect(response.statusCode, `${operation.name} ${appCode}`).toBe(status);
        expect(response.json().appCode, `${operation.name} ${appCode}`).toBe(appCode);
      }
    }
  });
});

describe('RATE_LIMITED', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '1' } });
  });
  afterAll(() => t?.close());

  it('is answered, with Retry-After, by every rate-limited operation once the client is over its limit', async () => {
    const operations = await documentedOperations(t.app);
    await t.app.inject({ method: 'GET', url: '/api/users/me' }); // the one call this minute
    for (const operation of documenting(operations, 'RATE_LIMITED')) {
      const response = await call(t.app, operation);
      expect(response.statusCode, operation.name).toBe(429);
      expect(response.json().appCode, operation.name).toBe('RATE_LIMITED');
      expect(Number(response.headers['retry-after']), operation.name).toBeGreaterThan(0);
    }
  });
});

/** Valid inputs of the operations that reach Postgres or Redis with a body (every public one is here). */
const VALID_INPUTS: Record<string, object> = {
  'POST /auth/register': { email: 'new@example.com', password: 'Sunny-day-42' },
  'POST /auth/login': { email: 'someone@example.com', password: 'Sunny-day-42' },
  'POST /auth/refresh': { refreshToken: 'a'.repeat(43) },
  'POST /auth/password/forgot': { email: 'someone@example.com' },
  'POST /auth/password/reset': { token: 'a'.repeat(43), newPassword: 'Sunny-day-42' },
  'POST /auth/email/verify': { token: 'a'.repeat(43) },
  'POST /auth/otp/request': { email: 'someone@example.com' },
  'POST /auth/otp/verify': { email: 'someone@example.com', code: '123456' },
  'POST /auth/oauth/exchange': { code: 'a'.repeat(43) },
};

/** Operations that reach Postgres only past a configured provider: their own tests get the 503. */
const DEPENDENCY_DOWN_ELSEWHERE = new Set(['POST /auth/oauth/id-token']);

describe('DEPENDENCY_DOWN', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({
      overrides: {
        db: createDb({ url: 'postgres://postgres@127.0.0.1:1/nowhere', connectionTimeoutMs: 500 }),
        kv: new RedisStore({ url: 'redis://127.0.0.1:1', keyPrefix: 'nowhere:', commandTimeoutMs: 200 }),
      },
    });
  });
  afterAll(() => t?.close());

  it('is answered fast, with Retry-After, by every operation that needs Postgres or Redis, and only by them', async () => {
    const operations = await documentedOperations(t.app);
    // Most operations need a backend: a document that listed the code nowhere would check nothing here.
    expect(operations.filter((o) => o.codes.has('DEPENDENCY_DOWN')).length).toBeGreaterThan(operations.length / 2);
    const token = await accessToken({ sub: randomUUID(), sid: randomUUID() });
    for (const operation of operations.filter((o) => !DEPENDENCY_DOWN_ELSEWHERE.has(o.name))) {
      const input = VALID_INPUTS[operation.name];
      if (!operation.signedIn && operation.method !== 'GET' && !input) {
        throw new Error(`${operation.name}: add a valid input to VALID_INPUTS`);
      }
      const response = await call(t.app, operation, {
        headers: { authorization: `Bearer ${token}` },
        ...(input && { payload: input }),
      });
      if (operation.codes.has('DEPENDENCY_DOWN')) {
        expect(response.statusCode, operation.name).toBe(503);
        expect(response.json().appCode, operation.name).toBe('DEPENDENCY_DOWN');
        expect(Number(response.headers['retry-after']), operation.name).toBeGreaterThan(0);
      } else {
        expect(response.statusCode, operation.name).toBeLessThan(500);
      }
    }
  });
});
