/**
 * The repository's env file, as development tools read it: beneath the environment, never
 * under NODE_ENV=test, and a named ENV_FILE that is missing is an error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { repoEnv, repoPath, repoRoot } from '../src/paths.ts';

describe('the env file (paths.ts)', () => {
  const saved = { ...process.env };
  const dir = mkdtempSync(path.join(tmpdir(), 'db-paths-'));
  afterEach(() => {
    process.env = { ...saved };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads ENV_FILE beneath the environment, without loading it', () => {
    const file = path.join(dir, '.env.dev');
    writeFileSync(file, 'PORT=4100\nWEB_PORT=5200\nNODE_ENV=production\n');
    process.env = { ...saved, NODE_ENV: 'development', ENV_FILE: file, WEB_PORT: '5300' };
    const env = repoEnv();
    expect(env.PORT).toBe('4100');
    expect(env.WEB_PORT).toBe('5300'); // the environment wins
    expect(env.NODE_ENV).toBe('development');
    expect(process.env.PORT).toBe(saved.PORT); // nothing loaded
  });

  it('never reads it under NODE_ENV=test', () => {
    const file = path.join(dir, '.env.test-leak');
    writeFileSync(file, 'LEAKED=yes\n');
    process.env = { ...saved, NODE_ENV: 'test', ENV_FILE: file };
    expect(repoEnv().LEAKED).toBeUndefined();
  });

  it('refuses an ENV_FILE that does not exist, naming it', () => {
    process.env = { ...saved, NODE_ENV: 'development', ENV_FILE: 'no-such.env' };
    expect(() => repoEnv()).toThrow(`ENV_FILE: ${path.join(repoRoot, 'no-such.env')} does not exist`);
  });

  it('resolves a configured path from the repository root, and keeps an absolute one', () => {
    expect(repoPath('.data/files')).toBe(path.join(repoRoot, '.data', 'files'));
    expect(repoPath('/srv/files')).toBe('/srv/files');
  });
});
