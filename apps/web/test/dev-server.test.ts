/**
 * `pnpm dev`'s web half: Vite with this package's own config, on both loopback names, the
 * API proxied to the server (one origin for the browser: no CORS).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnCommand, startTestServer, type TestApp } from '@app/server/testing';
import { chromium } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM } from '../e2e/chromium.ts';

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

  // Development runs React's StrictMode, which runs every effect twice on mount: the page's
  // heading must still take the focus after a navigation only, not on the document's first page.
  it.skipIf(!existsSync(CHROMIUM))(
    "leaves the first page's focus to the browser under StrictMode, and moves it after a link",
    async () => {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
      });
      try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${port}/sign-in`);
        await expect.poll(() => page.title(), { timeout: 30_000 }).toBe('Sign in · App');
        const focusedTag = () => page.evaluate(() => document.activeElement?.tagName);
        expect(await focusedTag()).toBe('BODY');
        await page.getByRole('navigation').getByRole('link', { name: 'Sign up' }).click();
        await expect.poll(() => page.title(), { timeout: 30_000 }).toBe('Create an account · App');
        expect(await focusedTag()).toBe('H1');
      } finally {
        await browser.close();
      }
    },
  );

  it('proxies the API (REST and tRPC) to the server', async () => {
    const rest = await fetch(`http://127.0.0.1:${port}/api/health`);
    expect(rest.status).toBe(200);
    expect(await rest.json()).toMatchObject({ status: 'ok' });
    const trpc = await fetch(`http://localhost:${port}/trpc/health.live`);
    expect(trpc.status).toBe(200);
    const missing = await fetch(`http://127.0.0.1:${port}/api/nope`);
    expect([missing.status, (await missing.json()).appCode]).toEqual([404, 'ROUTE_NOT_FOUND']);
  });

  it('proxies to the PORT the env file gives the server, as `pnpm dev` runs it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'web-dev-env-'));
    const envFile = path.join(dir, '.env');
    const webPort = await freePort();
    const apiPort = new URL(api.url).port;
    writeFileSync(envFile, `PORT=${apiPort}\nWEB_PORT=${webPort}\n`);
    const viteCli = fileURLToPath(new URL('../node_modules/vite/bin/vite.js', import.meta.url));
    const dev = spawnCommand(process.execPath, [viteCli], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ENV_FILE: envFile },
    });
    try {
      await dev.waitFor(new RegExp(`127\\.0\\.0\\.1:${webPort}`), 60_000);
      const health = await fetch(`http://127.0.0.1:${webPort}/api/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });
    } finally {
      dev.process.kill('SIGTERM');
      await dev.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
