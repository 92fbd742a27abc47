/**
 * A data directory without PG_VERSION holds no cluster. It may be one whose initdb was cut
 * short (a Ctrl-C, a crash), which blocks the next initdb and must go; but
 * EMBEDDED_POSTGRES_DIR may also name a folder holding anything (`.data`, with the uploaded
 * files and the mail outbox; `.`, the checkout). Only an empty folder, or one our own initdb
 * began (the marker beside it says so), is ever removed.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';

/** Made beside the data directory before initdb runs, removed once it has finished. */
export const initialisingMarker = (dataDir: string) => `${dataDir}.initialising`;

export const holdsCluster = (dir: string) => existsSync(path.join(dir, 'PG_VERSION'));

/**
 * Removes `dir`, which holds no cluster, when it is empty or our initdb began it (`marker`
 * exists); refuses any other folder, touching nothing.
 */
export function removeUnfinishedCluster(dir: string, marker: string): void {
  if (existsSync(marker)) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (entries.length > 0) {
    throw new Error(
      `${dir} is not a Postgres data directory and is not empty: point EMBEDDED_POSTGRES_DIR at an empty or new folder.`,
    );
  }
  rmdirSync(dir); // fails, rather than removes, if something appeared in it meanwhile
}
