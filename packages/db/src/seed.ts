import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Db } from './client.ts';

export const seedsDir = fileURLToPath(new URL('../seeds/', import.meta.url));

/** A seed module: `export async function seed(db)`; it must be idempotent (safe to run again). */
export interface SeedModule {
  seed(db: Db): Promise<void>;
}

export interface SeedStep {
  name: string;
  durationMs: number;
}

/** Runs every `seeds/*.ts` in file-name order. Refuses to touch a production database. */
export async function runSeeds(
  db: Db,
  options: { nodeEnv: string | undefined; folder?: string; onStep?: (step: SeedStep) => void },
): Promise<SeedStep[]> {
  if (options.nodeEnv === 'production') {
    throw new Error('Seeding is refused in production: seeds create development users with known passwords.');
  }
  const folder = options.folder ?? seedsDir;
  const files = (await readdir(folder)).filter((file) => file.endsWith('.ts')).sort();
  const done: SeedStep[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(path.join(folder, file)).href)) as Partial<SeedModule>;
    if (typeof module.seed !== 'function') throw new Error(`Seed ${file} must export seed(db)`);
    const started = performance.now();
    await module.seed(db);
    const ran = { name: file.replace(/\.ts$/, ''), durationMs: performance.now() - started };
    done.push(ran);
    options.onStep?.(ran);
  }
  return done;
}
