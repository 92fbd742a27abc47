import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The monorepo root: packages/db/src -> ../../.. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Where the development cluster keeps its data when DATABASE_URL is unset (ignored by git). */
export const defaultEmbeddedDataDir = fileURLToPath(new URL('../../../.data/postgres', import.meta.url));

/**
 * The env file development entry points load: the repository's `.env`, or ENV_FILE (a path
 * relative to the repository root, or absolute) to keep several, e.g. `ENV_FILE=.env.staging`.
 */
export function repoEnvFile(): string {
  return path.resolve(repoRoot, process.env.ENV_FILE || '.env');
}

/**
 * Loads the env file (see repoEnvFile) into process.env for development entry points;
 * variables already set win. Skipped under NODE_ENV=test so a developer's file never leaks
 * into tests.
 */
export function loadRepoEnvFile(): void {
  if (process.env.NODE_ENV === 'test') return;
  try {
    process.loadEnvFile(repoEnvFile());
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (process.env.ENV_FILE) throw new Error(`ENV_FILE: ${repoEnvFile()} does not exist`);
  }
}
