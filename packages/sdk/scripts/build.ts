/**
 * `pnpm --filter @app/sdk build`: regenerates the router types from the server's code,
 * then compiles src/ to dist/ (ESM JavaScript and declarations) with tsc.
 */

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRouterTypes } from './router-types.ts';

const sdkDir = fileURLToPath(new URL('..', import.meta.url));

export async function build(): Promise<void> {
  await writeRouterTypes();
  rmSync(join(sdkDir, 'dist'), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: sdkDir, stdio: 'inherit' });
  console.log('built dist/');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build().catch((error: unknown) => {
    // tsc has printed its own errors.
    if (!(error instanceof Error && 'status' in error)) console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
