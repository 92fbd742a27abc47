/** Test helpers for the embedded clusters the tests start. */
import { readFileSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { signalPostmaster } from '../src/embedded.ts';

export const postmasterPid = (dir: string) =>
  Number(readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);

/** Removes a data directory, and the staged cluster it links to when it is a link (as root in a private checkout). */
export function removeCluster(dir: string) {
  let real: string | undefined;
  try {
    real = realpathSync(dir);
  } catch {}
  try {
    // Left running by a failed test; the pid of one that died may be another process's since
    // (a backend of a cluster other tests use, whose every connection a SIGQUIT there would end).
    signalPostmaster(postmasterPid(dir), dir, 'SIGQUIT');
  } catch {}
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir}.owner`, { force: true });
  rmSync(`${dir}.attached`, { recursive: true, force: true });
  rmSync(`${dir}.starting`, { force: true });
  rmSync(`${dir}.port`, { force: true });
  rmSync(`${dir}.initialising`, { force: true });
  if (real && real !== dir) {
    rmSync(real, { recursive: true, force: true });
    rmSync(`${real}.json`, { force: true });
  }
}
