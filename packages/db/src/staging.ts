/**
 * As root, Postgres runs as the `postgres` user (see run-as.ts). When that user cannot
 * reach the binaries or the data directory (a clone in /root, in a devcontainer home, in
 * a mode-700 `mktemp -d`), they are put where it can, under a staging root:
 *
 *   <root>/<platform>-<arch>-<version>/   a copy of the binaries (bin, lib, share), root-owned, 755, made once
 *   <root>/clusters/<id>/                 the cluster, owned by `postgres`, 700
 *   <root>/clusters/<id>.json             the data directory it belongs to
 *
 * The configured data directory becomes a symlink to its cluster, so what reads it
 * (postmaster.pid, the owner file beside it) and what removes it (`rm -rf .data`) keep
 * working. The root is the first usable of /var/lib, /var/tmp and the OS temp directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import path from 'node:path';
import { canTraverse, ROOT_ADVICE, type RunAsUser } from './run-as.ts';
import { holdsCluster, initialisingMarker, removeUnfinishedCluster } from './unfinished-cluster.ts';

const ROOT_NAME = 'app-embedded-postgres';
/** An orphaned test cluster (its data directory link is gone) is removed after this long. */
const EPHEMERAL_ORPHAN_MS = 60_000;
/** ...a development cluster whose whole checkout is gone (moved, perhaps) only after this long. */
const DURABLE_ORPHAN_MS = 7 * 24 * 3_600_000;
const STALE_STAGING_MS = 10 * 60_000;

/**
 * The first candidate directory that we own, that nobody else can write to (we run what
 * it holds), that the user can reach, and that we can write to. `what` names what the
 * user could not reach, for the error.
 */
export function stagingRoot(user: RunAsUser, what: string, override?: string): string {
  const candidates = override
    ? [override]
    : [...new Set([`/var/lib/${ROOT_NAME}`, `/var/tmp/${ROOT_NAME}`, path.join(tmpdir(), ROOT_NAME)])];
  for (const dir of candidates) {
    try {
      if (mkdirSync(dir, { recursive: true })) chmodSync(dir, 0o755);
      const stat = lstatSync(dir);
      if (!stat.isDirectory() || stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) continue;
      if (!canTraverse(dir, user)) continue;
      const probe = path.join(dir, `.probe-${process.pid}`);
      writeFileSync(probe, ''); // a read-only file system fails here
      rmSync(probe);
      return dir;
    } catch {}
  }
  throw new Error(
    `Embedded Postgres runs as the "postgres" user when started as root, and that user cannot reach ${what}; ` +
      `no place it can reach could be prepared either (${candidates.join(', ')}): ${ROOT_ADVICE}.`,
  );
}

const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

function packageVersion(nativeDir: string): string {
  try {
    const { version } = JSON.parse(readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8'));
    if (typeof version === 'string' && /^[\w.+-]+$/.test(version)) return version;
  } catch {}
  return shortHash(nativeDir);
}

/** Directories 755, files 755 or 644: whatever the umask was, the copy is usable by everyone. */
function openUp(dir: string): void {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isDirectory()) chmodSync(file, 0o755);
    else if (entry.isFile()) chmodSync(file, statSync(file).mode & 0o111 ? 0o755 : 0o644);
  }
}

/**
 * A copy of the binaries in `nativeDir` under `root`, made once per version: copied into a
 * temporary directory, then renamed into place, so concurrent starts (parallel test runs)
 * never see half a copy. Returns the copy's directory (holding bin, lib, share).
 */
export function stageBinaries(nativeDir: string, root: string): string {
  const target = path.join(root, `${platform()}-${arch()}-${packageVersion(nativeDir)}`);
  const complete = () => existsSync(path.join(target, 'bin', 'postgres'));
  if (complete()) return target;
  for (const name of readdirSync(root)) {
    const leftover = path.join(root, name);
    // Another start may rename its finished copy away meanwhile: a missing entry is no leftover.
    const modified = name.startsWith('.staging-') ? statSync(leftover, { throwIfNoEntry: false })?.mtimeMs : undefined;
    if (modified !== undefined && Date.now() - modified > STALE_STAGING_MS) {
      rmSync(leftover, { recursive: true, force: true }); // an interrupted copy
    }
  }
  const temp = mkdtempSync(path.join(root, '.staging-'));
  try {
    for (const part of ['bin', 'lib', 'share']) {
      cpSync(path.join(nativeDir, part), path.join(temp, part), { recursive: true, verbatimSymlinks: true });
    }
    openUp(temp);
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    if (!complete()) throw error; // otherwise another process staged it first
  }
  return target;
}

/** Where the symlink at `file` points (absolute), or undefined when it is not a symlink. */
function linkTarget(file: string): string | undefined {
  try {
    if (!lstatSync(file).isSymbolicLink()) return undefined;
    return path.resolve(path.dirname(file), readlinkSync(file));
  } catch {
    return undefined;
  }
}

function isRealDirectory(file: string): boolean {
  try {
    return lstatSync(file).isDirectory();
  } catch {
    return false;
  }
}

interface ClusterRecord {
  dataDir: string;
  ephemeral: boolean;
}

const recordFile = (cluster: string) => `${cluster}.json`;
const OUR_CLUSTER = /[/\\]clusters[/\\][0-9a-f]{12}-[0-9a-f]{8}$/;

/** Removes staged clusters whose data directory no longer links to them and that are not running. */
function collectOrphans(clusters: string, isRunning: (clusterDir: string) => boolean): void {
  for (const name of readdirSync(clusters)) {
    if (!name.endsWith('.json')) continue;
    const record = path.join(clusters, name);
    const cluster = record.slice(0, -'.json'.length);
    try {
      const { dataDir, ephemeral } = JSON.parse(readFileSync(record, 'utf8')) as ClusterRecord;
      if (linkTarget(dataDir) === cluster || isRunning(cluster)) continue;
      // `rm -rf .data` (the link is gone, the checkout around `.data` is not): the cluster is
      // unwanted. A checkout that is gone altogether may have been moved: its data waits.
      const checkout = path.dirname(path.dirname(dataDir));
      const grace = ephemeral || existsSync(checkout) ? EPHEMERAL_ORPHAN_MS : DURABLE_ORPHAN_MS;
      if (Date.now() - statSync(record).mtimeMs < grace) continue;
      rmSync(cluster, { recursive: true, force: true });
      rmSync(record, { force: true });
    } catch {}
  }
}

/** Moves an existing cluster (made while its directory was still reachable) into `cluster`. */
function moveCluster(from: string, cluster: string, user: RunAsUser): void {
  try {
    renameSync(from, cluster);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    cpSync(from, cluster, { recursive: true, verbatimSymlinks: true });
    lchownSync(cluster, user.uid, user.gid);
    for (const entry of readdirSync(cluster, { recursive: true, withFileTypes: true })) {
      lchownSync(path.join(entry.parentPath, entry.name), user.uid, user.gid);
    }
    rmSync(from, { recursive: true, force: true });
  }
}

export interface PlaceClusterOptions {
  /** The configured data directory (absolute). */
  dataDir: string;
  user: RunAsUser;
  /** The staging root, asked for only when the cluster must be staged. */
  root: () => string;
  ephemeral: boolean;
  isRunning: (clusterDir: string) => boolean;
  log: (message: string) => void;
}

/**
 * The directory to give Postgres for `dataDir`: `dataDir` itself when the user can reach
 * it (as before), else a cluster under the staging root that `dataDir` links to.
 */
export function placeCluster(options: PlaceClusterOptions): string {
  const { dataDir, user } = options;
  for (let attempt = 0; ; attempt++) {
    const target = linkTarget(dataDir);
    if (target !== undefined) {
      if (canTraverse(path.dirname(target), user)) {
        // Keep the record current (a checkout that moved still links here).
        if (existsSync(recordFile(target))) writeRecord(target, { dataDir, ephemeral: options.ephemeral });
        return target;
      }
      if (!OUR_CLUSTER.test(target)) {
        throw new Error(
          `Embedded Postgres runs as the "postgres" user when started as root, and that user cannot reach ${target} ` +
            `(${dataDir} links there): ${ROOT_ADVICE}.`,
        );
      }
      rmSync(dataDir, { force: true }); // a link to a staged cluster that was removed (a cleaned /var/tmp)
    }
    mkdirSync(path.dirname(dataDir), { recursive: true });
    if (canTraverse(path.dirname(dataDir), user)) return dataDir;
    // A real directory (never a link another process has just made): a cluster made while
    // the directory was still reachable moves along; a half-initialised one goes; anything
    // else is refused.
    const directory = isRealDirectory(dataDir);
    const moving = directory && holdsCluster(dataDir);
    if (directory && !moving) removeUnfinishedCluster(dataDir, initialisingMarker(dataDir));

    const clusters = path.join(options.root(), 'clusters');
    if (mkdirSync(clusters, { recursive: true })) chmodSync(clusters, 0o755);
    collectOrphans(clusters, options.isRunning);
    const cluster = path.join(clusters, `${shortHash(dataDir)}-${randomBytes(4).toString('hex')}`);
    writeRecord(cluster, { dataDir, ephemeral: options.ephemeral });
    if (moving) moveCluster(dataDir, cluster, user);
    try {
      symlinkSync(cluster, dataDir, 'dir');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || moving || attempt >= 3) throw error;
      rmSync(recordFile(cluster), { force: true }); // another process placed it first: use theirs
      continue;
    }
    options.log(
      `The postgres user cannot reach ${path.dirname(dataDir)}: the cluster lives in ${cluster} (${dataDir} links to it)` +
        (moving ? ', moved there' : ''),
    );
    return cluster;
  }
}

function writeRecord(cluster: string, record: ClusterRecord): void {
  writeFileSync(recordFile(cluster), `${JSON.stringify(record)}\n`);
}
