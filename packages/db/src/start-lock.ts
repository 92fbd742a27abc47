/**
 * One process at a time starts (and on first use initialises) the cluster of a data
 * directory: two that found it stopped at the same moment would build over each other's
 * half-made directory, or start two postmasters on it. The lock is a file created
 * exclusively beside the directory (`<dataDir>.starting`) that holds its holder's pid; the
 * others wait for it to go, and one left by a process that died is taken over.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessAlive } from './process-alive.ts';

/** How long a start may keep the others waiting (an initdb, a copy of the binaries, Postgres's start). */
const WAIT_MS = 120_000;
const POLL_MS = 50;
/** A lock file still empty this long after it was made belongs to a process that died before writing its pid. */
const UNWRITTEN_GRACE_MS = 5_000;

export const startLockFile = (dataDir: string) => `${dataDir}.starting`;

/**
 * Runs `start` holding the data directory's start lock; while another process holds it,
 * `onWait` is told its pid once and the call waits (at most two minutes, then fails saying
 * which process holds it).
 */
export async function withStartLock<Result>(
  dataDir: string,
  onWait: (holder: number | undefined) => void,
  start: () => Promise<Result>,
): Promise<Result> {
  const lock = startLockFile(dataDir);
  const deadline = Date.now() + WAIT_MS;
  let told = false;
  while (!tryToTake(lock)) {
    const holder = readHolder(lock);
    if (!holder) continue; // released meanwhile: try again at once
    if (holder.stale) {
      takeOverStale(lock, holder.text);
      continue;
    }
    if (!told) onWait(holder.pid);
    told = true;
    if (Date.now() > deadline) {
      throw new Error(
        `${holder.pid ? `Process ${holder.pid}` : 'Another process'} has been starting the embedded Postgres in ` +
          `${dataDir} for over ${WAIT_MS / 1000} s. If it is stuck, stop it, or remove ${lock}.`,
      );
    }
    await sleep(POLL_MS);
  }
  try {
    return await start();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Creates the lock with our pid in it; false when it exists already. */
function tryToTake(lock: string): boolean {
  let fd: number;
  try {
    fd = openSync(lock, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, String(process.pid));
  } finally {
    closeSync(fd);
  }
  return true;
}

interface Holder {
  pid: number | undefined;
  /** Its holder died (or never wrote its pid, long ago). */
  stale: boolean;
  text: string;
}

/** The lock's holder, or undefined when the lock is gone. */
function readHolder(lock: string): Holder | undefined {
  let text: string;
  let madeAt: number;
  try {
    text = readFileSync(lock, 'utf8');
    madeAt = statSync(lock).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const pid = Number(text.trim());
  if (Number.isInteger(pid) && pid > 0) return { pid, stale: !isProcessAlive(pid), text };
  return { pid: undefined, stale: Date.now() - madeAt > UNWRITTEN_GRACE_MS, text };
}

/**
 * Removes a stale lock, and only that one: another waiter may have taken it over and made
 * its own in the meantime. The lock is moved aside (atomically: one mover wins) and
 * checked; a live lock moved by mistake is put back (a link, which never replaces a newer one).
 */
function takeOverStale(lock: string, staleText: string): void {
  const aside = `${lock}.${process.pid}`;
  try {
    renameSync(lock, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    if (readFileSync(aside, 'utf8') !== staleText) linkSync(aside, lock);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    rmSync(aside, { force: true });
  }
}
