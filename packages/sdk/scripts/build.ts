/**
 * `pnpm --filter @app/sdk build`: regenerates the router types from the server's code,
 * then compiles src/ to dist/ (ESM JavaScript and declarations) with tsc.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRouterTypes } from './router-types.ts';

const sdkDir = fileURLToPath(new URL('..', import.meta.url));

/**
 * tsc rewrites the `.ts` of relative imports in the JavaScript it emits, not in declarations:
 * `./auth.ts` there would resolve for TypeScript 5 and up only, and not at all for tools that
 * read declarations on their own (API Extractor, declaration bundlers). They name the `.js`.
 */
function pointDeclarationsAtJs(dir: string): void {
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.d.ts'))) {
    const file = join(dir, name);
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replaceAll(/(from '|import\(")(\.\/[\w.-]+)\.ts(['"])/g, '$1$2.js$3'));
  }
}

/**
 * Compiled beside dist/ and swapped in whole: `pnpm dev` rebuilds on every save of the
 * server while the web app's dev server reads dist/, which must never be missing (nor keep
 * the files of a module since removed).
 */
export async function build(): Promise<void> {
  await writeRouterTypes();
  const dist = join(sdkDir, 'dist');
  const next = join(sdkDir, `dist.next-${process.pid}`);
  const previous = join(sdkDir, `dist.previous-${process.pid}`);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', next], {
      cwd: sdkDir,
      stdio: 'inherit',
    });
    pointDeclarationsAtJs(next);
    if (existsSync(dist)) renameSync(dist, previous);
    renameSync(next, dist);
  } finally {
    rmSync(next, { recursive: true, force: true });
    rmSync(previous, { recursive: true, force: true });
  }
  console.log('built dist/');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build().catch((error: unknown) => {
    // tsc has printed its own errors.
    if (!(error instanceof Error && 'status' in error)) console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
