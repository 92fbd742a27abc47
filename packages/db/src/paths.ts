import { fileURLToPath } from 'node:url';

/** The monorepo root: packages/db/src -> ../../.. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Where the development cluster keeps its data when DATABASE_URL is unset (ignored by git). */
export const defaultEmbeddedDataDir = fileURLToPath(new URL('../../../.data/postgres', import.meta.url));

/**
 * Loads the repository's `.env` into process.env for development entry points; variables
 * already set win. Skipped under NODE_ENV=test so a developer's file never leaks into tests.
 */
export function loadRepoEnvFile(): void {
  if (process.env.NODE_ENV === 'test') return;
  try {
    process.loadEnvFile(fileURLToPath(new URL('../../../.env', import.meta.url)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
