/**
 * Once per test run: the test databases (DATABASE_URL's server, or an embedded one) and,
 * when Debian's Chromium is there, the web app built with Vite into a temporary directory
 * that every e2e file serves through the real server (WEB_DIR). Without Chromium the e2e
 * files skip (one line says so) — except under CI, where they fail (harness.ts).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setupTestDatabases } from '@app/db/testing';
import { build } from 'vite';
import type { TestProject } from 'vitest/node';
import { CHROMIUM } from './chromium.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The built web app ('' when the browser tests cannot run). */
    webDist: string;
  }
}

const webRoot = fileURLToPath(new URL('..', import.meta.url));
/**
 * The SDK from its sources: its own tests rebuild its dist/ while these run (pnpm test runs
 * packages side by side), and the SDK's package tests check the dist/ a frontend installs.
 */
const sdkSource = fileURLToPath(new URL('../../../packages/sdk/src/index.ts', import.meta.url));

async function buildWebApp(outDir: string): Promise<void> {
  // Vitest runs with NODE_ENV=test, which would make Vite bundle React's development build.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({
      root: webRoot,
      mode: 'production',
      logLevel: 'warn',
      resolve: { alias: { '@app/sdk': sdkSource } },
      build: { outDir, emptyOutDir: true },
    });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
}

export default async function setup(project: TestProject) {
  const teardownDatabases = await setupTestDatabases('web');
  let dist = '';
  try {
    if (existsSync(CHROMIUM)) {
      dist = mkdtempSync(path.join(tmpdir(), 'web-e2e-dist-'));
      await buildWebApp(dist);
    } else if (!process.env.CI) {
      console.warn(`web e2e skipped: ${CHROMIUM} not found (apt-get install chromium)`);
    }
  } catch (error) {
    await teardownDatabases();
    throw error;
  }
  project.provide('webDist', dist);
  return async () => {
    if (dist) rmSync(dist, { recursive: true, force: true });
    await teardownDatabases();
  };
}
