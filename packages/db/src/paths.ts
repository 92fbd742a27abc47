import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';

/** The monorepo root: packages/db/src -> ../../.. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Where the development cluster keeps its data when DATABASE_URL is unset (ignored by git). */
export const defaultEmbeddedDataDir = fileURLToPath(new URL('../../../.data/postgres', import.meta.url));

/**
 * A file or folder the configuration names (ENV_FILE, EMBEDDED_POSTGRES_DIR, FILES_DIR…):
 * relative to the repository root, as `.env` writes them, whichever folder a command runs
 * from (`pnpm dev` runs the server in apps/server, `pnpm start` at the root); or absolute.
 */
export function repoPath(configured: string): string {
  return path.resolve(repoRoot, configured);
}

/**
 * The env file development entry points load: the repository's `.env`, or ENV_FILE (see
 * repoPath) to keep several, e.g. `ENV_FILE=.env.staging`.
 */
export function repoEnvFile(): string {
  return repoPath(process.env.ENV_FILE || '.env');
}

/**
 * Loads the env file (see repoEnvFile) into process.env for development entry points;
 * variables already set win. Skipped under NODE_ENV=test so a developer's file never leaks
 * into tests.
 */
export function loadRepoEnvFile(): void {
  if (process.env.NODE_ENV === 'test') return;
  if (existingEnvFile()) process.loadEnvFile(repoEnvFile());
}

/**
 * The environment over the env file's variables (see loadRepoEnvFile), read without being
 * loaded: for a tool that needs a few of them (the web app's dev server: the server's PORT)
 * and must not take the rest (its NODE_ENV).
 */
export function repoEnv(): Record<string, string | undefined> {
  if (process.env.NODE_ENV === 'test' || !existingEnvFile()) return { ...process.env };
  return { ...parseEnv(readFileSync(repoEnvFile(), 'utf8')), ...process.env };
}

/** Whether the env file exists; a missing ENV_FILE is an error (the repository's .env is optional). */
function existingEnvFile(): boolean {
  if (existsSync(repoEnvFile())) return true;
  if (process.env.ENV_FILE) throw new Error(`ENV_FILE: ${repoEnvFile()} does not exist`);
  return false;
}
