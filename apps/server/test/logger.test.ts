import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LazyLogger, requestIdFor } from '../src/infra/logger.ts';

/** A Fastify app on a LazyLogger over pino at `level`: its lines, and how many pino children were made. */
async function appLogging(level: string) {
  const lines: Record<string, unknown>[] = [];
  let children = 0;
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const root = pino({ level, base: {}, onChild: () => children++ }, sink);
  const app = Fastify({
    loggerInstance: new LazyLogger(root) as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/quiet', async () => ({ ok: true }));
  app.get('/talks', async (request) => {
    request.log.info({ step: 1 }, 'handled');
    return { id: request.id };
  });
  app.get('/chatty', { logLevel: 'debug' }, async (request) => {
    request.log.debug('details');
    return { ok: true };
  });
  await app.ready();
  return { app, lines, children: () => children };
}

describe('LazyLogger (the per-request logger)', () => {
  let close: (() => Promise<unknown>) | undefined;
  afterEach(() => close?.());

  it('makes no pino child for a request that writes nothing', async () => {
    const { app, lines, children } = await appLogging('info');
    close = () => app.close();
    const before = children();
    for (let i = 0; i < 20; i++) expect((await app.inject({ url: '/quiet' })).statusCode).toBe(200);
    expect(children()).toBe(before);
    expect(lines).toEqual([]);
  });

  it("writes a request's lines with its request id, making its child once", async () => {
    const { app, lines, children } = await appLogging('info');
    close = () => app.close();
    const before = children();
    const response = await app.inject({ url: '/talks' });
    expect(lines).toEqual([expect.objectContaining({ reqId: response.json().id, step: 1, msg: 'handled' })]);
    expect(children()).toBe(before + 1);
    app.log.info('from the app');
    expect(lines[1]).toEqual(expect.objectContaining({ msg: 'from the app' }));
    expect(lines[1]).not.toHaveProperty('reqId');
  });

  it("honours a route's own level, and writes nothing below the level", async () => {
    const chatty = await appLogging('info');
    await chatty.app.inject({ url: '/chatty' });
    expect(chatty.lines).toEqual([expect.objectContaining({ level: 20, msg: 'details', reqId: expect.any(String) })]);
    await chatty.app.close();

    const quiet = await appLogging('warn');
    close = () => quiet.app.close();
    const before = quiet.children();
    await quiet.app.inject({ url: '/talks' });
    expect(quiet.lines).toEqual([]);
    expect(quiet.children()).toBe(before);
    // Reading a request logger's level makes no child either; setting it does, for that request only.
    let made = 0;
    const log = new LazyLogger(pino({ level: 'warn', onChild: () => made++ }), { requestId: 'r1' });
    expect(log.level).toBe('warn');
    expect(made).toBe(0);
    log.level = 'debug';
    expect(made).toBe(1);
    expect(log.level).toBe('debug');
    expect(log.isLevelEnabled('debug')).toBe(true);
  });
});

describe('requestIdFor (the request ids the app makes)', () => {
  const withHeaders = (headers: Record<string, string>) => {
    const request = new IncomingMessage(new Socket());
    request.headers = headers;
    return request;
  };

  it('makes 128 random bits in hex, never the same twice, past each refill of its pool of random bytes', () => {
    const ids = Array.from({ length: 1_000 }, () => requestIdFor(withHeaders({})));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Random, not counted: no two ids share their first half (a counter would).
    expect(new Set(ids.map((id) => id.slice(0, 16))).size).toBe(ids.length);
  });

  it('keeps a sane incoming id and replaces any other', () => {
    expect(requestIdFor(withHeaders({ 'x-request-id': 'edge-42.abc:7' }))).toBe('edge-42.abc:7');
    for (const hostile of ['', 'has space', 'x'.repeat(129), 'line\r\nbreak', 'ü']) {
      expect(requestIdFor(withHeaders({ 'x-request-id': hostile }))).toMatch(/^[0-9a-f]{32}$/);
    }
  });
});
