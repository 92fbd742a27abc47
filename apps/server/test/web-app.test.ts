/**
 * The web app served from the API's origin (WEB_DIR): its files, its pages (every path the
 * server does not own answers index.html), and the server's own paths untouched.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_APP_CSP } from '../src/http/web-app.ts';
import { buildTestApp, type TestApp } from './helpers/index.ts';

describe('the web app from WEB_DIR', () => {
  let t: TestApp;
  let dir: string;
  const INDEX =
    '<!doctype html><html lang="en"><head><title>App</title></head><body><div id="root"></div></body></html>';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'web-dist-'));
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), INDEX);
    writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), 'console.log("app")');
    writeFileSync(path.join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    t = await buildTestApp({ env: { WEB_DIR: dir, PUBLIC_URL: 'http://app.test' } });
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['/', '/notes', '/verify-email?token=abc.def', '/admin/users', '/sign-in', '/index.html'])(
    'answers %s with the app page, never cached, under the app’s own CSP',
    async (url) => {
      const page = await t.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } });
      expect(page.statusCode).toBe(200);
      expect(page.body).toBe(INDEX);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['cache-control']).toBe('no-cache');
      // Its own: no inline script may run where the tokens live (the browser tests run under it).
      expect(page.headers['content-security-policy']).toBe(WEB_APP_CSP);
      expect(WEB_APP_CSP).toContain("script-src 'self';");
      expect(WEB_APP_CSP).not.toContain('unsafe');
    },
  );

  it('serves hashed assets for a year and other files revalidated', async () => {
    const asset = await t.app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toMatch(/javascript/);
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const icon = await t.app.inject({ method: 'GET', url: '/favicon.svg' });
    expect([icon.statusCode, icon.headers['cache-control']]).toEqual([200, 'no-cache']);
    // A range past the file's end keeps its 416 (not a 400), with the error body.
    const range = await t.app.inject({
      method: 'GET',
      url: '/assets/index-abc123.js',
      headers: { range: 'bytes=9999-' },
    });
    expect(range.statusCode).toBe(416);
  });

  it.each(['/api/nope', '/trpc/nope.nope', '/.well-known/nope', '/dev/nope', '/docs/nope'])(
    'leaves the server its own paths: %s is still a JSON 404',
    async (url) => {
      const answer = await t.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } });
      expect(answer.statusCode).toBe(404);
      expect(answer.headers['content-type']).toMatch(/application\/json/);
    },
  );

  it.each(['/assets/index-old123.js', '/assets/index-old123.css', '/missing.png'])(
    'answers a file the build does not hold, %s, 404 (not the app page)',
    async (url) => {
      const answer = await t.app.inject({ method: 'GET', url });
      expect(answer.statusCode).toBe(404);
      expect(answer.json().appCode).toBe('ROUTE_NOT_FOUND');
    },
  );

  it('answers a page request for an API path served with another method 405, not the app', async () => {
    const answer = await t.app.inject({ method: 'GET', url: '/api/auth/login', headers: { accept: 'text/html' } });
    expect(answer.statusCode).toBe(405);
    expect(answer.headers.allow).toBe('POST');
  });

  it('still serves the API and the documents', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/openapi.json' })).statusCode).toBe(200);
  });

  it('points email links at this server when it serves the app and APP_URL is unset', () => {
    expect(t.services.config.appUrl).toBe('http://app.test');
  });

  it('refuses to start on a WEB_DIR without an index.html, naming the fix', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'web-empty-'));
    try {
      await expect(buildTestApp({ env: { WEB_DIR: empty } })).rejects.toThrow(/no index\.html: build the web app/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
