/**
 * `uploadFile` in a real browser (Debian's Chromium, driven by playwright-core): the SDK
 * bundled for the browser, served from another origin than the API (CORS), uploading with
 * XMLHttpRequest and reporting progress. Runs wherever Chromium is installed; CI installs
 * it and requires it (`.ci/run`).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startTestServer, type TestApp } from '@app/server/testing';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const sdkIndex = fileURLToPath(new URL('../src/index.ts', import.meta.url));

if (process.env.CI && !existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium (apt-get install -y chromium)`);
}

describe.skipIf(!existsSync(CHROMIUM))('uploadFile in a browser', () => {
  let api: TestApp & { url: string };
  let page: Server;
  let pageUrl: string;
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sdk-browser-'));
    const port = await freePort();
    pageUrl = `http://127.0.0.1:${port}`;
    api = await startTestServer({ env: { FILES_DIR: join(dir, 'files'), CORS_ORIGINS: pageUrl } });
    writeFileSync(
      join(dir, 'entry.ts'),
      `import { getAppErrorCode, uploadFile } from ${JSON.stringify(sdkIndex)};
let xhrSends = 0;
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (...args: Parameters<typeof send>) {
  xhrSends++;
  return send.apply(this, args);
};
(globalThis as any).runUpload = async (url: string, token: string) => {
  // A wrapped fetch, as an app passes one (logging, certificate pinning): the upload still
  // goes by XMLHttpRequest, for its progress (a browser sends no streamed body over HTTP/1.1).
  const options = { url, getAccessToken: () => token, fetch: (input: RequestInfo | URL, init?: RequestInit) => fetch(input, init) };
  const text = new File([new Uint8Array(2 * 1024 * 1024).fill(97)], 'notes ✓.txt', { type: 'text/html' });
  const progress: number[] = [];
  const stored = await uploadFile(options, text, { onProgress: ({ loaded }) => progress.push(loaded) });
  const zip = new File([new Uint8Array([0x50, 0x4b, 0x03, 0x04, ...new Array(64).fill(0)])], 'archive.zip');
  const refused = await uploadFile(options, zip).then(() => 'accepted', (error) => getAppErrorCode(error));
  return { stored, progress, total: text.size, refused, usedXhr: xhrSends === 2 };
};`,
    );
    await build({
      entryPoints: [join(dir, 'entry.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      outfile: join(dir, 'bundle.js'),
      logLevel: 'silent',
    });
    const bundle = readFileSync(join(dir, 'bundle.js'));
    page = createServer((request, response) => {
      if (request.url === '/bundle.js') {
        response.setHeader('content-type', 'text/javascript');
        response.end(bundle);
      } else {
        response.setHeader('content-type', 'text/html');
        response.end('<!doctype html><script type="module" src="/bundle.js"></script>');
      }
    });
    await new Promise<void>((resolve) => page.listen(port, '127.0.0.1', resolve));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => page?.close(resolve));
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('uploads from another origin with XMLHttpRequest, reporting progress, and reads refusals', async () => {
    const registered = await api.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { email: `browser-${Date.now()}@example.com`, password: 'Browser-pass-1' },
    });
    const { accessToken } = registered.json() as { accessToken: string };
    const tab = await browser.newPage();
    await tab.goto(pageUrl);
    await tab.waitForFunction(() => 'runUpload' in globalThis);
    const result = await tab.evaluate(
      ([url, token]) =>
        (globalThis as unknown as { runUpload: (url: string, token: string) => Promise<unknown> }).runUpload(
          url,
          token,
        ),
      [api.url, accessToken] as const,
    );
    const { stored, progress, total, refused, usedXhr } = result as {
      stored: { name: string; contentType: string; size: number };
      progress: number[];
      total: number;
      refused: string;
      usedXhr: boolean;
    };
    expect(usedXhr).toBe(true);
    expect(stored).toMatchObject({ name: 'notes ✓.txt', contentType: 'text/plain', size: total });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBeGreaterThanOrEqual(total);
    expect(refused).toBe('UNSUPPORTED_FILE_TYPE');
  }, 60_000);
});
