/**
 * The Fastify-native tRPC handler (/trpc) against tRPC's own adapter (/trpc-official), on
 * one app: the same requests must get the same status, content type, body and headers.
 */
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AnyTRPCProcedure } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { levelsOf } from '../src/trpc/call-procedure.ts';
import { WRITTEN_FOR_TRPC } from '../src/trpc/fast/fast-trpc.ts';
import {
  type Account,
  abortedCalls,
  bearer,
  buildTestApp,
  registerAccount,
  registerAdmin,
  startedCalls,
  startTestServer,
  type TestApp,
  testRouter,
} from './helpers/index.ts';

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'HEAD';
  /** After the prefix: "/health.live?batch=1". */
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
const json = { 'content-type': 'application/json' };
const MISSING = '01900000-0000-7000-8000-000000000000';

/** Values that legitimately differ between two calls: ids, times, tokens. */
function normalise(body: string): string {
  return body
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/g, '<time>')
    .replace(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g, '<jwt>')
    .replace(/"refreshToken":"[\w-]+"/g, '"refreshToken":"<token>"')
    .replace(/"uptimeSeconds":\d+/g, '"uptimeSeconds":0')
    .replaceAll('/trpc-official/', '/trpc/');
}

describe('tRPC transport conformance', () => {
  let t: TestApp;
  let user: Account;
  let admin: Account;
  let cases: Case[];

  beforeAll(async () => {
    t = await buildTestApp({ router: testRouter, officialTrpcPrefix: '/trpc-official' });
    user = await registerAccount(t.app);
    admin = await registerAdmin(t.app, t.services.db);
    const auth = bearer(user);
    const adminAuth = bearer(admin);
    cases = [
      { name: 'query', method: 'GET', path: '/health.live' },
      { name: 'query with a dependency check', method: 'GET', path: '/health.ready' },
      { name: 'batch of two queries', method: 'GET', path: '/health.live,health.ready?batch=1' },
      { name: 'batch of three of the same', method: 'GET', path: '/health.live,health.live,health.live?batch=1' },
      { name: 'batch of ten', method: 'GET', path: `/${Array(10).fill('health.live').join(',')}?batch=1` },
      { name: 'batch of one', method: 'GET', path: `/notes.list?batch=1&input=${q({ 0: {} })}`, headers: auth },
      { name: 'signed-in query', method: 'GET', path: '/users.me', headers: auth },
      { name: 'signed-out query', method: 'GET', path: '/users.me' },
      { name: 'garbage token', method: 'GET', path: '/users.me', headers: { authorization: 'Bearer x.y.z' } },
      { name: 'query with input', method: 'GET', path: `/notes.list?input=${q({ limit: 5 })}`, headers: auth },
      { name: 'query with invalid input', method: 'GET', path: `/notes.list?input=${q({ limit: 0 })}`, headers: auth },
      { name: 'query with malformed JSON input', method: 'GET', path: '/notes.list?input=%7Bbad', headers: auth },
      { name: 'query with null input', method: 'GET', path: '/notes.list?input=null', headers: auth },
      { name: 'query without required input', method: 'GET', path: '/notes.list', headers: auth },
      { name: 'missing record', method: 'GET', path: `/notes.get?input=${q({ id: MISSING })}`, headers: auth },
      { name: 'malformed uuid', method: 'GET', path: `/notes.get?input=${q({ id: 'nope' })}`, headers: auth },
      {
        name: 'input given twice',
        method: 'GET',
        path: `/notes.list?input=${q({ limit: 1 })}&input=${q({ limit: 2 })}`,
        headers: auth,
      },
      { name: 'unknown procedure', method: 'GET', path: '/nope' },
      { name: 'unknown nested procedure', method: 'GET', path: '/health.nope' },
      { name: 'batch with an unknown procedure (207)', method: 'GET', path: '/health.live,nope?batch=1' },
      { name: 'batch mixing a query and a mutation', method: 'GET', path: '/health.live,auth.logout?batch=1' },
      { name: 'GET to a mutation (405, Allow)', method: 'GET', path: '/auth.login' },
      {
        name: 'batch input that is not an object',
        method: 'GET',
        path: `/health.live,health.ready?batch=1&input=${q([1])}`,
      },
      {
        name: 'batch input that is malformed',
        method: 'GET',
        path: '/notes.list,notes.list?batch=1&input=%5B',
        headers: auth,
      },
      {
        name: 'batch with one invalid input (207)',
        method: 'GET',
        path: `/notes.list,notes.list?batch=1&input=${q({ 0: { limit: 2 }, 1: { limit: 'x' } })}`,
        headers: auth,
      },
      {
        name: 'batch with a forbidden call (207)',
        method: 'GET',
        path: `/users.me,users.list?batch=1&input=${q({ 1: {} })}`,
        headers: auth,
      },
      { name: 'permitted admin query', method: 'GET', path: '/rbac.permissions.list', headers: adminAuth },
      { name: 'AppError (409)', method: 'GET', path: `/probe.fail?input=${q({ kind: 'conflict' })}` },
      { name: 'internal error (500)', method: 'GET', path: `/probe.fail?input=${q({ kind: 'internal' })}` },
      { name: 'output stripped to its schema', method: 'GET', path: `/probe.shape?input=${q({ kind: 'extra' })}` },
      { name: 'output refused by its schema', method: 'GET', path: `/probe.shape?input=${q({ kind: 'wrong' })}` },
      { name: 'two inputs merged', method: 'GET', path: `/probe.merged?input=${q({ a: 'x', b: 2 })}` },
      { name: 'two inputs, the second refused', method: 'GET', path: `/probe.merged?input=${q({ a: 'x', b: 'y' })}` },
      { name: 'middlewares between parsers', method: 'GET', path: `/probe.layered?input=${q({ a: 'x', b: 2 })}` },
      {
        name: 'middlewares between parsers, the second input refused',
        method: 'GET',
        path: `/probe.layered?input=${q({ a: 'x', b: 'y' })}`,
      },
      { name: 'input checked asynchronously', method: 'GET', path: `/probe.checkedLater?input=${q({ name: 'a' })}` },
      {
        name: 'input refused asynchronously',
        method: 'GET',
        path: `/probe.checkedLater?input=${q({ name: 'taken' })}`,
      },
      { name: 'percent-encoded path', method: 'GET', path: '/health%2Elive' },
      { name: 'malformed percent-encoding', method: 'GET', path: '/health%E0%A4%A' },
      { name: 'HEAD', method: 'HEAD', path: '/health.live' },
      {
        name: 'streaming accept header',
        method: 'GET',
        path: '/health.live,health.live?batch=1',
        headers: { 'trpc-accept': 'application/jsonl' },
      },
      {
        name: 'streaming asked in Accept (httpBatchStreamLink with streamHeader: accept)',
        method: 'GET',
        path: '/health.live,health.live?batch=1',
        headers: { accept: 'text/plain, application/jsonl' },
      },
      {
        name: 'streaming asked in Accept, not batched',
        method: 'GET',
        path: '/health.live',
        headers: { accept: 'application/jsonl' },
      },
      {
        name: 'GET with a multipart content type',
        method: 'GET',
        path: '/health.live',
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
      },
      {
        name: 'mutation, wrong password (401)',
        method: 'POST',
        path: '/auth.login',
        headers: json,
        body: JSON.stringify({ email: user.email, password: 'Wrong-1-x' }),
      },
      {
        name: 'mutation, invalid input (400 issues)',
        method: 'POST',
        path: '/auth.login',
        headers: json,
        body: JSON.stringify({ email: 'x' }),
      },
      {
        name: 'mutation, valid',
        method: 'POST',
        path: '/probe.echo',
        headers: json,
        body: JSON.stringify({ name: 'Ada', count: 2 }),
      },
      {
        name: 'mutation, wrong types',
        method: 'POST',
        path: '/probe.echo',
        headers: json,
        body: JSON.stringify({ name: 7, count: '2' }),
      },
      { name: 'mutation, malformed JSON', method: 'POST', path: '/probe.echo', headers: json, body: '{"name": ' },
      { name: 'mutation, empty body', method: 'POST', path: '/probe.echo', headers: json, body: '' },
      {
        name: 'mutation, JSON with charset',
        method: 'POST',
        path: '/probe.echo',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ name: 'Ada', count: 1 }),
      },
      {
        name: 'mutation without a content type (415)',
        method: 'POST',
        path: '/probe.echo',
        body: JSON.stringify({ name: 'Ada', count: 1 }),
      },
      {
        name: 'mutation as text/plain (415)',
        method: 'POST',
        path: '/probe.echo',
        headers: { 'content-type': 'text/plain' },
        body: 'hello',
      },
      { name: 'POST to a query (405, Allow)', method: 'POST', path: '/health.live', headers: json, body: '{}' },
      {
        name: 'batch of mutations, one invalid (207)',
        method: 'POST',
        path: '/probe.echo,probe.echo?batch=1',
        headers: json,
        body: JSON.stringify({ 0: { name: 'Ada', count: 1 }, 1: { name: 'A', count: 1 } }),
      },
      {
        name: 'batch body that is not an object',
        method: 'POST',
        path: '/probe.echo,probe.echo?batch=1',
        headers: json,
        body: '"text"',
      },
      {
        name: 'signed-in mutation that creates',
        method: 'POST',
        path: '/notes.create',
        headers: { ...json, ...auth },
        body: JSON.stringify({ title: 'Same' }),
      },
      {
        name: 'signed-out mutation',
        method: 'POST',
        path: '/notes.create',
        headers: json,
        body: JSON.stringify({ title: 'Same' }),
      },
      {
        name: 'conflict on a mutation',
        method: 'POST',
        path: '/auth.register',
        headers: json,
        body: JSON.stringify({ email: user.email, password: 'Valid-pass-1' }),
      },
      { name: 'PUT (other methods)', method: 'PUT', path: '/probe.echo', headers: json, body: '{}' },
    ];
  });
  afterAll(() => t.close());

  it('mirrors the installed tRPC version (re-run this suite and bump WRITTEN_FOR_TRPC when upgrading)', () => {
    const installed = createRequire(import.meta.url)('@trpc/server/package.json').version;
    expect(installed).toBe(WRITTEN_FOR_TRPC);
  });

  it("runs every procedure's parsers and resolver in place (after a tRPC upgrade that changes the chain, as tRPC's own middlewares: right, but slower)", () => {
    const procedures = testRouter._def.procedures as unknown as Record<string, AnyTRPCProcedure>;
    for (const [path, procedure] of Object.entries(procedures)) {
      const kinds = levelsOf(procedure).map((level) => level.kind);
      const def = procedure._def as { inputs: unknown[]; output?: unknown };
      expect({ path, last: kinds.at(-1), inputs: kinds.filter((kind) => kind === 'input').length }).toEqual({
        path,
        last: 'resolver',
        inputs: def.inputs.length,
      });
      expect(kinds.includes('output'), path).toBe(def.output !== undefined);
    }
  });

  it('has at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it('checks answers against the output schema and merges several inputs (the parsers the fast path runs itself)', async () => {
    const get = (path: string) => t.app.inject({ method: 'GET', url: `/trpc${path}` });
    const extra = await get(`/probe.shape?input=${q({ kind: 'extra' })}`);
    expect(extra.json()).toEqual({ result: { data: { n: 1 } } });
    const wrong = await get(`/probe.shape?input=${q({ kind: 'wrong' })}`);
    expect(wrong.statusCode).toBe(500);
    expect(wrong.body).not.toContain('one');
    const merged = await get(`/probe.merged?input=${q({ a: 'x', b: 2 })}`);
    expect(merged.json()).toEqual({ result: { data: { a: 'x', b: 2 } } });
    const refused = await get(`/probe.merged?input=${q({ a: 'x', b: 'y' })}`);
    expect(refused.statusCode).toBe(400);
    const layered = await get(`/probe.layered?input=${q({ a: 'x', b: 2 })}`);
    expect(layered.json()).toEqual({ result: { data: { a: 'x', b: 2, first: '{"a":"x"}' } } });
    const later = await get(`/probe.checkedLater?input=${q({ name: 'a' })}`);
    expect(later.json()).toEqual({ result: { data: { name: 'a' } } });
    const refusedLater = await get(`/probe.checkedLater?input=${q({ name: 'taken' })}`);
    expect(refusedLater.statusCode).toBe(400);
  });

  it('answers every case identically on both transports', async () => {
    const differences: string[] = [];
    for (const [index, c] of cases.entries()) {
      const send = (prefix: string) =>
        t.app.inject({
          method: c.method,
          url: `${prefix}${c.path}`,
          headers: { 'x-request-id': `conformance-${index}`, ...c.headers },
          ...(c.body !== undefined && { payload: c.body }),
        });
      const fast = await send('/trpc');
      const official = await send('/trpc-official');
      const view = (r: typeof fast) => ({
        status: r.statusCode,
        contentType: r.headers['content-type'],
        vary: r.headers.vary,
        allow: r.headers.allow,
        body: normalise(r.body),
      });
      try {
        expect(view(fast)).toEqual(view(official));
      } catch {
        differences.push(
          `${c.name}:\n  fast     ${JSON.stringify(view(fast))}\n  official ${JSON.stringify(view(official))}`,
        );
      }
    }
    expect(differences).toEqual([]);
  });
});

describe.each(['fast', 'official'] as const)('aborted requests (%s transport)', (transport) => {
  let server: TestApp & { url: string };
  beforeAll(async () => {
    server = await startTestServer({ router: testRouter, trpcTransport: transport });
  });
  afterAll(() => server.close());

  it('signal the procedure when the client goes away', async () => {
    const id = `${transport}-${Date.now()}`;
    const controller = new AbortController();
    const call = fetch(`${server.url}/trpc/probe.wait?input=${q({ id })}`, { signal: controller.signal }).catch(
      () => undefined,
    );
    for (let i = 0; i < 200 && !startedCalls.has(id); i++) await sleep(25); // the procedure is running
    controller.abort();
    await call;
    for (let i = 0; i < 50 && !abortedCalls.has(id); i++) await sleep(50);
    expect(abortedCalls.get(id)).toBe(true);
  });
});
