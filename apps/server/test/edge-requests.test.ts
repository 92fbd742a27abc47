/**
 * Requests at the edges that must get a clear 4xx, never a 500: NUL characters in any
 * string, TRACE, oversized batches, rows deleted by a concurrent request, a spoofed
 * X-Forwarded-For; and headers that keep tokens out of caches.
 */
import { createDb } from '@app/db';
import type { AnyTRPCProcedure } from '@trpc/server';
import type { KyselyPlugin } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recognizeError } from '../src/errors/index.ts';
import { appRouter } from '../src/trpc/router.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  login,
  registerAccount,
  registerAdmin,
  startTestServer,
  type TestApp,
  uniqueEmail,
  untilWaitingOnLocks,
} from './helpers/index.ts';

interface ZodNode {
  _zod: { def: Record<string, unknown> & { type: string } };
  safeParse(value: unknown): { success: boolean };
}

/** Every string schema reachable from `schema`, with its path. */
function stringSchemas(schema: ZodNode, path: string): [string, ZodNode][] {
  const def = schema._zod.def;
  switch (def.type) {
    case 'string':
      return [[path, schema]];
    case 'object':
      return Object.entries(def.shape as Record<string, ZodNode>).flatMap(([key, value]) =>
        stringSchemas(value, `${path}.${key}`),
      );
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
      return stringSchemas(def.innerType as ZodNode, path);
    case 'pipe':
      return stringSchemas(def.in as ZodNode, path);
    case 'array':
      return stringSchemas(def.element as ZodNode, `${path}[]`);
    default:
      return [];
  }
}

/** The app most tests here share (the HTTP-edge tests need settings of their own). */
let t: TestApp;
let admin: Account;
beforeAll(async () => {
  t = await buildTestApp();
  admin = await registerAdmin(t.app, t.services.db);
});
afterAll(() => t.close());

describe('NUL characters and unpaired surrogates', () => {
  it('are refused by every string field of every procedure input', () => {
    const procedures = appRouter._def.procedures as unknown as Record<string, AnyTRPCProcedure>;
    const fields: string[] = [];
    for (const [name, procedure] of Object.entries(procedures)) {
      for (const input of procedure._def.inputs as unknown as ZodNode[]) {
        for (const [path, schema] of stringSchemas(input, name)) {
          fields.push(path);
          expect(schema.safeParse('ok\u0000ok').success, path).toBe(false);
          expect(schema.safeParse('\u0000').success, path).toBe(false);
          expect(schema.safeParse('a\ud800b').success, path).toBe(false);
        }
      }
    }
    expect(fields).toEqual(expect.arrayContaining(['notes.create.title', 'auth.register.name', 'users.list.search']));
  });

  describe('over HTTP', () => {
    it.each([
      [
        'register name',
        'POST',
        '/api/auth/register',
        () => ({ email: uniqueEmail(), password: 'Sunny-day-42', name: 'A\u0000' }),
        ['name'],
      ],
      ['note title', 'POST', '/api/notes', () => ({ title: 'x\u0000y' }), ['title']],
      ['note body', 'POST', '/api/notes', () => ({ title: 'ok', body: '\u0000' }), ['body']],
      ['role description', 'POST', '/api/roles', () => ({ name: 'nul-role', description: 'a\u0000' }), ['description']],
    ] as const)('answers 400 naming the field for a NUL in the %s', async (_, method, url, payload, path) => {
      const response = await t.app.inject({ method, url, headers: bearer(admin), payload: payload() });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        appCode: 'VALIDATION_FAILED',
        issues: [{ path, message: 'must not contain NUL (\\u0000) characters' }],
      });
    });

    it('answers 400 naming the field for half of a surrogate pair, never storing it changed', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/notes',
        headers: bearer(admin),
        payload: { title: 'a\ud800b' },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        appCode: 'VALIDATION_FAILED',
        issues: [{ path: ['title'], message: 'must not contain unpaired surrogates (invalid Unicode)' }],
      });
      const paired = await t.app.inject({
        method: 'POST',
        url: '/api/notes',
        headers: bearer(admin),
        payload: { title: 'a😀b' },
      });
      expect(paired.json().title).toBe('a😀b');
    });

    it('answers 400 for a NUL in a search query string, and over tRPC', async () => {
      const rest = await t.app.inject({ method: 'GET', url: '/api/users?search=a%00b', headers: bearer(admin) });
      expect(rest.statusCode).toBe(400);
      expect(rest.json().issues[0].path).toEqual(['search']);
      const input = encodeURIComponent(JSON.stringify({ search: 'a\u0000b' }));
      const trpc = await t.app.inject({
        method: 'GET',
        url: `/trpc/notes.list?input=${input}`,
        headers: bearer(admin),
      });
      expect(trpc.statusCode).toBe(400);
      expect(trpc.json().error.data.appCode).toBe('VALIDATION_FAILED');
    });
  });
});

describe('HTTP edges', () => {
  let edge: TestApp;
  beforeAll(async () => {
    edge = await buildTestApp({
      env: { TRPC_MAX_BATCH_SIZE: '5', TRUST_PROXY: '1', RATE_LIMIT_AUTH_PER_MINUTE: '10' },
    });
  });
  afterAll(() => edge.close());

  it('answers TRACE on /trpc with 405, without logging an error', async () => {
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const traced = await buildTestApp({ log });
    try {
      for (const url of ['/trpc/health.live', '/trpc/auth.login', '/trpc/nope']) {
        const response = await traced.app.inject({ method: 'TRACE', url });
        expect(response.statusCode, url).toBeLessThan(500);
      }
      const known = await traced.app.inject({ method: 'TRACE', url: '/trpc/health.live' });
      expect(known.statusCode).toBe(405);
      expect(known.headers.allow).toBe('GET');
      expect(known.json().error.data).toMatchObject({ code: 'METHOD_NOT_SUPPORTED', appCode: 'METHOD_NOT_SUPPORTED' });
      // The log was written (an access line per request), and none of it at error level or above.
      expect(lines.filter((line) => /TRACE \/trpc\//.test(line.msg))).toHaveLength(4);
      expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    } finally {
      await traced.close();
    }
  });

  it("answers what Fastify refuses before a procedure runs in tRPC's shape on a tRPC path, on both transports", async () => {
    const page = 'https://app.example.test';
    for (const trpcTransport of ['fast', 'official'] as const) {
      const t = await buildTestApp({ env: { BODY_LIMIT_BYTES: '4096', CORS_ORIGINS: page }, trpcTransport });
      try {
        const refusals = [
          // Over BODY_LIMIT_BYTES, a content type with no parser, a malformed URL (before routing).
          [
            413,
            'PAYLOAD_TOO_LARGE',
            {
              method: 'POST',
              url: '/trpc/auth.login',
              payload: JSON.stringify({ email: 'x'.repeat(5000) }),
              headers: { 'content-type': 'application/json' },
            },
          ],
          [
            415,
            'UNSUPPORTED_MEDIA_TYPE',
            {
              method: 'POST',
              url: '/trpc/auth.login',
              payload: '<login/>',
              headers: { 'content-type': 'application/xml' },
            },
          ],
          [400, 'BAD_REQUEST', { method: 'GET', url: '/trpc/health.live%E0' }],
        ] as const;
        for (const [status, appCode, request] of refusals) {
          const what = `${trpcTransport} ${request.method} ${request.url}`;
          const response = await t.app.inject({
            ...request,
            headers: { ...('headers' in request && request.headers), origin: page },
          });
          expect(response.statusCode, what).toBe(status);
          // Before: the REST body, which tRPC's client cannot read ("Unable to transform response from server").
          expect(response.json().error?.data, what).toMatchObject({
            appCode,
            httpStatus: status,
            requestId: response.headers['x-request-id'],
          });
          // Before: no CORS on a refusal made before routing: the page could not read it.
          expect(response.headers['access-control-allow-origin'], what).toBe(page);
        }
        // On a REST path, the REST body, and a status the API has a code for (a 414 was answered BAD_REQUEST).
        const rest = await t.app.inject({ method: 'GET', url: '/api/health%E0' });
        expect([rest.statusCode, rest.json().appCode]).toEqual([400, 'BAD_REQUEST']);
        const long = await t.app.inject({ method: 'GET', url: `/api/notes/${'a'.repeat(5001)}` });
        expect([long.statusCode, long.json().code]).toEqual([400, 'BAD_REQUEST']);
      } finally {
        await t.close();
      }
    }
  });

  it('refuses a tRPC batch larger than TRPC_MAX_BATCH_SIZE as a whole, on both transports', async () => {
    const paths = (n: number) => Array(n).fill('health.live').join(',');
    const five = await edge.app.inject({ method: 'GET', url: `/trpc/${paths(5)}?batch=1` });
    expect(five.statusCode).toBe(200);
    expect(five.json()).toHaveLength(5);
    const six = await edge.app.inject({ method: 'GET', url: `/trpc/${paths(6)}?batch=1` });
    expect(six.statusCode).toBe(400);
    expect(six.json().error.message).toMatch(/Batch call exceeds maximum size/);
    const official = await buildTestApp({ env: { TRPC_MAX_BATCH_SIZE: '5' }, trpcTransport: 'official' });
    try {
      const response = await official.app.inject({ method: 'GET', url: `/trpc/${paths(6)}?batch=1` });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual(six.json());
    } finally {
      await official.close();
    }
  });

  it('holds a multipart body sent to tRPC (which reads it itself) to BODY_LIMIT_BYTES, on both transports', async () => {
    const boundary = 'edge-boundary';
    const part = (bytes: number) =>
      `--${boundary}\r\ncontent-disposition: form-data; name="email"\r\n\r\n${'x'.repeat(bytes)}\r\n--${boundary}--\r\n`;
    // Over real HTTP: tRPC streams the body from the socket (an injected request is no IncomingMessage).
    for (const trpcTransport of ['fast', 'official'] as const) {
      const server = await startTestServer({ env: { BODY_LIMIT_BYTES: '4096' }, trpcTransport });
      try {
        const send = (bytes: number) =>
          fetch(`${server.url}/trpc/auth.login`, {
            method: 'POST',
            headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
            body: part(bytes),
          });
        const small = await send(100); // read whole, then refused as no input the procedure takes
        expect(small.status).toBe(400);
        const large = await send(64 * 1024);
        expect(large.status).toBe(413);
        expect(((await large.json()) as { error: { data: unknown } }).error.data).toMatchObject({
          code: 'PAYLOAD_TOO_LARGE',
        });
      } finally {
        await server.close();
      }
    }
  });

  it('probes the dependencies once a second however many readiness calls arrive', async () => {
    let probes = 0;
    const counting: KyselyPlugin = {
      transformQuery({ node }) {
        // A probe runs two raw statements: the database check (`select 1`) and the job backlog.
        if (node.kind === 'RawNode') probes += 1;
        return node;
      },
      transformResult: async ({ result }) => result,
    };
    const probed = await buildTestApp({
      database: edge.database,
      overrides: { db: createDb({ url: edge.database.url, poolMax: 2 }).withPlugin(counting) },
    });
    try {
      const batch = Array(5).fill('health.ready').join(',');
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => probed.app.inject({ method: 'GET', url: `/trpc/${batch}?batch=1` })),
      );
      expect(answers.every((answer) => answer.statusCode === 200)).toBe(true);
      expect(probes).toBe(2); // 50 readiness calls, one probe
    } finally {
      await probed.close();
    }
  });

  it('believes only the address the trusted proxy added, not what the client wrote in X-Forwarded-For', async () => {
    // Behind one proxy (TRUST_PROXY=1): the client's own entries come first, the proxy appends the real address.
    const attempt = (spoofed: string) =>
      login(edge.app, uniqueEmail(), 'Wrong-pass-1', { 'x-forwarded-for': `${spoofed}, 203.0.113.50` });
    for (let i = 0; i < 10; i++) expect((await attempt(`10.9.9.${i}`)).statusCode).toBe(401);
    expect((await attempt('10.9.9.99')).statusCode).toBe(429);
    // Another real client behind the same proxy is not affected.
    const other = await login(edge.app, uniqueEmail(), 'Wrong-pass-1', { 'x-forwarded-for': '203.0.113.51' });
    expect(other.statusCode).toBe(401);
  });

  it('sends Cache-Control: no-store with every token-bearing answer', async () => {
    const email = uniqueEmail();
    const register = await edge.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      headers: { 'x-forwarded-for': '203.0.113.60' },
      payload: { email, password: 'Sunny-day-42' },
    });
    expect(register.headers['cache-control']).toBe('no-store');
    const signIn = await login(edge.app, email, 'Sunny-day-42', { 'x-forwarded-for': '203.0.113.61' });
    expect(signIn.headers['cache-control']).toBe('no-store');
    const refreshed = await edge.app.inject({
      method: 'POST',
      url: '/trpc/auth.refresh',
      payload: { refreshToken: register.json().refreshToken },
    });
    expect(refreshed.headers['cache-control']).toBe('no-store');
    await edge.app.inject({
      method: 'POST',
      url: '/api/auth/otp/request',
      headers: { 'x-forwarded-for': '203.0.113.62' },
      payload: { email },
    });
    await edge.settle();
    const code = /\b(\d{6})\b/.exec(edge.mail.last(email, 'one-time-code')?.text ?? '')?.[1];
    const verified = await edge.app.inject({
      method: 'POST',
      url: '/api/auth/otp/verify',
      headers: { 'x-forwarded-for': '203.0.113.62' },
      payload: { email, code },
    });
    expect(verified.statusCode).toBe(200);
    expect(verified.headers['cache-control']).toBe('no-store');
  });
});

describe('rows that a concurrent request deleted', () => {
  it('answers 401 SESSION_REVOKED, not 500, when the caller is deleted while something is created for them', async () => {
    const account = await registerAccount(t.app);
    // Gone without the API (the token's session was never revoked): the insert meets the foreign key.
    await t.services.db.deleteFrom('users').where('id', '=', account.id).execute();
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/notes',
      headers: bearer(account),
      payload: { title: 'orphan' },
    });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ appCode: 'SESSION_REVOKED' });
  });

  it('answers 404, not 500, when a role is deleted while it is being assigned', async () => {
    const user = await registerAccount(t.app);
    const role = (
      await t.app.inject({ method: 'POST', url: '/api/roles', headers: bearer(admin), payload: { name: 'doomed' } })
    ).json();
    // The delete holds the role's row while the assignment checks it and inserts: the insert
    // waits on the foreign key, then fails when the delete commits.
    const { assignment } = await t.services.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('roles').where('id', '=', role.id).execute();
      const pending = t.app.inject({
        method: 'POST',
        url: `/api/users/${user.id}/roles/${role.id}`,
        headers: bearer(admin),
      });
      await untilWaitingOnLocks(t.services.db, 1);
      return { assignment: pending }; // wrapped: returning the promise itself would wait for it inside the transaction
    });
    const response = await assignment;
    expect(response.statusCode).toBe(404);
    expect(response.json().appCode).toBe('NOT_FOUND');
  });
});

describe('recognizeError', () => {
  const pgError = (code: string, message = 'boom') => Object.assign(new Error(message), { code });
  it.each([
    [pgError('23505'), 'CONFLICT'],
    [pgError('23503'), 'NOT_FOUND'],
    [pgError('40P01', 'deadlock detected'), 'CONFLICT'],
    [pgError('40001', 'could not serialize access due to concurrent update'), 'CONFLICT'],
    [pgError('ECONNREFUSED'), 'DEPENDENCY_DOWN'],
    [pgError('57P01', 'terminating connection due to administrator command'), 'DEPENDENCY_DOWN'],
    [pgError('08006'), 'DEPENDENCY_DOWN'],
    [pgError('53300'), 'DEPENDENCY_DOWN'],
    [pgError('53100', 'could not extend file: No space left on device'), 'DEPENDENCY_DOWN'],
    [pgError('53200', 'out of memory'), 'DEPENDENCY_DOWN'],
    [pgError('25006', 'cannot execute INSERT in a read-only transaction'), 'DEPENDENCY_DOWN'],
    [new Error('timeout exceeded when trying to connect'), 'DEPENDENCY_DOWN'],
    [new Error('Connection terminated unexpectedly'), 'DEPENDENCY_DOWN'],
  ])('maps %s to %s', (error, appCode) => {
    expect(recognizeError(error)?.appCode).toBe(appCode);
  });

  it('leaves bugs alone (a 500 without details)', () => {
    expect(recognizeError(new TypeError('x is undefined'))).toBeUndefined();
    expect(recognizeError(pgError('42P01'))).toBeUndefined();
    expect(recognizeError(pgError('25P02'))).toBeUndefined(); // a transaction already aborted: a bug's sequel
    expect(recognizeError(pgError('53400'))).toBeUndefined(); // a configured limit a query exceeds: not an outage
  });
});
