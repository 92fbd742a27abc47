/**
 * `pnpm dev` for the server: `node --watch src/main.js`, which restarts on changes to the
 * code it imports, and restarts it as well when the env file (`.env`, or ENV_FILE) changes,
 * which node's watch mode does not follow. So fixing a variable after a configuration error,
 * or changing one while the server runs, takes effect on save.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import path from 'node:path';
import { styleText } from 'node:util';
import { repoEnvFile } from '@app/db';

/** Editors save in bursts (write, rename, chmod): one restart per burst. */
const SETTLE_MS = 150;

const envFile = repoEnvFile();
const main = path.join(import.meta.dirname, '..', 'src', 'main.js');

let child: ChildProcess;
let restartPending = false;
let stopping = false;

function start(): void {
  // Its own process group, so a server that hangs on restart can be stopped with its watcher.
  // Signals reach it through us (below), once.
  child = spawn(process.execPath, ['--watch', main], { stdio: 'inherit', detached: true });
  child.once('exit', (code, signal) => {
    if (restartPending && !stopping) {
      restartPending = false;
      start();
      return;
    }
    process.exit(code ?? (signal ? 1 : 0));
  });
}

/** A server that has not shut down by then (its own limit is SHUTDOWN_TIMEOUT_MS) is stopped hard. */
const RESTART_DEADLINE_MS = 30_000;

function restart(): void {
  if (restartPending || stopping) return;
  restartPending = true;
  console.log(styleText('cyan', `${path.basename(envFile)} changed: restarting`));
  const stopped = child;
  stopped.kill('SIGTERM'); // node --watch passes it on: the server shuts down gracefully first
  setTimeout(() => {
    if (stopped.exitCode !== null || stopped.signalCode !== null || !stopped.pid) return;
    process.kill(-stopped.pid, 'SIGKILL'); // the watcher and the server under it
  }, RESTART_DEADLINE_MS).unref();
}

// The directory, not the file: the file may not exist yet, and editors replace it on save.
// (A directory that does not exist is not watched: the server itself says what is wrong.)
let settle: NodeJS.Timeout | undefined;
const watcher = existsSync(path.dirname(envFile))
  ? watch(path.dirname(envFile), (_event, filename) => {
      if (filename !== path.basename(envFile)) return;
      clearTimeout(settle);
      settle = setTimeout(restart, SETTLE_MS);
    })
  : undefined;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // Passed on once (node --watch passes it to the server, which shuts down gracefully).
    if (stopping) return;
    stopping = true;
    watcher?.close();
    clearTimeout(settle);
    child.kill(signal);
  });
}

start();
