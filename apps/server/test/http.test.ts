import { type ClientRequest, get as httpGet, request as httpRequest, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDb } from '@app/db';
import { Validator } from '@seriousme/openapi-schema-validator';
import Fastify, { type FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKED_LINES_LIMITS, CheckedLines, nodeReads } from '../src/http/checked-lines.ts';
import { CommonHeadersResponse, HTML_CSP, NAMES_KEPT } from '../src/http/common-headers.ts';
import { lazySchemaCompilers } from '../src/http/schema-compilers.ts';
import { appendVary } from '../src/http/vary.ts';
import { MemoryStore, RedisStore } from '../src/infra/kv/index.ts';
import {
  abortedCalls,
  bearer,
  buildTestApp,
  registerAccount,
  startedCalls,
  startTestServer,
  type TestApp,
  testRouter,
  until,
} from './helpers/index.ts';

describe('HTTP surface', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ router: testRouter });
  });
  afterAll(() => t.close());

  describe('health', () => {
    it('answers live over REST and tRPC with the same body', async () => {
      const rest = await t.app.inject({ method: 'GET', url: '/api/health' });
      expect(rest.statusCode).toBe(200);
      expect(rest.json()).toEqual({ status: 'ok', version: '0.1.0', uptimeSeconds: expect.any(Number) });
      const trpc = await t.app.inject({ method: 'GET', url: '/trpc/health.live' });
      expect(trpc.statusCode).toBe(200);
      // The same body; the uptime may have crossed a second between the two calls.
      expect(trpc.json()).toEqual({ result: { data: { ...rest.json(), uptimeSeconds: expect.any(Number) } } });
    });

    it('answers ready with every check', async () => {
      const rest = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
      expect(rest.statusCode).toBe(200);
      const redis = process.env.REDIS_URL ? 'ok' : 'disabled';
      expect(rest.json()).toEqual({ status: 'ok', checks: { database: 'ok', redis } });
    });
  });

  describe('request id and timing', () => {
    it('generates a request id, echoes it, and reports Server-Timing', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/health' });
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(response.headers['server-timing']).toMatch(/^app;dur=\d+(\.\d+)?$/);
    });

    it('keeps a sane incoming request id and replaces a hostile one', async () => {
      const kept = await t.app.inject({
        method: 'GET',
        url: '/api/health',
        headers: { 'x-request-id': 'edge-42.abc' },
      });
      expect(kept.headers['x-request-id']).toBe('edge-42.abc');
      const hostile = 'x'.repeat(500);
      const replaced = await t.app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': hostile } });
      expect(replaced.headers['x-request-id']).not.toBe(hostile);
      expect(replaced.json().requestId).toBe(replaced.headers['x-request-id']);
    });
  });

  describe('errors', () => {
    it('answers an unknown route with a JSON 404 carrying the request id', async () => {
      for (const url of ['/nope', '/api/nope']) {
        const response = await t.app.inject({ method: 'GET', url });
        expect(response.statusCode).toBe(404);
        expect(response.headers['content-type']).toMatch(/application\/json/);
        expect(response.json()).toEqual({
          code: 'NOT_FOUND',
          appCode: 'ROUTE_NOT_FOUND',
          message: `No route for GET ${url}`,
          requestId: response.headers['x-request-id'],
        });
      }
    });

    it('answers a known path called with another method 405, naming the methods it is served with', async () => {
      const cases = [
        { method: 'DELETE', url: '/api/auth/login', allow: 'POST' },
        { method: 'PUT', url: '/api/notes', allow: 'GET, HEAD, POST' },
        {
          method: 'PUT',
          url: '/api/notes/0190a5f0-0000-7000-8000-000000000000?x=1',
          allow: 'DELETE, GET, HEAD, PATCH',
        },
        // Fixed paths that a route of the method asked for would take as its parameter (`{id}`).
        { method: 'GET', url: '/api/users/batch', allow: 'PATCH, POST' },
        { method: 'HEAD', url: '/api/users/batch', allow: 'PATCH, POST' },
        { method: 'DELETE', url: '/api/users/batch', allow: 'PATCH, POST' },
        { method: 'PATCH', url: '/api/users/batch-delete', allow: 'POST' },
        { method: 'GET', url: '/api/users/batch-delete', allow: 'POST' },
      ] as const;
      for (const { method, url, allow } of cases) {
        const response = await t.app.inject({ method, url });
        expect(response.statusCode).toBe(405);
        expect(response.headers.allow).toBe(allow);
        expect(response.headers['x-request-id']).toBeDefined();
        if (method === 'HEAD') continue; // no body
        expect(response.json()).toEqual({
          code: 'METHOD_NOT_SUPPORTED',
          appCode: 'METHOD_NOT_SUPPORTED',
          message: `${method} is not served on ${url.split('?')[0]}: use ${allow}`,
          requestId: response.headers['x-request-id'],
        });
      }
      // A path no route has, or one deeper than a route's, stays unknown; so does what a route
      // found nothing under (the outbox's missing email: mail-transports.test.ts).
      for (const [method, url] of [
        ['DELETE', '/api/notes/a/b'],
        ['POST', '/api/nope'],
      ] as const) {
        expect((await t.app.inject({ method, url })).statusCode).toBe(404);
      }
      // Whatever body comes with it: none labelled JSON, another type, JSON.
      for (const [headers, payload] of [
        [{ 'content-type': 'application/json' }, ''],
        [{ 'content-type': 'application/xml' }, '<x/>'],
        [{ 'content-type': 'application/json' }, '{}'],
      ] as const) {
        const response = await t.app.inject({ method: 'DELETE', url: '/api/users/batch', headers, payload });
        expect([response.statusCode, response.headers.allow]).toEqual([405, 'PATCH, POST']);
      }
      // So on any path: an unknown one or a wrong method is answered before its body is read
      // (before: an empty or bad JSON body was a 400, a body too large a 413).
      const tooLarge = JSON.stringify({ text: 'x'.repeat(2 * 1024 * 1024) });
      for (const [headers, payload] of [
        [{ 'content-type': 'application/json' }, ''],
        [{ 'content-type': 'application/json' }, '{'],
        [{ 'content-type': 'application/xml' }, '<x/>'],
        [{ 'content-type': 'application/json' }, tooLarge],
      ] as const) {
        const unknown = await t.app.inject({ method: 'POST', url: '/api/nope', headers, payload });
        expect([unknown.statusCode, unknown.json().appCode]).toEqual([404, 'ROUTE_NOT_FOUND']);
        const wrongMethod = await t.app.inject({ method: 'PUT', url: '/api/notes', headers, payload });
        expect([wrongMethod.statusCode, wrongMethod.headers.allow]).toEqual([405, 'GET, HEAD, POST']);
        expect(wrongMethod.json().appCode).toBe('METHOD_NOT_SUPPORTED');
      }
    });

    it('answers bad input with 400 and field issues over REST', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/probe/echo',
        payload: { name: 'x', count: 'many' },
      });
      expect(response.statusCode).toBe(400);
      const body = response.json();
      expect(body).toMatchObject({
        code: 'BAD_REQUEST',
        appCode: 'VALIDATION_FAILED',
        message: 'Input validation failed',
      });
      expect(body.requestId).toBe(response.headers['x-request-id']);
      expect(body.issues).toEqual([
        expect.objectContaining({ path: ['name'], message: expect.stringMatching(/2/) }),
        expect.objectContaining({ path: ['count'], message: expect.any(String) }),
      ]);
      expect(body).not.toHaveProperty('data');
    });

    it('answers bad input with 400 and the same issues over tRPC', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/trpc/probe.echo',
        payload: { name: 'x', count: 'many' },
      });
      expect(response.statusCode).toBe(400);
      const { error } = response.json();
      expect(error.message).toBe('Input validation failed');
      expect(error.data).toMatchObject({
        code: 'BAD_REQUEST',
        httpStatus: 400,
        appCode: 'VALIDATION_FAILED',
        path: 'probe.echo',
      });
      expect(error.data.issues.map((issue: { path: string[] }) => issue.path)).toEqual([['name'], ['count']]);
      expect(error.data.requestId).toBe(response.headers['x-request-id']);
    });

    it('passes valid input through on both transports', async () => {
      const rest = await t.app.inject({ method: 'POST', url: '/api/probe/echo', payload: { name: 'Ada', count: 3 } });
      expect(rest.json()).toEqual({ name: 'Ada', count: 3 });
      const trpc = await t.app.inject({ method: 'POST', url: '/trpc/probe.echo', payload: { name: 'Ada', count: 3 } });
      expect(trpc.json()).toEqual({ result: { data: { name: 'Ada', count: 3 } } });
    });

    it('maps an AppError to its status and app code on both transports', async () => {
      const rest = await t.app.inject({ method: 'GET', url: '/api/probe/fail?kind=conflict' });
      expect(rest.statusCode).toBe(409);
      expect(rest.json()).toMatchObject({
        code: 'CONFLICT',
        appCode: 'CONFLICT',
        message: 'That name is taken',
        details: { field: 'name' },
      });
      const input = encodeURIComponent(JSON.stringify({ kind: 'conflict' }));
      const trpc = await t.app.inject({ method: 'GET', url: `/trpc/probe.fail?input=${input}` });
      expect(trpc.statusCode).toBe(409);
      expect(trpc.json().error.data).toMatchObject({ appCode: 'CONFLICT', httpStatus: 409 });
    });

    it('hides internal error messages and stacks outside development', async () => {
      const rest = await t.app.inject({ method: 'GET', url: '/api/probe/fail?kind=internal' });
      expect(rest.statusCode).toBe(500);
      expect(rest.json()).toEqual({
        code: 'INTERNAL_SERVER_ERROR',
        appCode: 'INTERNAL_ERROR',
        message: 'Internal server error',
        requestId: rest.headers['x-request-id'],
      });
      const input = encodeURIComponent(JSON.stringify({ kind: 'internal' }));
      const trpc = await t.app.inject({ method: 'GET', url: `/trpc/probe.fail?input=${input}` });
      expect(trpc.statusCode).toBe(500);
      expect(trpc.body).not.toMatch(/secret_table|stack|\.ts:/);
      expect(trpc.json().error.message).toBe('Internal server error');
    });

    it('answers malformed JSON with 400 and an oversized body with 413', async () => {
      const malformed = await t.app.inject({
        method: 'POST',
        url: '/api/probe/echo',
        headers: { 'content-type': 'application/json' },
        payload: '{"name": ',
      });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json()).toMatchObject({ code: 'BAD_REQUEST', appCode: 'BAD_REQUEST' });
      const huge = await t.app.inject({
        method: 'POST',
        url: '/api/probe/echo',
        payload: { name: 'x'.repeat(t.services.config.bodyLimitBytes + 1), count: 1 },
      });
      expect(huge.statusCode).toBe(413);
      expect(huge.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', appCode: 'PAYLOAD_TOO_LARGE' });
    });

    it('reads an empty body labelled JSON as no body, refuses null and prototype poisoning (REST)', async () => {
      const account = await registerAccount(t.app);
      const json = { ...bearer(account), 'content-type': 'application/json' };
      const note = (
        await t.app.inject({ method: 'POST', url: '/api/notes', headers: bearer(account), payload: { title: 'x' } })
      ).json();
      const removed = await t.app.inject({
        method: 'DELETE',
        url: `/api/notes/${note.id}`,
        headers: json,
        payload: '',
      });
      expect(removed.statusCode, removed.body).toBe(200);
      const logout = await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: json, payload: '' });
      expect(logout.statusCode, logout.body).toBe(200);
      const other = await registerAccount(t.app);
      const otherJson = { ...bearer(other), 'content-type': 'application/json' };
      const nullBody = await t.app.inject({
        method: 'PATCH',
        url: '/api/users/me',
        headers: otherJson,
        payload: 'null',
      });
      expect(nullBody.statusCode).toBe(400);
      const poisoned = await t.app.inject({
        method: 'PATCH',
        url: '/api/users/me',
        headers: otherJson,
        payload: '{"__proto__": {"admin": true}}',
      });
      expect(poisoned.statusCode).toBe(400);
    });

    it('answers a malformed URL with the JSON error body', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/notes/%E0%A4%A' });
      expect(response.statusCode).toBe(400);
      // No hook runs for Fastify's own refusals: the headers every answer carries all the same.
      expect(response.headers['server-timing']).toMatch(/^app;dur=\d+\.\d$/);
      expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(response.json()).toMatchObject({
        code: 'BAD_REQUEST',
        appCode: 'BAD_REQUEST',
        requestId: response.headers['x-request-id'],
      });
    });

    it('answers the wrong method on a tRPC procedure with 405', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/trpc/probe.echo' });
      expect(response.statusCode).toBe(405);
      expect(response.json().error.data.appCode).toBe('METHOD_NOT_SUPPORTED');
    });
  });

  describe('documentation', () => {
    it('serves an OpenAPI document that validates, with every REST path', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
      expect(response.statusCode).toBe(200);
      const document = response.json();
      const validator = new Validator();
      const result = await validator.validate(document);
      expect(result.errors ?? []).toEqual([]);
      expect(result.valid).toBe(true);
      expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/health', '/health/ready', '/probe/echo']));
      expect(document.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    });

    it('marks exactly the operations that refuse a caller without a bearer token', async () => {
      const { paths } = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
        paths: Record<string, Record<string, { security?: unknown; 'x-plain-route'?: boolean }>>;
      };
      // A token is optional where public resources open without one (a profile picture).
      const OPTIONAL = [{ bearerAuth: [] }, {}];
      let protectedCount = 0;
      for (const [path, operations] of Object.entries(paths)) {
        for (const [method, operation] of Object.entries(operations)) {
          const url = `/api${path.replace(/\{\w+\}/g, '01900000-0000-7000-8000-000000000000')}`;
          const response = await t.app.inject({ method: method.toUpperCase() as 'GET', url });
          const needsToken = response.statusCode === 401 && response.json().appCode === 'UNAUTHORIZED';
          if (needsToken) protectedCount += 1;
          const optional = JSON.stringify(operation.security) === JSON.stringify(OPTIONAL);
          if (optional) expect(needsToken, `${method} ${path}`).toBe(false);
          else expect(operation.security, `${method} ${path}`).toEqual(needsToken ? [{ bearerAuth: [] }] : []);
        }
      }
      expect(protectedCount).toBeGreaterThan(15);
    });

    it('serves the interactive reference at /docs with its script from this server', async () => {
      const redirect = await t.app.inject({ method: 'GET', url: '/docs' });
      expect(redirect.statusCode).toBe(301);
      const page = await t.app.inject({ method: 'GET', url: '/docs/' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);
      expect(page.body).toContain('/openapi.json');
      const script = /<script[^>]+src="([^"]+)"/.exec(page.body)?.[1];
      expect(script).toBeDefined();
      expect(script).not.toMatch(/^https?:/);
      const bundle = await t.app.inject({ method: 'GET', url: new URL(script as string, 'http://x/docs/').pathname });
      expect(bundle.statusCode).toBe(200);
    });

    it('leads from / to /docs/, which opens on bearer auth with how to get a token, without hosted services', async () => {
      const server = await startTestServer();
      try {
        const root = await fetch(`${server.url}/`, { redirect: 'manual' });
        expect(root.status).toBe(302);
        expect(root.headers.get('location')).toBe('/docs/');
        const page = await (await fetch(`${server.url}/docs/`)).text();
        const configuration = JSON.parse(
          /createApiReference\('#app', (\{[\s\S]*?\})\)\s*<\/script>/.exec(page)?.[1] ?? '{}',
        );
        expect(configuration).toMatchObject({
          url: '/openapi.json',
          authentication: { preferredSecurityScheme: 'bearerAuth' },
          agent: { disabled: true },
          mcp: { disabled: true },
          showDeveloperTools: 'never',
          telemetry: false,
        });
        const document = (await (await fetch(`${server.url}${configuration.url}`)).json()) as {
          components: { securitySchemes: Record<string, unknown> };
          info: { description: string };
          externalDocs?: unknown;
        };
        expect(document.components.securitySchemes).toHaveProperty('bearerAuth');
        expect(document.info.description).toMatch(/POST \/api\/auth\/login[\s\S]*accessToken[\s\S]*Authentication/);
        // Scalar links the document's externalDocs in its header: it used to point at /docs itself.
        expect(document.externalDocs).toBeUndefined();
      } finally {
        await server.close();
      }
    });
  });

  describe('slow clients (REQUEST_TIMEOUT_MS=1000)', () => {
    /** A server with /endless: a body that never ends, 64 KiB at a time, as fast as the client reads. */
    async function serverWithEndlessBody() {
      const ended: string[] = [];
      const server = await startTestServer({
        env: { REQUEST_TIMEOUT_MS: '1000' },
        plainRoutes: (app) => {
          app.get('/endless', (_request, reply) => {
            const chunk = Buffer.alloc(64 * 1024, 'x');
            const body = new Readable({ read: () => body.push(chunk) });
            body.on('close', () => ended.push('body closed'));
            return reply.type('text/plain').send(body);
          });
          app.get('/slow-answer', async () => {
            await sleep(1_800);
            return { ok: true };
          });
        },
      });
      return { ...server, ended };
    }

    /** GETs `url`, reading the whole body, or none of it with `stall` (the request, to destroy at the end). */
    function get(url: string, { stall = false } = {}) {
      let request: ClientRequest | undefined;
      const answered = new Promise<{ status: number; received: number }>((resolve, reject) => {
        request = httpGet(url, (response) => {
          let received = 0;
          if (stall) response.pause();
          response.on('data', (chunk: Buffer) => {
            received += chunk.length;
          });
          const done = () => resolve({ status: response.statusCode ?? 0, received });
          response.on('error', done);
          response.on('close', done);
        });
        request.on('error', reject);
      });
      return { answered, request: request as unknown as ClientRequest };
    }

    it('cuts a download whose client stops reading, and lets the server close its stream', async () => {
      const server = await serverWithEndlessBody();
      const started = Date.now();
      const stalled = get(`${server.url}/endless`, { stall: true });
      try {
        // (A paused client does not see its socket close: the server's side is what counts.)
        await until(async () => server.ended.includes('body closed'), 'the server to close the stalled body', 10_000);
        expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
      } finally {
        stalled.request.destroy();
        await server.close();
      }
    });

    it("answers 408 in the app's error shape to a request whose body stops coming, and closes its connection", async () => {
      const server = await startTestServer({ env: { REQUEST_TIMEOUT_MS: '1000' } });
      try {
        // Two bytes of the hundred announced, then nothing (the client keeps its side open).
        const answer = parsed(
          await rawExchange(
            server.url,
            'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"',
          ),
        );
        expect(answer.statusLine).toBe('HTTP/1.1 408 Request Timeout');
        expect(answer.body).toMatchObject({ code: 'TIMEOUT', appCode: 'TIMEOUT' });
        expect(answer.headers['x-request-id']).toBe(answer.body.requestId);
        expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
      } finally {
        await server.close();
      }
    });

    it('starts with a limit longer than the 5 minutes Node assumes before it is told (REQUEST_TIMEOUT_MS=600000)', async () => {
      const server = await startTestServer({ env: { REQUEST_TIMEOUT_MS: '600000' } });
      try {
        expect([server.app.server.requestTimeout, server.app.server.headersTimeout]).toEqual([600_000, 600_000]);
        expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
      } finally {
        await server.close();
      }
    });

    it('keeps a download going while its client reads, and answers a slow handler', async () => {
      const server = await serverWithEndlessBody();
      try {
        const reading = get(`${server.url}/endless`).answered;
        await sleep(2_500); // more than twice the timeout, reading all along
        expect(server.ended).toEqual([]);
        // (Before the socket idle timer was per download only, this slow answer was cut.)
        const slow = await fetch(`${server.url}/slow-answer`);
        expect(slow.status).toBe(200);
        expect(await slow.json()).toEqual({ ok: true });
        server.app.server.closeAllConnections();
        expect((await reading).received).toBeGreaterThan(10 * 1024 * 1024);
      } finally {
        await server.close();
      }
    });
  });

  describe('CORS and headers', () => {
    it('allows listed origins only', async () => {
      const allowed = await t.app.inject({
        method: 'GET',
        url: '/api/health',
        headers: { origin: 'http://localhost:5173' },
      });
      expect(allowed.headers['access-control-allow-origin']).toBe('http://localhost:5173');
      const denied = await t.app.inject({
        method: 'GET',
        url: '/api/health',
        headers: { origin: 'https://evil.example' },
      });
      expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    });

    it("answers what Node's HTTP parser refuses in the app's error shape, with a request id and the security headers", async () => {
      const server = await startTestServer();
      const raw = (bytes: string) => rawExchange(server.url, bytes);
      try {
        const twice = (path: string) =>
          raw(
            `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
              'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}',
          );
        const rest = parsed(await twice('/api/auth/login'));
        // Before: Fastify's {"error":"Bad Request","message":"Client Error","statusCode":400}, no id, no headers.
        expect(rest.statusLine).toBe('HTTP/1.1 400 Bad Request');
        expect(rest.body).toMatchObject({ code: 'BAD_REQUEST', appCode: 'BAD_REQUEST' });
        expect(rest.body.requestId).toMatch(/^[0-9a-f]{32}$/);
        expect(rest.headers['x-request-id']).toBe(rest.body.requestId);
        expect(rest.headers['x-content-type-options']).toBe('nosniff');
        expect(rest.headers['cache-control']).toBe('no-store');
        expect(rest.headers.connection).toBe('close');
        // On a tRPC path, in tRPC's shape (its client reads nothing else).
        const trpc = parsed(await twice('/trpc/auth.login'));
        expect(trpc.body.error.data).toMatchObject({ appCode: 'BAD_REQUEST', httpStatus: 400 });
        // Headers over Node's limit.
        const large = await fetch(`${server.url}/api/health`, { headers: { 'x-pad': 'a'.repeat(20_000) } });
        expect(large.status).toBe(431);
        expect(((await large.json()) as { requestId: string }).requestId).toBe(large.headers.get('x-request-id'));
        // A client that keeps its side open after the answer (as one trickling a request would)
        // does not keep the connection: the server closes it.
        const { hostname, port } = new URL(server.url);
        const lingering = new Socket({ allowHalfOpen: true });
        const answered = new Promise<void>((resolve) => lingering.once('end', () => resolve()));
        lingering.on('data', () => {});
        lingering.connect(Number(port), hostname, () =>
          lingering.write('GET /api/health HTTP/1.1\r\nHost: \u0001\r\n\r\n'),
        );
        await answered;
        const connections = () =>
          new Promise<number>((resolve, reject) =>
            server.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
          );
        await expect.poll(connections).toBe(0); // before: 1, half-open for as long as the client kept it
        lingering.destroy();
        // The server goes on.
        expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
      } finally {
        await server.close();
      }
    });

    it('lets a browser page on a development origin PATCH and DELETE over REST (real preflight over HTTP)', async () => {
      const server = await startTestServer();
      try {
        const account = await registerAccount(server.app);
        for (const origin of ['http://localhost:5173', 'http://127.0.0.1:5173']) {
          for (const method of ['PATCH', 'DELETE']) {
            // What a browser sends before a cross-origin PATCH/DELETE with a bearer token and JSON.
            const preflight = await fetch(`${server.url}/api/users/me`, {
              method: 'OPTIONS',
              headers: {
                origin,
                'access-control-request-method': method,
                'access-control-request-headers': 'authorization,content-type',
              },
            });
            expect(preflight.status).toBe(204);
            expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
            expect(preflight.headers.get('access-control-allow-methods')?.split(/,\s*/)).toContain(method);
            expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/i);
          }
          const renamed = await fetch(`${server.url}/api/users/me`, {
            method: 'PATCH',
            headers: { origin, ...bearer(account), 'content-type': 'application/json' },
            body: JSON.stringify({ name: 'From the browser' }),
          });
          expect(renamed.status).toBe(200);
          expect(renamed.headers.get('access-control-allow-origin')).toBe(origin);
        }
        const stranger = await fetch(`${server.url}/api/users/me`, {
          method: 'OPTIONS',
          headers: { origin: 'http://127.0.0.1:6666', 'access-control-request-method': 'DELETE' },
        });
        expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
      } finally {
        await server.close();
      }
    });

    it('lets an allowed page read every answer, errors too, and tells caches the answer depends on Origin', async () => {
      const origin = 'http://localhost:5173';
      for (const url of ['/api/health', '/trpc/health.live', '/.well-known/jwks.json', '/api/nope']) {
        const response = await t.app.inject({ method: 'GET', url, headers: { origin } });
        expect(response.headers['access-control-allow-origin'], url).toBe(origin);
        expect(String(response.headers['access-control-expose-headers']).split(', '), url).toEqual(
          expect.arrayContaining([
            'x-request-id',
            'server-timing',
            'retry-after',
            'ratelimit-remaining',
            // A download's (GET /api/files/:id/content): its name, version and range.
            'content-disposition',
            'etag',
            'content-range',
            'accept-ranges',
          ]),
        );
        expect(String(response.headers.vary).split(', '), url).toContain('Origin');
      }
      // The other parts that choose an answer by a request header keep their Vary fields.
      const trpc = await t.app.inject({ method: 'GET', url: '/trpc/health.live', headers: { origin } });
      expect(trpc.headers.vary).toBe('trpc-accept, accept, Origin');
      const notFound = await t.app.inject({ method: 'GET', url: '/api/nope', headers: { origin } });
      expect(notFound.headers.vary).toBe('Accept-Language, Origin');
    });

    it('sends no CORS header but Vary to a request without Origin or from another origin', async () => {
      for (const headers of [{}, { origin: 'https://evil.example' }, { origin: '' }]) {
        const response = await t.app.inject({ method: 'GET', url: '/api/health', headers });
        expect(response.headers.vary).toBe('Origin');
        expect(Object.keys(response.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);
      }
    });

    it('answers preflights: methods and the asked headers for an allowed page, nothing for another, 400 for a bare OPTIONS', async () => {
      const asked = {
        'access-control-request-method': 'DELETE',
        'access-control-request-headers': 'authorization, content-type',
      };
      const allowed = await t.app.inject({
        method: 'OPTIONS',
        url: '/api/notes/0190a1b2-0000-7000-8000-000000000000',
        headers: { origin: 'http://localhost:3000', ...asked },
      });
      expect(allowed.statusCode).toBe(204);
      expect(allowed.body).toBe('');
      expect(allowed.headers['content-length']).toBe('0');
      expect(allowed.headers['access-control-allow-origin']).toBe('http://localhost:3000');
      expect(String(allowed.headers['access-control-allow-methods']).split(', ')).toEqual(
        expect.arrayContaining(['GET', 'POST', 'PATCH', 'DELETE']),
      );
      expect(allowed.headers['access-control-allow-headers']).toBe('authorization, content-type');
      expect(allowed.headers['access-control-max-age']).toBe('600');
      expect(allowed.headers.vary).toBe('Access-Control-Request-Headers, Origin');

      const stranger = await t.app.inject({
        method: 'OPTIONS',
        url: '/api/notes',
        headers: { origin: 'https://evil.example', ...asked },
      });
      expect(stranger.statusCode).toBe(204);
      expect(Object.keys(stranger.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);

      for (const headers of [{}, { origin: 'http://localhost:3000' }, { 'access-control-request-method': 'GET' }]) {
        const bare = await t.app.inject({ method: 'OPTIONS', url: '/api/health', headers });
        expect(bare.statusCode).toBe(400);
        expect(bare.json()).toMatchObject({
          code: 'BAD_REQUEST',
          message: expect.stringMatching(/preflight/),
          requestId: bare.headers['x-request-id'],
        });
      }
    });

    it.each(['fast', 'official'] as const)(
      'answers preflights of tRPC calls too (%s transport), whose route takes every other method',
      async (transport) => {
        const app = transport === 'fast' ? t : await buildTestApp({ trpcTransport: transport });
        try {
          const preflight = await app.app.inject({
            method: 'OPTIONS',
            url: '/trpc/users.me',
            headers: {
              origin: 'http://localhost:3000',
              'access-control-request-method': 'GET',
              'access-control-request-headers': 'authorization',
            },
          });
          expect(preflight.statusCode).toBe(204);
          expect(preflight.headers['access-control-allow-origin']).toBe('http://localhost:3000');
          expect(preflight.headers['access-control-allow-headers']).toBe('authorization');
        } finally {
          if (app !== t) await app.close();
        }
      },
    );

    it('adds to Vary without repeating a field (any case) or adding to *', () => {
      const varied = (initial: string | string[] | undefined, ...fields: string[]) => {
        const headers = new Map<string, unknown>(initial === undefined ? [] : [['vary', initial]]);
        const reply = {
          getHeader: (name: string) => headers.get(name),
          header: (name: string, value: string) => headers.set(name, value),
        };
        for (const field of fields) appendVary(reply, field);
        return headers.get('vary');
      };
      expect(varied(undefined, 'Origin')).toBe('Origin');
      expect(varied(undefined, 'trpc-accept', 'accept')).toBe('trpc-accept, accept');
      expect(varied('Accept-Language', 'Origin')).toBe('Accept-Language, Origin');
      expect(varied('accept-language, origin', 'Origin', 'Accept-Language')).toBe('accept-language, origin');
      expect(varied(['Accept', 'Cookie'], 'Origin')).toBe('Accept, Cookie, Origin');
      expect(varied('*', 'Origin')).toBe('*');
      expect(varied('Originator', 'Origin')).toBe('Originator, Origin');
    });

    it('allows any page with CORS_ORIGINS=*, naming its origin', async () => {
      const open = await buildTestApp({ env: { CORS_ORIGINS: '*' } });
      try {
        const origin = 'https://anywhere.example';
        const response = await open.app.inject({ method: 'GET', url: '/api/health', headers: { origin } });
        expect(response.headers['access-control-allow-origin']).toBe(origin);
        expect(response.headers.vary).toBe('Origin');
        const preflight = await open.app.inject({
          method: 'OPTIONS',
          url: '/api/users/me',
          headers: { origin, 'access-control-request-method': 'PATCH' },
        });
        expect(preflight.headers['access-control-allow-origin']).toBe(origin);
        expect(preflight.headers['access-control-allow-methods']).toMatch(/PATCH/);
        expect(preflight.headers['access-control-allow-headers']).toBeUndefined();
      } finally {
        await open.close();
      }
    });

    it('sets the security headers, and a CSP on HTML pages', async () => {
      const json = await t.app.inject({ method: 'GET', url: '/api/health' });
      expect(json.headers['x-content-type-options']).toBe('nosniff');
      expect(json.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(json.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(json.headers['referrer-policy']).toBe('no-referrer');
      expect(json.headers['cross-origin-resource-policy']).toBe('same-origin');
      expect(json.headers['content-security-policy']).toBeUndefined();
      const page = await t.app.inject({ method: 'GET', url: '/docs/' });
      expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
      expect(page.headers['content-security-policy']).not.toMatch(/upgrade-insecure-requests/);
    });

    describe('over real HTTP, read off the wire (the server writes them as one block, with the request id and Server-Timing)', () => {
      let server: TestApp & { url: string };
      // Headers a raw route keeps and reuses: what the server writes must never change them.
      const RAW_FLAT = ['X-Frame-Options', 'DENY', 'Cross-Origin-Resource-Policy', 'cross-origin'];
      const RAW_OBJECT = {
        'X-Frame-Options': 'DENY',
        'Referrer-Policy': 'unsafe-url',
        'X-Kept': 'yes',
        'X-Request-Id': 'raw',
      };
      beforeAll(async () => {
        server = await startTestServer({
          env: { CORS_ORIGINS: 'https://app.example' },
          plainRoutes: (app) => {
            app.get('/written-by', (_request, reply) => ({ block: reply.raw instanceof CommonHeadersResponse }));
            // Routes that set fixed headers themselves (any case; through Fastify, or through Node
            // too, which hands the writer Node's own store) and loosen CORP.
            app.get('/sets-its-own', (_request, reply) => {
              reply.header('X-Frame-Options', 'DENY').header('cross-origin-resource-policy', 'cross-origin');
              return { ok: true };
            });
            app.get('/sets-its-own-through-node', (_request, reply) => {
              reply.raw.setHeader('Strict-Transport-Security', 'max-age=1');
              reply.header('X-Frame-Options', 'DENY').header('x-content-type-options', 'nosniff');
              reply.header('cross-origin-resource-policy', 'cross-origin');
              return { ok: true };
            });
            // Routes that set the request id and Server-Timing themselves: the response hook's values win.
            app.get('/sets-request-headers', (_request, reply) => {
              reply.header('X-Request-Id', 'from-the-route').header('server-timing', 'db;dur=1');
              return { ok: true };
            });
            app.get('/sets-request-headers-through-node', (_request, reply) => {
              reply.raw.setHeader('Server-Timing', 'db;dur=1');
              reply.raw.setHeader('x-request-id', 'from-the-route');
              return { ok: true };
            });
            app.get('/streamed', (_request, reply) => reply.type('text/plain').send(Readable.from(['a', 'b'])));
            // Routes with a Vary, a language or a page of their own (through Fastify or Node).
            const query = (request: FastifyRequest) => request.query as Record<string, string | undefined>;
            app.get('/varies', (request, reply) => {
              const { vary = '', node } = query(request);
              if (node) reply.raw.setHeader('Vary', vary.split('|'));
              else reply.header('vary', vary);
              return { ok: true };
            });
            app.get('/in-french', (_request, reply) => reply.header('content-language', 'fr').send({ ok: true }));
            app.get('/caches-through-node', (_request, reply) => {
              reply.raw.setHeader('Cache-Control', 'max-age=5');
              return { ok: true };
            });
            app.get('/page', (request, reply) => {
              if (query(request).csp) reply.header('content-security-policy', "default-src 'none'");
              if (query(request).node) reply.raw.setHeader('Content-Type', 'text/html; charset=utf-8');
              else reply.type('text/html; charset=utf-8');
              return reply.send('<p>hi</p>');
            });
            // Raw writes, past Fastify: headers as a flat array and as pairs, names in any case.
            app.get('/raw-flat', (_request, reply) => {
              reply.hijack();
              reply.raw.writeHead(200, RAW_FLAT);
              reply.raw.end('raw');
            });
            app.get('/raw-object', (_request, reply) => {
              reply.hijack();
              reply.raw.writeHead(200, RAW_OBJECT);
              reply.raw.end('raw');
            });
            app.get('/raw-pairs', (_request, reply) => {
              reply.hijack();
              reply.raw.writeHead(200, [['REFERRER-POLICY', 'unsafe-url'] as unknown as string]);
              reply.raw.end('raw');
            });
            app.get('/raw-plain', (_request, reply) => {
              reply.hijack();
              reply.raw.end('raw');
            });
            // A header of a route's own, whose value the query chooses.
            app.get('/says', (request, reply) => {
              const { name = 'x-says', value = '' } = query(request);
              return reply.header(name, value).send({ ok: true });
            });
            // A raw write whose headers Node must read itself: the body's length, the connection.
            app.get('/raw-framed', (request, reply) => {
              reply.hijack();
              reply.raw.writeHead(200, {
                'X-Says': query(request).value ?? '',
                'Content-Length': '2',
                Connection: 'close',
              });
              reply.raw.end('ok');
            });
          },
        });
      });
      afterAll(() => server.close());

      /** The response's status, body, and header names (lower-cased) with every value sent under each, as on the wire. */
      function request(path: string, { method = 'GET', headers = {} as Record<string, string> } = {}) {
        return new Promise<{ status: number; body: string; sent: Map<string, string[]> }>((resolve, reject) => {
          const outgoing = httpRequest(`${server.url}${path}`, { method, headers }, (response) => {
            const sent = new Map<string, string[]>();
            const raw = response.rawHeaders;
            for (let at = 0; at < raw.length; at += 2) {
              const name = (raw[at] as string).toLowerCase();
              sent.set(name, [...(sent.get(name) ?? []), raw[at + 1] as string]);
            }
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => {
              body += chunk;
            });
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body, sent }));
          });
          outgoing.on('error', reject);
          outgoing.end();
        });
      }
      const expected = (corp = 'same-origin') => ({
        'strict-transport-security': ['max-age=31536000; includeSubDomains'],
        'x-content-type-options': ['nosniff'],
        'x-frame-options': ['SAMEORIGIN'],
        'referrer-policy': ['no-referrer'],
        'cross-origin-resource-policy': [corp],
      });
      const securityHeaders = (sent: Map<string, string[]>) =>
        Object.fromEntries(Object.keys(expected()).map((name) => [name, sent.get(name)]));

      it("are written by the server's own responses, not set on each reply", async () => {
        const { body, sent } = await request('/written-by');
        expect(JSON.parse(body)).toEqual({ block: true });
        expect(securityHeaders(sent)).toEqual(expected());
        const inject = await server.app.inject({ method: 'GET', url: '/written-by' });
        expect(inject.json()).toEqual({ block: false }); // inject's responses get them from the hook
        expect(securityHeaders(new Map(Object.entries(inject.headers).map(([k, v]) => [k, [String(v)]])))).toEqual(
          expected(),
        );
      });

      it('go once on every kind of answer: REST, tRPC, errors, HTML, HEAD, stream, preflights, a raw write', async () => {
        const origin = { origin: 'https://app.example', 'access-control-request-method': 'GET' };
        // Each with the Vary it is sent with: every answer depends on Origin (CORS), an error in
        // words on Accept-Language too, tRPC's on its response format, a preflight's on the headers asked.
        const answers = [
          ['/api/health', 'GET', {}, 200, 'Origin'],
          ['/trpc/health.live', 'GET', {}, 200, 'trpc-accept, accept, Origin'],
          ['/nope', 'GET', {}, 404, 'Accept-Language, Origin'],
          ['/api/notes/%E0%A4%A', 'GET', {}, 400, 'Accept-Language, Origin'],
          ['/docs/', 'GET', {}, 200, 'Origin'],
          ['/docs/', 'HEAD', {}, 200, 'Origin'],
          ['/streamed', 'GET', {}, 200, 'Origin'],
          ['/api/health', 'OPTIONS', origin, 204, 'Access-Control-Request-Headers, Origin'],
          ['/api/health', 'OPTIONS', {}, 400, 'Accept-Language, Origin'],
          ['/raw-plain', 'GET', {}, 200, undefined],
        ] as const;
        for (const [path, method, headers, status, vary] of answers) {
          const answer = await request(path, { method, headers });
          expect(answer.status, `${method} ${path}`).toBe(status);
          expect(securityHeaders(answer.sent), `${method} ${path}`).toEqual(expected());
          expect(answer.sent.get('vary'), `${method} ${path}`).toEqual(vary === undefined ? undefined : [vary]);
          // A hijacked reply writes past the response hook: no request id to carry, no Vary.
          if (path === '/raw-plain') continue;
          expect(answer.sent.get('x-request-id'), `${method} ${path}`).toEqual([
            expect.stringMatching(/^[0-9a-f]{32}$/),
          ]);
          expect(answer.sent.get('server-timing'), `${method} ${path}`).toEqual([
            expect.stringMatching(/^app;dur=\d+\.\d$/),
          ]);
          if (status >= 400) expect(JSON.parse(answer.body).requestId).toBe(answer.sent.get('x-request-id')?.[0]);
        }
        const page = await request('/docs/');
        expect(page.sent.get('content-security-policy')).toEqual([HTML_CSP]);
      });

      it("keep the fixed values over a route's own, once, and a route's Cross-Origin-Resource-Policy", async () => {
        for (const path of ['/sets-its-own', '/sets-its-own-through-node', '/raw-flat']) {
          const { status, sent } = await request(path);
          expect(status, path).toBe(200);
          expect(securityHeaders(sent), path).toEqual(expected('cross-origin'));
        }
        for (const path of ['/raw-pairs', '/raw-object', '/raw-object']) {
          const { sent } = await request(path);
          expect(securityHeaders(sent), path).toEqual(expected());
        }
        const raw = await request('/raw-object');
        expect(raw.sent.get('x-kept')).toEqual(['yes']);
        expect(raw.sent.get('x-request-id')).toEqual(['raw']); // no hook ran: a raw write's own id is kept
        expect(RAW_FLAT).toEqual(['X-Frame-Options', 'DENY', 'Cross-Origin-Resource-Policy', 'cross-origin']);
        expect(RAW_OBJECT).toEqual({
          'X-Frame-Options': 'DENY',
          'Referrer-Policy': 'unsafe-url',
          'X-Kept': 'yes',
          'X-Request-Id': 'raw',
        });
      });

      it("name Origin in a route's own Vary, once, whichever way it was set, and Accept-Language for its language", async () => {
        const cases = [
          ['/varies?vary=Accept-Encoding', ['Accept-Encoding, Origin']],
          ['/varies?vary=Accept-Encoding|Cookie&node=1', ['Accept-Encoding, Cookie, Origin']],
          ['/varies?vary=accept-encoding, origin', ['accept-encoding, origin']],
          ['/varies?vary=ORIGIN&node=1', ['ORIGIN']],
          ['/varies?vary=*', ['*']],
          ['/varies?vary=Originator', ['Originator, Origin']],
          ['/varies?vary=', ['Origin']],
          ['/in-french', ['Accept-Language, Origin']],
        ] as const;
        for (const [path, vary] of cases) {
          const answer = await request(path);
          expect(answer.status, path).toBe(200);
          expect(answer.sent.get('vary'), path).toEqual(vary);
          expect(answer.sent.get('x-request-id'), path).toHaveLength(1);
        }
      });

      it('give an HTML page the CSP, once, unless it has its own; never to another answer', async () => {
        for (const path of ['/page', '/page?node=1']) {
          const page = await request(path);
          expect(page.sent.get('content-security-policy'), path).toEqual([HTML_CSP]);
          expect(page.body, path).toBe('<p>hi</p>');
        }
        for (const path of ['/page?csp=1', '/page?csp=1&node=1']) {
          const own = await request(path);
          expect(own.sent.get('content-security-policy'), path).toEqual(["default-src 'none'"]);
        }
        for (const path of ['/api/health', '/streamed', '/in-french']) {
          expect((await request(path)).sent.get('content-security-policy'), path).toBeUndefined();
        }
        // inject's answers, whose headers the response hook sets, follow the same rules.
        const injected = await server.app.inject({ method: 'GET', url: '/page?csp=1' });
        expect(injected.headers['content-security-policy']).toBe("default-src 'none'");
        const injectedPage = await server.app.inject({ method: 'GET', url: '/page' });
        expect(injectedPage.headers['content-security-policy']).toBe(HTML_CSP);
        const injectedVary = await server.app.inject({ method: 'GET', url: '/varies?vary=Accept-Encoding' });
        expect(injectedVary.headers.vary).toBe('Accept-Encoding, Origin');
      });

      it('tell every cache not to store an answer whose route says nothing of caching, and keep what a route says', async () => {
        const answers = [
          ['/api/health', ['no-store']],
          ['/trpc/health.live', ['no-store']],
          ['/nope', ['no-store']],
          ['/streamed', ['no-store']],
          ['/docs/', ['no-store']],
          ['/says?name=Cache-Control&value=public, max-age=60', ['public, max-age=60']],
          ['/says?name=cache-control&value=private, no-cache', ['private, no-cache']],
          ['/caches-through-node', ['max-age=5']],
          ['/.well-known/jwks.json', ['public, max-age=300']],
          // A hijacked reply writes past the response hook: what it writes is its own.
          ['/raw-plain', undefined],
        ] as const;
        for (const [path, caching] of answers) {
          const answer = await request(path);
          expect(answer.sent.get('cache-control'), path).toEqual(caching);
        }
        // inject's answers, whose headers the response hook sets, follow the same rules.
        expect((await server.app.inject({ method: 'GET', url: '/api/health' })).headers['cache-control']).toBe(
          'no-store',
        );
        const own = await server.app.inject({ method: 'GET', url: '/caches-through-node' });
        expect(own.headers['cache-control']).toBe('max-age=5');
      });

      it("carry the request's id (a sane incoming one kept, any other replaced) and the app's time, once, over a route's own", async () => {
        for (const path of ['/sets-request-headers', '/sets-request-headers-through-node', '/api/health']) {
          const kept = await request(path, { headers: { 'x-request-id': 'edge-42.abc' } });
          expect(kept.status, path).toBe(200);
          expect(kept.sent.get('x-request-id'), path).toEqual(['edge-42.abc']);
          expect(kept.sent.get('server-timing'), path).toEqual([expect.stringMatching(/^app;dur=\d+\.\d$/)]);
          const replaced = await request(path, { headers: { 'x-request-id': 'has spaces; and=more' } });
          expect(replaced.sent.get('x-request-id'), path).toEqual([expect.stringMatching(/^[0-9a-f]{32}$/)]);
        }
      });

      it('refuse to carry a request id Node would refuse as a header value', () => {
        const response = () => new CommonHeadersResponse(new IncomingMessage(new Socket()));
        for (const id of ['one\r\nset-cookie: stolen=1', 'nul\0', 'bell\x07', 'wide\u0100']) {
          expect(() => response().carry(id, 1), JSON.stringify(id)).toThrow(
            expect.objectContaining({ code: 'ERR_INVALID_CHAR' }),
          );
        }
        // What Node takes, they carry: the id as it is, the time to a tenth of a millisecond.
        const times = [
          [0, '0.0'],
          [0.04, '0.0'],
          [0.06, '0.1'],
          [9.96, '10.0'],
          [12.34, '12.3'],
          [1234.56, '1234.6'],
        ] as const;
        for (const [elapsedMs, dur] of times) {
          const written = response();
          written.carry('tab\tand obs-text \xe9', elapsedMs);
          written.writeHead(200);
          const head = (written as unknown as { _header: string })._header;
          expect(head).toContain('x-request-id: tab\tand obs-text \xe9\r\n');
          expect(head).toContain(`server-timing: app;dur=${dur}\r\n`);
        }
      });

      it("still let Node refuse a response's own bad headers, whichever way they are given", () => {
        const response = () => new CommonHeadersResponse(new IncomingMessage(new Socket()));
        const refusals = [
          [{ 'bad name': 'x' }, 'ERR_INVALID_HTTP_TOKEN'],
          [{ 'x-note': 'one\r\nset-cookie: stolen=1' }, 'ERR_INVALID_CHAR'],
          [['x-note', 'one\r\nx-injected: 1'], 'ERR_INVALID_CHAR'],
          [['X-Frame-Options', 'DENY', 'x-odd'], 'ERR_INVALID_ARG_VALUE'],
          [
            [
              ['x-frame-options', 'DENY'],
              ['bad name', 'x'],
            ],
            'ERR_INVALID_HTTP_TOKEN',
          ],
        ] as const;
        for (const [headers, code] of refusals) {
          expect(() => response().writeHead(200, headers as never), JSON.stringify(headers)).toThrow(
            expect.objectContaining({ code }),
          );
        }
        // A route's own bad Vary, also when the writer completes it with Origin (as it does for an answer it carries).
        for (const vary of ['a\r\nx-injected: 1', 'origin\r\nx-injected: 1']) {
          const carrying = response();
          carrying.carry('some-id', 1);
          expect(() => carrying.writeHead(200, { vary }), JSON.stringify(vary)).toThrow(
            expect.objectContaining({ code: 'ERR_INVALID_CHAR' }),
          );
        }
      });

      it("write a route's own headers as given, once, whether their lines were checked before or not", async () => {
        // More values of one header than are kept: the first ones' lines are kept, the others go to Node.
        const values = Array.from({ length: CHECKED_LINES_LIMITS.valuesPerName + 4 }, (_, at) => `value-${at}`);
        for (const value of [...values, ...values]) {
          const { status, sent } = await request(`/says?value=${value}`);
          expect(status, value).toBe(200);
          expect(sent.get('x-says'), value).toEqual([value]);
          expect(sent.get('content-type'), value).toEqual(['application/json; charset=utf-8']);
          expect(sent.get('content-length'), value).toEqual(['11']);
          expect(securityHeaders(sent), value).toEqual(expected());
        }
        // A value Node refuses is still refused (no line of it is written), however often it comes.
        for (let time = 0; time < 3; time++) {
          const refused = await request('/says?name=x-refused&value=a%0D%0Ax-injected:%201');
          expect(refused.status).toBe(500);
          expect(refused.sent.get('x-refused')).toBeUndefined();
          expect(refused.sent.get('x-injected')).toBeUndefined();
        }
        // More header names than the writer remembers: those past it go to Node, written as well.
        for (let at = 0; at <= NAMES_KEPT; at++) {
          const { sent } = await request(`/says?name=x-name-${at}&value=v`);
          expect(sent.get(`x-name-${at}`), `x-name-${at}`).toEqual(['v']);
          expect(sent.get('content-type'), `x-name-${at}`).toEqual(['application/json; charset=utf-8']);
        }
      });

      it('leave to Node the headers it reads as it writes them: the length of the body, the connection', async () => {
        for (const value of ['raw', 'raw', 'other']) {
          const framed = await request(`/raw-framed?value=${value}`);
          expect(framed.body).toBe('ok');
          expect(framed.sent.get('x-says')).toEqual([value]);
          expect(framed.sent.get('content-length')).toEqual(['2']);
          expect(framed.sent.get('connection')).toEqual(['close']);
          expect(framed.sent.get('transfer-encoding')).toBeUndefined();
        }
        for (const name of ['Content-Length', 'connection', 'Transfer-Encoding', 'date', 'Set-Cookie']) {
          expect(nodeReads(name), name).toBe(true);
        }
        expect(nodeReads('cache-control')).toBe(false);
      });

      it("keep the lines of a few values of a header name, each checked once by Node's rules", () => {
        const lines = new CheckedLines('X-Count');
        const kept = Array.from({ length: CHECKED_LINES_LIMITS.valuesPerName }, (_, at) => String(at));
        for (const value of kept) expect(lines.line(value)).toBe(`X-Count: ${value}\r\n`);
        expect(lines.line('one more')).toBeUndefined(); // past the limit: Node checks and writes it
        for (const value of kept) expect(lines.line(value)).toBe(`X-Count: ${value}\r\n`);
        // What Node refuses has no line: Node refuses it, with its own error, as it writes it.
        expect(new CheckedLines('x-note').line('one\r\nset-cookie: stolen=1')).toBeUndefined();
        expect(new CheckedLines('x-note').line('nul\0')).toBeUndefined();
        expect(new CheckedLines('bad name').line('x')).toBeUndefined();
        expect(new CheckedLines('x-long').line('x'.repeat(CHECKED_LINES_LIMITS.valueLength + 1))).toBeUndefined();
        expect(new CheckedLines('x-note').line('tab\tand obs-text \xe9')).toBe('x-note: tab\tand obs-text \xe9\r\n');
      });
    });
  });
});

describe("Fastify's schema compilers, loaded on first use", () => {
  it('still validate a route that declares a Fastify schema, and shape its response', async () => {
    const app = Fastify({ schemaController: { compilersFactory: lazySchemaCompilers } });
    app.get(
      '/twice',
      {
        schema: {
          querystring: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
          response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } },
        },
      },
      async (request) => ({ n: (request.query as { n: number }).n * 2, internal: 'not in the schema' }),
    );
    try {
      const ok = await app.inject({ method: 'GET', url: '/twice?n=21' });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toEqual({ n: 42 });
      const refused = await app.inject({ method: 'GET', url: '/twice?n=many' });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().message).toMatch(/querystring\/n must be integer/);
    } finally {
      await app.close();
    }
  });
});

describe('a REST call the client abandons', () => {
  it('signals the procedure, as tRPC does', async () => {
    const server = await startTestServer({ router: testRouter });
    try {
      const id = `rest-${Date.now()}`;
      const controller = new AbortController();
      const call = fetch(`${server.url}/api/probe/wait?id=${id}`, { signal: controller.signal }).catch(() => undefined);
      for (let i = 0; i < 200 && !startedCalls.has(id); i++) await sleep(25); // the procedure is running
      controller.abort();
      await call;
      for (let i = 0; i < 50 && !abortedCalls.has(id); i++) await sleep(50);
      expect(abortedCalls.get(id)).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe('readiness when a dependency is down', () => {
  it('answers 503 naming the database when it is unreachable', async () => {
    const t = await buildTestApp({
      overrides: { db: createDb({ url: 'postgres://postgres@127.0.0.1:1/nowhere', connectionTimeoutMs: 1_000 }) },
    });
    try {
      const response = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
        appCode: 'DEPENDENCY_DOWN',
        message: 'Not ready, down: database',
        details: { checks: { database: 'down' } },
      });
      const live = await t.app.inject({ method: 'GET', url: '/api/health' });
      expect(live.statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('reads a database as up when its probe waited for a connection behind requests Postgres kept answering', async () => {
    // A pool of 4 (the test app's), 24 callers each running a 100 ms query after another: a
    // new query waits ~0.6 s for a connection, twice the health check's timeout.
    // (The in-memory store: its probe is not what this test is about, nor bound to a loaded machine's Redis.)
    const t = await buildTestApp({ env: { HEALTH_CHECK_TIMEOUT_MS: '300' }, overrides: { kv: new MemoryStore() } });
    let busy = true;
    const load = Array.from({ length: 24 }, async () => {
      while (busy) await sql`select pg_sleep(0.1)`.execute(t.services.db);
    });
    try {
      await sleep(300); // the queue is formed
      const response = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
      expect([response.statusCode, response.json().checks.database]).toEqual([200, 'ok']);
    } finally {
      busy = false;
      await Promise.all(load);
      await t.close();
    }
  });

  it('reads a database as down when every connection waits on a query it does not answer', async () => {
    const t = await buildTestApp({ env: { HEALTH_CHECK_TIMEOUT_MS: '300' } });
    // The pool's 4 connections each in a query that answers after the probe has given up.
    const stuck = Array.from({ length: 4 }, () => sql`select pg_sleep(1.5)`.execute(t.services.db));
    try {
      await sleep(100);
      const response = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ details: { checks: { database: 'down' } } });
    } finally {
      await Promise.all(stuck);
      await t.close();
    }
  });

  it('answers signed-in calls while the session store is unreachable, asking Postgres which sessions have ended', async () => {
    const healthy = await buildTestApp();
    const account = await registerAccount(healthy.app);
    const ended = await registerAccount(healthy.app);
    await healthy.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(ended) });
    const t = await buildTestApp({
      database: healthy.database,
      overrides: { kv: new RedisStore({ url: 'redis://127.0.0.1:1', keyPrefix: 'x:' }) },
    });
    try {
      const rest = await t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) });
      expect([rest.statusCode, rest.json().id]).toEqual([200, account.id]);
      const trpc = await t.app.inject({ method: 'GET', url: '/trpc/users.me', headers: bearer(account) });
      expect(trpc.statusCode).toBe(200);
      const refused = await t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(ended) });
      expect([refused.statusCode, refused.json().appCode]).toEqual([401, 'SESSION_REVOKED']);
    } finally {
      await t.close();
      await healthy.close();
    }
  });

  it('answers 503 naming Redis when it is unreachable', async () => {
    const t = await buildTestApp({
      env: { HEALTH_CHECK_TIMEOUT_MS: '2000' }, // (the database's probe, on a loaded machine)
      overrides: { kv: new RedisStore({ url: 'redis://127.0.0.1:1', keyPrefix: 'x:' }) },
    });
    try {
      const response = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({
        message: 'Not ready, down: redis',
        details: { checks: { database: 'ok', redis: 'down' } },
      });
      const trpc = await t.app.inject({ method: 'GET', url: '/trpc/health.ready' });
      expect(trpc.statusCode).toBe(503);
      expect(trpc.json().error.data).toMatchObject({
        appCode: 'DEPENDENCY_DOWN',
        details: { checks: { redis: 'down' } },
      });
    } finally {
      await t.close();
    }
  });
});

/** Writes raw bytes on a new connection to `url`; resolves with all it reads until the server closes it. */
function rawExchange(url: string, bytes: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const socket = new Socket();
    let read = '';
    socket.on('data', (chunk) => {
      read += chunk.toString('latin1');
    });
    socket.on('close', () => resolve(read));
    socket.on('error', reject);
    socket.connect(Number(port), hostname, () => socket.write(bytes));
  });
}

/** A raw HTTP answer's status line, headers (lower-case names) and JSON body. */
function parsed(answer: string) {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  return { statusLine, headers, body: JSON.parse(body) };
}
