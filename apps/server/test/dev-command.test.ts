/**
 * `pnpm dev` as a developer runs it, from the repository root through turbo: variables given
 * on the command line reach the server, and saving the env file restarts it, even while it
 * waits after a configuration error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '@app/db';
import { createTestDatabase, type TestDatabase } from '@app/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnCommand } from './helpers/index.ts';

describe('pnpm dev', () => {
  let database: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    database = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), 'app-dev-command-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await database.drop();
  });

  it('passes command-line variables to the server, and restarts it when the env file is saved', async () => {
    const envFile = path.join(dir, '.env');
    writeFileSync(envFile, 'TRUST_PROXY=true\n'); // refused: the server waits for a fix
    const port = await freePort();
    const origin = 'http://passed-through.test:8080';
    // The server's dev task only: the SDK's (which rebuilds packages/sdk/dist) would race
    // with the SDK's own tests, which pack that directory.
    const dev = spawnCommand('pnpm', ['dev', '--filter', '@app/server'], {
      cwd: repoRoot,
      detached: true,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TURBO_TELEMETRY_DISABLED: '1',
        NO_COLOR: '1',
        ENV_FILE: envFile,
        DATABASE_URL: database.url,
        HOST: '127.0.0.1',
        PORT: String(port),
        EMAIL_OUTBOX_DIR: path.join(dir, 'outbox'),
        // Not one turbo knows about: it must reach the server all the same.
        CORS_ORIGINS: origin,
      },
    });
    try {
      await dev.waitFor(/TRUST_PROXY: must say which proxies to trust/, 60_000);
      await dev.waitFor(/Waiting for file changes/);
      writeFileSync(envFile, 'TRUST_PROXY=1\n');
      await dev.waitFor(new RegExp(`Server listening at http://127\\.0\\.0\\.1:${port}`), 60_000);

      const preflight = await fetch(`http://127.0.0.1:${port}/api/users/me`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'PATCH' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
    } finally {
      if (dev.process.pid) process.kill(-dev.process.pid, 'SIGINT');
      const exited = await Promise.race([dev.exited, new Promise((r) => setTimeout(r, 15_000, 'timeout'))]);
      if (exited === 'timeout' && dev.process.pid) process.kill(-dev.process.pid, 'SIGKILL');
    }
    expect(dev.output()).toMatch(/\.env changed: restarting/);
  }, 120_000);
});
