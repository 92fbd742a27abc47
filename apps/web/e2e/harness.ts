/**
 * The end-to-end harness: the web app built once per run (global-setup.ts), served by the
 * real server (buildTestApp with WEB_DIR) on 127.0.0.1, so the app and the API share one
 * origin as in production, and Debian's Chromium driving it through playwright-core.
 * Emails land in `t.mail`; server state is read from `t.services.db`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import { buildTestApp, freePort, registerAdmin, type TestApp, type TestAppOptions } from '@app/server/testing';
import type { AxeResults } from 'axe-core';
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Locator,
  type Page,
  type Request,
  type Route,
} from 'playwright-core';
import { describe, expect, inject } from 'vitest';
import { CHROMIUM } from './chromium.ts';

if (process.env.CI && !existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium (apt-get install -y chromium)`);
}

const webDist = inject('webDist');

/** describe() for the browser tests: skipped without Chromium (the global setup printed why). */
export const describeInBrowser = describe.skipIf(!webDist);

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

export interface Harness {
  /** The origin of both the app and the API: http://127.0.0.1:<port>. */
  url: string;
  t: TestApp;
  browser: Browser;
  /** A page in a fresh browser profile (its own localStorage): one person on one device. */
  /** `bypassCSP`: for a tool the test injects into the page (the accessibility audit), not the app. */
  newPage(options?: { bypassCSP?: boolean }): Promise<Page>;
  /** Closes this test's browser profiles; throws if a page had an uncaught error meanwhile. */
  endTest(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The server (a fresh database of its own) listening on a free port, and one browser.
 * `env` is the server's extra environment; a function receives the server's origin.
 * `overrides` replaces some of its services (a clock the test moves).
 */
export async function startHarness(
  options: {
    env?: Record<string, string> | ((url: string) => Record<string, string>);
    overrides?: TestAppOptions['overrides'];
  } = {},
): Promise<Harness> {
  const filesDir = mkdtempSync(path.join(tmpdir(), 'web-e2e-files-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const extraEnv = typeof options.env === 'function' ? options.env(url) : (options.env ?? {});
  let t: TestApp | undefined;
  let browser: Browser | undefined;
  const contexts = new Set<BrowserContext>();
  const pageErrors: string[] = [];

  const close = async () => {
    await browser?.close();
    await t?.close();
    rmSync(filesDir, { recursive: true, force: true });
  };
  try {
    t = await buildTestApp({
      env: { WEB_DIR: webDist, PUBLIC_URL: url, APP_URL: url, FILES_DIR: filesDir, ...extraEnv },
      ...(options.overrides && { overrides: options.overrides }),
    });
    await t.app.listen({ host: '127.0.0.1', port });
    // As root, Chromium refuses to start without --no-sandbox.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
    });
  } catch (error) {
    await close();
    throw error;
  }
  const started = { t, browser };

  return {
    url,
    ...started,
    async newPage(options = {}) {
      const context = await started.browser.newContext({
        baseURL: url,
        locale: 'en-US',
        viewport: { width: 1024, height: 768 },
        ...options,
      });
      contexts.add(context);
      const page = await context.newPage();
      page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${error.message}`));
      return page;
    },
    async endTest() {
      for (const context of contexts) await context.close();
      contexts.clear();
      const errors = pageErrors.splice(0);
      if (errors.length > 0) throw new Error(`Uncaught errors in the page:\n${errors.join('\n')}`);
    },
    close,
  };
}

/** The page's one h1 (every page has its title there). */
export const heading = (page: Page, name: string): Locator =>
  page.getByRole('heading', { level: 1, name, exact: true });

/** Whether `locator`'s element holds the focus (the document's active element). */
export const hasFocus = (locator: Locator): Promise<boolean> =>
  locator.evaluate((element) => element === document.activeElement);

/** A status line (role=status) containing `text`. */
export const status = (scope: Page | Locator, text: string | RegExp): Locator =>
  scope.getByRole('status').filter({ hasText: text });

/** The password sign-in form, filled and sent; resolves on the notes page. */
export async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/sign-in');
  await submitPasswordSignIn(page, email, password);
  await heading(page, 'Notes').waitFor();
}

/**
 * A new administrator's page on the Users list, searching for `email`, once the search's
 * results have come (before them, the list first read may still be replaced by them).
 */
export async function adminSearchingFor(h: Harness, email: string): Promise<Page> {
  const admin = await registerAdmin(h.t.app, h.t.services.db);
  const page = await h.newPage();
  await signIn(page, admin.email, admin.password);
  await page.getByRole('link', { name: 'Users' }).click();
  await heading(page, 'Users').waitFor();
  const searched = page.waitForResponse(
    (response) => response.url().includes('users.list') && decodeURIComponent(response.url()).includes(email),
  );
  await page.getByLabel('Search by email or name').fill(email);
  await searched;
  return page;
}

/** Fills and sends the sign-in form already on screen (no waiting for the outcome). */
export async function submitPasswordSignIn(page: Page, email: string, password: string): Promise<void> {
  const form = page.getByRole('form', { name: 'Sign in with a password' });
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password', { exact: true }).fill(password);
  await form.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** The path the page is on (`/sign-in`). */
export const pathOf = (page: Page): string => new URL(page.url()).pathname;

/**
 * Holds the page's tRPC calls that `matches` picks until `release()`: `arrived` resolves when
 * one reaches the route (held), `answered` once it has gone through. `stop()` removes the hold.
 */
async function holdTrpcCalls(page: Page, matches: (request: Request) => boolean) {
  const held = Promise.withResolvers<void>();
  const arrived = Promise.withResolvers<void>();
  const answered = Promise.withResolvers<void>();
  const isTrpc = (url: URL) => url.pathname.startsWith('/trpc/');
  const hold = async (route: Route) => {
    if (!matches(route.request())) return route.fallback();
    arrived.resolve();
    await held.promise;
    await route.continue();
    answered.resolve();
  };
  await page.route(isTrpc, hold);
  return {
    arrived: arrived.promise,
    answered: answered.promise,
    release: () => held.resolve(),
    stop: () => page.unroute(isTrpc, hold),
  };
}

/** Holds the page's calls of the tRPC procedure `procedure` (see holdTrpcCalls). */
export const holdCall = (page: Page, procedure: string) =>
  holdTrpcCalls(page, (request) => new URL(request.url()).pathname.includes(procedure));

/** Holds the page's changes: every tRPC mutation (a POST), whichever procedure makes it (see holdTrpcCalls). */
export const holdMutations = (page: Page) => holdTrpcCalls(page, (request) => request.method() === 'POST');

/** The tokens the app keeps in localStorage (null once signed out). */
export const storedTokens = (page: Page): Promise<{ accessToken: string; refreshToken: string } | null> =>
  page.evaluate(() => JSON.parse(localStorage.getItem('app.tokens') ?? 'null'));

type Email = NonNullable<ReturnType<TestApp['mail']['last']>>;

/** The newest email of `template` to `to`, waiting for the background send. */
export async function mailTo(t: TestApp, to: string, template: string): Promise<Email> {
  await expect
    .poll(
      async () => {
        await t.settle();
        return t.mail.last(to, template) !== undefined;
      },
      // The page's request may still be on its way; then the email job runs (a busy machine is slow).
      { message: `a "${template}" email to ${to}`, timeout: 20_000, interval: 100 },
    )
    .toBe(true);
  return t.mail.last(to, template) as Email;
}

/** The one link in the email's text that starts with `prefix`. */
export function linkIn(email: Email, prefix: string): string {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const links = email.text.match(new RegExp(`${escaped}[^\\s"'<>]+`, 'g')) ?? [];
  expect(links, `links starting with ${prefix} in:\n${email.text}`).toHaveLength(1);
  return links[0] as string;
}

/** The user's row, by email. */
export const userRow = (t: TestApp, email: string) =>
  t.services.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirstOrThrow();

/** A valid PNG of `size`×`size` pixels of one colour (built here: no fixture file). */
export function solidPng(size: number, [r, g, b]: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bits per sample
  header[9] = 2; // truecolour (RGB); compression, filter and interlace stay 0
  const row = Buffer.from([0, ...Array.from({ length: size }, () => [r, g, b]).flat()]); // filter 0, then pixels
  const pixels = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** `${TEST_REPORT_DIR ?? .ci/reports/local}/web-screenshots`, created on first use. */
export function screenshotDir(): string {
  const dir = path.resolve(
    process.env.TEST_REPORT_DIR ?? path.join(repoRoot, '.ci', 'reports', 'local'),
    'web-screenshots',
  );
  mkdirSync(dir, { recursive: true });
  return dir;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Violation {
  id: string;
  impact: string | null | undefined;
  help: string;
  nodes: string[];
}

/**
 * A full-page screenshot as `<name>.png`, then axe-core on the page as it is: fails on any
 * violation of impact serious or critical, listing them.
 */
export async function auditPage(page: Page, name: string): Promise<Violation[]> {
  await page.screenshot({ path: path.join(screenshotDir(), `${name}.png`), fullPage: true });
  await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate(async () => {
    const { axe } = window as unknown as { axe: { run(): Promise<AxeResults> } };
    const results = await axe.run();
    return results.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      nodes: violation.nodes.map((node) => `${node.target.join(' ')}: ${node.failureSummary ?? ''}`),
    }));
  });
  const serious = violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
  if (serious.length > 0) {
    console.log(`axe on ${name} (${page.url()}):\n${formatViolations(serious)}`);
  }
  expect(serious, `serious or critical axe violations on ${name}:\n${formatViolations(serious)}`).toEqual([]);
  return violations;
}

export const formatViolations = (violations: Violation[]): string =>
  violations
    .map((v) => `- [${v.impact}] ${v.id}: ${v.help}\n${v.nodes.map((node) => `    ${node}`).join('\n')}`)
    .join('\n');
