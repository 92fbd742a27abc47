/**
 * `pnpm dev`'s web half: Vite with this package's own config, on both loopback names, the
 * API proxied to the server (one origin for the browser: no CORS).
 */
import { freePort, startTestServer, type TestApp } from '@app/server/testing';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('the web dev server (vite.config.ts)', () => {
  let api: TestApp & { url: string };
  let vite: ViteDevServer;
  let port: number;

  beforeAll(async () => {
    api = await startTestServer();
    port = await freePort();
    process.env.API_PROXY_TARGET = api.url;
    process.env.WEB_PORT = String(port);
    vite = await createServer({ root: new URL('..', import.meta.url).pathname, logLevel: 'silent' });
    await vite.listen();
  });
  afterAll(async () => {
    await vite?.close();
    await api?.close();
    delete process.env.API_PROXY_TARGET;
    delete process.env.WEB_PORT;
  });

  it.each(['127.0.0.1', 'localhost'])('serves the app at http://%s:<port>', async (host) => {
    const page = await fetch(`http://${host}:${port}/notes`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/src/main.tsx');
  });

  it('proxies the API (REST and tRPC) to the server', async () => {
    const rest = await fetch(`http://127.0.0.1:${port}/api/health`);
    expect(rest.status).toBe(200);
    expect(await rest.json()).toMatchObject({ status: 'ok' });
    const trpc = await fetch(`http://localhost:${port}/trpc/health.live`);
    expect(trpc.status).toBe(200);
    const missing = await fetch(`http://127.0.0.1:${port}/api/nope`);
    expect([missing.status, (await missing.json()).appCode]).toEqual([404, 'ROUTE_NOT_FOUND']);
  });
});
