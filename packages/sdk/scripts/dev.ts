/**
 * `pnpm dev` (through turbo): builds the SDK, then rebuilds it whenever the server's or the
 * SDK's sources change, so a frontend in this repository (which imports the built package,
 * as any other consumer does) sees a changed procedure as soon as it is saved.
 *
 * Each build runs in a fresh process: the generator loads the server's router, and a
 * module once imported would not be read again.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { type FSWatcher, watch } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sdkDir = fileURLToPath(new URL('..', import.meta.url));
const watched = [join(sdkDir, '../../apps/server/src'), join(sdkDir, 'src')];
const DEBOUNCE_MS = 200;

let running: ChildProcess | undefined;
let pending = false;
let timer: NodeJS.Timeout | undefined;

function build(reason: string): void {
  if (running) {
    pending = true;
    return;
  }
  const started = Date.now();
  console.log(`sdk: building (${reason})`);
  const child = spawn(process.execPath, [join(sdkDir, 'scripts/build.ts')], { cwd: sdkDir, stdio: 'inherit' });
  running = child;
  child.on('exit', (code) => {
    running = undefined;
    console.log(
      code === 0
        ? `sdk: ready in ${Date.now() - started} ms`
        : 'sdk: build failed (see above); the last good build stays in dist/ until the next change',
    );
    if (pending) {
      pending = false;
      build('changed while building');
    }
  });
}

const watchers: FSWatcher[] = watched.map((dir) =>
  watch(dir, { recursive: true }, (_event, file) => {
    if (!file || file.endsWith('router.gen.ts') || !/\.(ts|json)$/.test(file)) return;
    clearTimeout(timer);
    timer = setTimeout(() => build(`${file} changed`), DEBOUNCE_MS);
  }),
);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const watcher of watchers) watcher.close();
    clearTimeout(timer);
    running?.kill(signal);
    process.exit(0);
  });
}

build('start');
