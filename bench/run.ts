/**
 * `pnpm bench`: starts the app and a plain-Fastify baseline as separate processes, loads
 * each scenario with autocannon and prints req/s, latency, the server's CPU time per request
 * and the ratios to the baseline measured in the same run; then the backend round trips per
 * request (counted on quiet servers) and the app's start-up time. Options and what it
 * needs: `pnpm bench --help` (USAGE below).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDb, hashPassword, migrateToLatest, repoRoot, startEmbeddedPostgres } from '@app/db';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type CountingProxy, perRequest, startCountingProxy } from './backend-counter.ts';
import { bracketedRatios, firstLoadsOfTheirServers, type Load, roundOrder } from './bracket.ts';
import { cpuTimeNs } from './cpu.ts';
import { failures } from './failures.ts';
import { chosen } from './only.ts';
import { type SideLoad, sideBySideRatio } from './side-by-side.ts';

/**
 * Unmeasured load right before each measurement: a server that sat idle while others ran starts
 * slow, and one that served other routes meanwhile runs this one's code again only after V8 has
 * compiled and optimized it anew (1 s was not enough for either).
 */
const SETTLE_SECONDS = 3;

const USAGE = `Usage: pnpm bench [--duration <seconds>] [--rounds <n>] [--connections <n>] [--only <text>]

Starts the app and a plain-Fastify baseline, loads each scenario with autocannon and prints
req/s, latency, the server's CPU time per request and the ratios to the baseline measured in
the same run; then SQL statements and Redis commands per request (counted on quiet servers)
and the app's start-up time (median of 5 starts on the migrated database; also through
pnpm, beside pnpm's own launch, with the job worker, and without Node's compile cache).

Each round loads every scenario between two loads of its baseline (each server's first
load of a group after a 3 s warm-up: it sat idle while the others ran) and compares it
with their mean, so a machine that slows down or speeds up meanwhile moves both: a ratio
is the median of the rounds' ratios. The scenarios of one baseline take turns in their
places from round to round. On Linux the servers under load (the cluster of WORKERS=2
aside) run pinned to the last CPU (taskset), so the load generator does not share their
core. Then as many rounds load each scenario and its baseline at the same time, their
servers sharing that CPU: the "side by side" column compares their CPU per request within
the same seconds, the steadiest ratio on a busy machine.

Options:
  --duration <seconds>   load per scenario and per round, each after ${SETTLE_SECONDS} s unmeasured (default 5)
  --rounds <n>           rounds (default 3)
  --connections <n>      concurrent connections (default 50)
  --only <text>          only the scenarios whose name contains <text> (any case), with
                         their baselines; the round trips counted for those alone
  -h, --help             show this help

Uses DATABASE_URL / REDIS_URL when set (a fresh database is created and dropped), else an
embedded Postgres and the in-memory store. See bench/README.md for how to read the results.
`;

/** The options, or the process ends: with the usage (--help) or one line saying what is wrong. */
function readOptions(args: string[]): { duration: number; rounds: number; connections: number; only?: string } {
  const fail = (message: string): never => {
    process.stderr.write(`pnpm bench: ${message} (see pnpm bench --help)\n`);
    process.exit(2);
  };
  let values: { duration?: string; rounds?: string; connections?: string; only?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: args.filter((arg) => arg !== '--'),
      options: {
        duration: { type: 'string' },
        rounds: { type: 'string' },
        connections: { type: 'string' },
        only: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    // parseArgs explains well ("Unknown option '--x'"); only its first sentence is kept.
    return fail((error as Error).message.split('. ')[0]?.replace(/\.$/, '') ?? 'bad arguments');
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const positive = (name: string, raw: string | undefined, fallback: number, max: number) => {
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > max) fail(`--${name} must be a whole number from 1 to ${max}`);
    return value;
  };
  return {
    duration: positive('duration', values.duration, 5, 3600),
    rounds: positive('rounds', values.rounds, 3, 100),
    connections: positive('connections', values.connections, 50, 10_000),
    ...(values.only !== undefined && {
      only: values.only.trim() || fail('--only needs the text of a scenario name (see the table of a run)'),
    }),
  };
}

const { duration: DURATION, rounds: ROUNDS, connections: CONNECTIONS, only: ONLY } = readOptions(process.argv.slice(2));
const here = path.dirname(fileURLToPath(import.meta.url));
const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256!!';
const PASSWORD = 'Bench-pass-123';
const serverDir = path.join(repoRoot, 'apps', 'server');
const MAIN = path.join(serverDir, 'src', 'main.js');
const BASELINE = path.join(here, 'baseline-server.ts');
/** Sequential calls per scenario on the counting servers (login: fewer, each hashes a password). */
const COUNTED_CALLS = 50;
const STARTS = 5;

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/**
 * The CPU the single-process servers run on (the last one), or undefined where they cannot be
 * pinned (not Linux, one CPU, no taskset). A server whose core the load generator keeps
 * taking over pays for it in cache misses, and more the larger its working set: unpinned, the
 * app's constant route used 1.6x raw Fastify's CPU per request, pinned 1.2x (same machine,
 * same minutes). Pinned, both sides of a ratio pay only for their own work.
 */
const SERVER_CPU = ((): number | undefined => {
  const cpus = availableParallelism();
  if (process.platform !== 'linux' || cpus < 2) return undefined;
  return spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0 ? cpus - 1 : undefined;
})();

/**
 * Keeps this process (the load generator: autocannon runs in it), all its threads, off the
 * servers' CPU while it loads them (`off`), or lets it run anywhere again. The scheduler put
 * it there too otherwise: loaded side by side, the constant route read 0.80x–0.86x of raw
 * Fastify's CPU ratio with the generator free, 0.84x–0.86x with it kept off (nineteenth
 * sitting). Processes started meanwhile inherit the mask: start the servers before.
 */
function keepLoadGeneratorOffServerCpu(off: boolean): void {
  if (SERVER_CPU === undefined) return;
  const cpus = off ? `0-${SERVER_CPU - 1}` : `0-${availableParallelism() - 1}`;
  spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
}

const children = new Set<ChildProcess>();
/** The servers this script is stopping: any other exit is reported. */
const stopping = new Set<ChildProcess>();
function start(script: string, env: Record<string, string>, options: { pinned?: boolean } = {}): ChildProcess {
  const node = [process.execPath, script];
  // taskset execs node: the child's pid is the server's (its CPU time is read by pid).
  const [command, ...args] =
    options.pinned && SERVER_CPU !== undefined ? ['taskset', '-c', String(SERVER_CPU), ...node] : node;
  const child = spawn(command as string, args, {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (!stopping.has(child)) {
      process.stderr.write(
        `  ${path.basename(script)} (pid ${child.pid}, port ${env.PORT}) exited on its own: ${signal ?? `exit code ${code}`}\n`,
      );
    }
  });
  return child;
}

/** SIGTERM, then waits for the exit (SIGKILL after 15 s). */
async function stop(child: ChildProcess): Promise<void> {
  stopping.add(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function waitUntilUp(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`${url} did not come up`);
}

async function prepareDatabase(): Promise<{ url: string; cleanup(): Promise<void> }> {
  const name = `bench_${process.pid}`;
  const embedded = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ dataDir: path.join(repoRoot, '.data', 'bench-postgres'), ephemeral: true });
  const admin = process.env.DATABASE_URL ?? (embedded?.url as string);
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: admin });
    await client.connect();
    await client.query(sql);
    await client.end();
  };
  await run(`create database ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async cleanup() {
      await run(`drop database if exists ${name} with (force)`);
      await embedded?.stop();
    },
  };
}

/** Two accounts: `reader` with 30 notes (lists), `writer` for the scenarios that write. */
async function seed(url: string): Promise<{ reader: string; writer: string; signer: string }> {
  const db = createDb({ url, poolMax: 2 });
  await migrateToLatest(db);
  const role = await db.selectFrom('roles').select('id').where('name', '=', 'user').executeTakeFirstOrThrow();
  const password_hash = await hashPassword(PASSWORD);
  const account = async (email: string) => {
    const user = await db
      .insertInto('users')
      .values({ email, password_hash, email_verified_at: new Date() })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db.insertInto('user_roles').values({ user_id: user.id, role_id: role.id }).execute();
    return user.id;
  };
  const reader = 'bench@example.com';
  const writer = 'bench-writer@example.com';
  // The sign-in scenario's own account: its thousands of sessions must not crowd out the
  // reader's (MAX_SESSIONS_PER_USER ends the least recently used).
  const signer = 'bench-signer@example.com';
  const readerId = await account(reader);
  await account(writer);
  await account(signer);
  await db
    .insertInto('notes')
    .values(Array.from({ length: 30 }, (_, i) => ({ owner_id: readerId, title: `Note ${i}`, body: 'x'.repeat(200) })))
    .execute();
  // Other users' notes, so the owner index does real work.
  for (let u = 0; u < 20; u++) {
    const other = await db
      .insertInto('users')
      .values({ email: `other${u}@example.com` })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('notes')
      .values(Array.from({ length: 50 }, (_, i) => ({ owner_id: other.id, title: `Other ${i}` })))
      .execute();
  }
  await db.destroy();
  return { reader, writer, signer };
}

/** The servers: the baseline, the app (fast path), the app with tRPC's adapter, the app with 2 workers. */
type Target = 'base' | 'fast' | 'official' | 'workers';
/** What a scenario is compared with: a baseline scenario's name. */
type Baseline = 'raw /health' | 'hand-written GET /notes' | 'hand-written POST /notes';

interface Scenario {
  name: string;
  target: Target;
  /** Undefined for the baselines themselves. */
  baseline?: Baseline;
  /** The baseline this row is (its label in the baseline column of the others). */
  is?: Baseline;
  method?: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Sequential calls on the counting server. */
  counted?: number;
}

/** One load of one scenario. */
interface Measurement extends Load {
  p50: number;
  p99: number;
  errors: number;
}

/** A scenario's row: the medians of its rounds, and its ratios to its baseline (medians of each round's). */
interface Result extends Measurement {
  scenario: Scenario;
  ratio: number | undefined;
  cpuRatio: number | undefined;
  /** The median of its side-by-side rounds' CPU ratios (undefined: not measured so). */
  sideBySide: number | undefined;
}

function loadOptions(scenario: Scenario, origin: string): autocannon.Options {
  return {
    url: `${origin}${scenario.path}`,
    method: scenario.method ?? 'GET',
    connections: CONNECTIONS,
    ...(scenario.headers && { headers: scenario.headers }),
    ...(scenario.body !== undefined && { body: scenario.body }),
  };
}

/** Load before measuring (JIT, pools): 1 s was too short. */
async function warmUp(scenario: Scenario, origin: string): Promise<void> {
  await autocannon({ ...loadOptions(scenario, origin), duration: 3 });
}

async function measure(scenario: Scenario, origin: string, pid: number | undefined): Promise<Measurement> {
  await autocannon({ ...loadOptions(scenario, origin), duration: SETTLE_SECONDS });
  const cpuBefore = cpuTimeNs(pid);
  const result = await autocannon({ ...loadOptions(scenario, origin), duration: DURATION });
  const cpuAfter = cpuTimeNs(pid);
  const failed = failures([result]);
  const served = result.requests.total;
  const cpuPerRequest =
    cpuBefore !== undefined && cpuAfter !== undefined && served > 0
      ? (cpuAfter - cpuBefore) / 1000 / served
      : undefined;
  process.stderr.write(
    `  ${scenario.name}: ${Math.round(result.requests.average)} req/s` +
      `${cpuPerRequest === undefined ? '' : `, ${Math.round(cpuPerRequest)} µs CPU/req`}` +
      `${failed.text}\n`,
  );
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: failed.count,
    cpuPerRequest,
  };
}

/** A scenario's row from its measurements, and the ratios of each round (undefined for a baseline). */
function summarize(
  scenario: Scenario,
  measurements: Measurement[],
  ratios: { requests: number[]; cpu: number[] } | undefined,
  sideBySide: { ratios: number[]; errors: number } | undefined,
): Result {
  const cpu = measurements.flatMap((m) => (m.cpuPerRequest === undefined ? [] : [m.cpuPerRequest]));
  return {
    scenario,
    requestsPerSecond: median(measurements.map((m) => m.requestsPerSecond)),
    p50: median(measurements.map((m) => m.p50)),
    p99: median(measurements.map((m) => m.p99)),
    errors: measurements.reduce((sum, m) => sum + m.errors, 0) + (sideBySide?.errors ?? 0),
    cpuPerRequest: cpu.length ? median(cpu) : undefined,
    ratio: ratios ? median(ratios.requests) : 1,
    cpuRatio: ratios ? (ratios.cpu.length ? median(ratios.cpu) : undefined) : cpu.length ? 1 : undefined,
    sideBySide: sideBySide?.ratios.length ? median(sideBySide.ratios) : undefined,
  };
}

/** Where a scenario runs: its URL's origin, and the pid of its server (whose CPU time is read). */
type Place = { origin: string; pid: number | undefined };

/**
 * A scenario and its baseline loaded at the same time, each with CONNECTIONS connections,
 * their servers on the same CPU (side-by-side.ts): after SETTLE_SECONDS of that load
 * unmeasured, DURATION seconds measured. The baseline's CPU per request over the scenario's,
 * and the requests that failed on either side.
 */
async function measureSideBySide(
  pair: { scenario: Scenario; at: Place }[],
): Promise<{ ratio: number | undefined; errors: number }> {
  await Promise.all(
    pair.map(({ scenario, at }) => autocannon({ ...loadOptions(scenario, at.origin), duration: SETTLE_SECONDS })),
  );
  const before = pair.map(({ at }) => cpuTimeNs(at.pid));
  const results = await Promise.all(
    pair.map(({ scenario, at }) => autocannon({ ...loadOptions(scenario, at.origin), duration: DURATION })),
  );
  const loads: SideLoad[] = pair.map(({ at }, i) => {
    const [start, end] = [before[i], cpuTimeNs(at.pid)];
    return {
      requests: results[i]?.requests.total ?? 0,
      cpuNs: start !== undefined && end !== undefined ? end - start : undefined,
    };
  });
  const failed = failures(results);
  const ratio = sideBySideRatio(loads[0] as SideLoad, loads[1] as SideLoad);
  const [mine, theirs] = pair;
  process.stderr.write(
    `  ${mine?.scenario.name} beside ${theirs?.scenario.name}: ` +
      `${ratio === undefined ? 'no CPU time' : `CPU ratio ${ratio.toFixed(2)}x`}${failed.text}\n`,
  );
  return { ratio, errors: failed.count };
}

interface RoundTrips {
  scenario: Scenario;
  calls: number;
  failed: number;
  sql: ReturnType<typeof perRequest>;
  redis: ReturnType<typeof perRequest> | undefined;
}

/** One call as the load generator makes it; the body is read whole. */
async function call(origin: string, scenario: Scenario): Promise<boolean> {
  const response = await fetch(`${origin}${scenario.path}`, {
    method: scenario.method ?? 'GET',
    ...(scenario.headers && { headers: scenario.headers }),
    ...(scenario.body !== undefined && { body: scenario.body }),
  });
  await response.arrayBuffer();
  return response.ok;
}

/**
 * Starts `target` again behind counting proxies (nothing else calls it), then per scenario a
 * few warm-up calls and `counted` sequential calls, counted.
 */
async function countRoundTrips(
  target: { script: string; env: Record<string, string>; health: string },
  scenarios: Scenario[],
  backends: { database: string; redis: string | undefined },
): Promise<RoundTrips[]> {
  const sqlProxy = await startCountingProxy(backends.database, { ignoreApplication: 'app-jobs' });
  const redisProxy: CountingProxy | undefined = backends.redis ? await startCountingProxy(backends.redis) : undefined;
  const port = await freePort();
  const child = start(target.script, {
    ...target.env,
    PORT: String(port),
    DATABASE_URL: sqlProxy.url,
    ...(redisProxy && { REDIS_URL: redisProxy.url }),
  });
  const origin = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(`${origin}${target.health}`);
    // Anything the server does on its own (timers) would show here: a second with no calls.
    await sleep(300);
    const quiet = { sql: sqlProxy.counts(), redis: redisProxy?.counts() };
    await sleep(1_000);
    const background =
      sqlProxy.counts().commands -
      quiet.sql.commands +
      (redisProxy ? redisProxy.counts().commands - (quiet.redis?.commands ?? 0) : 0);
    if (background > 0) {
      process.stderr.write(`  note: ${background} SQL statements and Redis commands in a second without calls\n`);
    }
    const results: RoundTrips[] = [];
    for (const scenario of scenarios) {
      for (let i = 0; i < 5; i++) await call(origin, scenario);
      await sleep(300); // background work a first call started (the revocation cache) ends
      const calls = scenario.counted ?? COUNTED_CALLS;
      const before = { sql: sqlProxy.counts(), redis: redisProxy?.counts() };
      let failed = 0;
      for (let i = 0; i < calls; i++) if (!(await call(origin, scenario))) failed += 1;
      const after = { sql: sqlProxy.counts(), redis: redisProxy?.counts() };
      results.push({
        scenario,
        calls,
        failed,
        sql: perRequest(before.sql, after.sql, calls),
        redis: before.redis && after.redis ? perRequest(before.redis, after.redis, calls) : undefined,
      });
    }
    return results;
  } finally {
    await stop(child);
    await sqlProxy.close();
    await redisProxy?.close();
  }
}

/**
 * Time from spawn to exit of a command that does nothing by itself (`pnpm --silent exec
 * true`: pnpm's own launch), `STARTS` times in apps/server: what `pnpm start` adds to the
 * server's own start-up on this machine, in the same minutes.
 */
async function timeLaunches(file: string, args: string[]): Promise<number[] | string> {
  const times: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    const t0 = performance.now();
    const child = spawn(file, args, { cwd: serverDir, env: { PATH: process.env.PATH }, stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => {
      child.once('error', () => resolve(null));
      child.once('exit', resolve);
    });
    if (code !== 0) return `${file} ${args.join(' ')} failed (${code === null ? 'not started' : `exit ${code}`})`;
    times.push(performance.now() - t0);
  }
  return times;
}

/**
 * Time from spawn to the "Server listening" log line and to the first 200 of
 * /api/health/ready, `STARTS` times (one after the other; each stopped before the next).
 * `command` is node with main.js, or `pnpm start` in apps/server (its own process group).
 */
async function timeStarts(
  command: { file: string; args: string[]; group: boolean },
  env: Record<string, string>,
): Promise<{ listening: number[]; ready: number[] } | string> {
  const listening: number[] = [];
  const ready: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const child = spawn(command.file, command.args, {
      cwd: serverDir,
      env: {
        ...env,
        PATH: process.env.PATH,
        PORT: String(port),
        MIGRATE_ON_START: 'false',
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: command.group,
    });
    children.add(child);
    let exited = false;
    child.on('exit', () => {
      exited = true;
      children.delete(child);
    });
    let output = '';
    let listenedAt: number | undefined;
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (listenedAt === undefined && /Server listening at/.test(output)) listenedAt = performance.now() - t0;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    let readyAt: number | undefined;
    while (readyAt === undefined && !exited && performance.now() - t0 < 30_000) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/api/health/ready`);
        await response.arrayBuffer();
        if (response.status === 200) readyAt = performance.now() - t0;
      } catch {
        await sleep(10);
      }
    }
    const exitedEarly = exited;
    if (command.group && child.pid !== undefined && !exited) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(-child.pid, 'SIGTERM');
      await gone;
    } else {
      await stop(child);
    }
    if (readyAt === undefined) {
      return exitedEarly
        ? `exited before it was ready: ${output.trim().split('\n').at(-1) ?? ''}`
        : 'not ready in 30 s';
    }
    ready.push(readyAt);
    if (listenedAt !== undefined) listening.push(listenedAt);
  }
  return { listening, ready };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

/** Deletes this run's keys (its own prefix) from a shared Redis. */
async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function signIn(origin: string, email: string): Promise<Record<string, string>> {
  const login = await fetch(`${origin}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (!login.ok) throw new Error(`signing in as ${email}: ${login.status} ${await login.text()}`);
  const { accessToken } = (await login.json()) as { accessToken: string };
  return { authorization: `Bearer ${accessToken}` };
}

/** A small text file uploaded through the app's API: its id. */
async function uploadFile(origin: string, authorization: Record<string, string>): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob(['Benchmark file, 1 KiB of text.\n'.repeat(32)], { type: 'text/plain' }), 'bench.txt');
  const response = await fetch(`${origin}/api/files`, { method: 'POST', headers: authorization, body: form });
  if (response.status !== 201) throw new Error(`uploading a file: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

async function main() {
  process.stderr.write(
    `Preparing (${ROUNDS} rounds of ${DURATION} s per scenario and its baseline, ${CONNECTIONS} connections; ${
      SERVER_CPU === undefined ? 'servers not pinned' : `servers pinned to CPU ${SERVER_CPU}`
    })...\n`,
  );
  const database = await prepareDatabase();
  const filesDir = mkdtempSync(path.join(tmpdir(), 'bench-files-'));
  const redisUrl = process.env.REDIS_URL;
  const keyPrefix = `bench:${process.pid}:`;
  try {
    const accounts = await seed(database.url);
    const common = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      JWT_SECRET,
      // The run can outlast the default 15 minutes (long --duration): one token for all of it.
      ACCESS_TOKEN_TTL: '1d',
      REDIS_KEY_PREFIX: keyPrefix,
      RATE_LIMIT_DEFAULT_PER_MINUTE: '1000000',
      RATE_LIMIT_AUTH_PER_MINUTE: '100000',
      // One account signs in over 50 connections at once: its checks in flight count against
      // the account's failure limit until each turns out right.
      RATE_LIMIT_EMAIL_FAILURES_PER_MINUTE: '100000',
      // A sign-in measured as most are, under the account's session cap (a run signs one
      // account in a thousand times or so); over it, each would also end a session.
      MAX_SESSIONS_PER_USER: '10000',
      FILES_DIR: filesDir,
      // The job worker polls on a timer: its CPU would count against the requests. At scale it
      // runs apart (`pnpm worker`); none of the scenarios queues a job.
      JOBS_WORKER: 'off',
      ...(redisUrl && { REDIS_URL: redisUrl }),
    };
    const targets: Record<Target, { script: string; env: Record<string, string>; health: string }> = {
      base: { script: BASELINE, env: common, health: '/health' },
      fast: { script: MAIN, env: common, health: '/api/health' },
      official: { script: MAIN, env: { ...common, TRPC_TRANSPORT: 'official' }, health: '/api/health' },
      workers: { script: MAIN, env: { ...common, WORKERS: '2' }, health: '/api/health' },
    };
    const used: Target[] = redisUrl ? ['base', 'fast', 'official', 'workers'] : ['base', 'fast', 'official'];
    const ports = Object.fromEntries(await Promise.all(used.map(async (t) => [t, await freePort()] as const)));
    const servers = new Map<Target, ChildProcess>();
    // Each server on one core, but the cluster: its two workers need two.
    const pinned = (t: Target) => SERVER_CPU !== undefined && t !== 'workers';
    for (const t of used) {
      servers.set(t, start(targets[t].script, { ...targets[t].env, PORT: String(ports[t]) }, { pinned: pinned(t) }));
    }
    const origin = (t: Target) => `http://127.0.0.1:${ports[t]}`;
    await Promise.all(used.map((t) => waitUntilUp(`${origin(t)}${targets[t].health}`)));

    const reader = await signIn(origin('fast'), accounts.reader);
    const writer = await signIn(origin('fast'), accounts.writer);
    const fileId = await uploadFile(origin('fast'), reader);
    const listInput = encodeURIComponent(JSON.stringify({ limit: 20 }));
    const json = { 'content-type': 'application/json' };
    const newNote = JSON.stringify({ title: 'Bench note', body: 'Written by pnpm bench.' });

    const allScenarios: Scenario[] = [
      { name: 'raw Fastify: GET /health', target: 'base', is: 'raw /health', path: '/health' },
      {
        name: 'raw Fastify + Kysely: GET /notes (JWT, revocation, query)',
        target: 'base',
        is: 'hand-written GET /notes',
        path: '/notes?limit=20',
        headers: reader,
      },
      {
        name: 'raw Fastify + Kysely: POST /notes (JWT, revocation, insert)',
        target: 'base',
        is: 'hand-written POST /notes',
        method: 'POST',
        path: '/notes',
        headers: { ...writer, ...json },
        body: newNote,
      },
      {
        name: 'tRPC query health.live (fast path)',
        target: 'fast',
        baseline: 'raw /health',
        path: '/trpc/health.live',
      },
      {
        name: 'tRPC query health.live (official adapter)',
        target: 'official',
        baseline: 'raw /health',
        path: '/trpc/health.live',
      },
      {
        name: 'tRPC batch of 3 (fast path)',
        target: 'fast',
        baseline: 'raw /health',
        path: '/trpc/health.live,health.live,health.live?batch=1',
      },
      {
        name: 'tRPC batch of 3 (official adapter)',
        target: 'official',
        baseline: 'raw /health',
        path: '/trpc/health.live,health.live,health.live?batch=1',
      },
      { name: 'REST GET /api/health', target: 'fast', baseline: 'raw /health', path: '/api/health' },
      {
        name: "app's constant JSON route: GET /.well-known/jwks.json",
        target: 'fast',
        baseline: 'raw /health',
        path: '/.well-known/jwks.json',
      },
      {
        name: 'notes.list, signed in (fast path)',
        target: 'fast',
        baseline: 'hand-written GET /notes',
        path: `/trpc/notes.list?input=${listInput}`,
        headers: reader,
      },
      {
        name: 'notes.list, signed in (official adapter)',
        target: 'official',
        baseline: 'hand-written GET /notes',
        path: `/trpc/notes.list?input=${listInput}`,
        headers: reader,
      },
      {
        name: 'REST GET /api/notes, signed in',
        target: 'fast',
        baseline: 'hand-written GET /notes',
        path: '/api/notes?limit=20',
        headers: reader,
      },
      {
        name: 'notes.create, signed in (fast path)',
        target: 'fast',
        baseline: 'hand-written POST /notes',
        method: 'POST',
        path: '/trpc/notes.create',
        headers: { ...writer, ...json },
        body: newNote,
      },
      {
        name: 'REST POST /api/notes, signed in',
        target: 'fast',
        baseline: 'hand-written POST /notes',
        method: 'POST',
        path: '/api/notes',
        headers: { ...writer, ...json },
        body: newNote,
      },
      {
        name: 'REST GET /api/files/:id/content (1 KiB), signed in',
        target: 'fast',
        baseline: 'raw /health',
        path: `/api/files/${fileId}/content`,
        headers: reader,
      },
      {
        name: 'auth.login (argon2id, fast path)',
        target: 'fast',
        baseline: 'raw /health',
        method: 'POST',
        path: '/trpc/auth.login',
        headers: json,
        body: JSON.stringify({ email: accounts.signer, password: PASSWORD }),
        counted: 5,
      },
      ...(redisUrl
        ? ([
            {
              name: 'tRPC query, 2 cluster workers (fast path)',
              target: 'workers',
              baseline: 'raw /health',
              path: '/trpc/health.live',
            },
            {
              name: 'notes.list, 2 cluster workers (fast path)',
              target: 'workers',
              baseline: 'hand-written GET /notes',
              path: `/trpc/notes.list?input=${listInput}`,
              headers: reader,
            },
          ] satisfies Scenario[])
        : []),
    ];
    const scenarios = ONLY === undefined ? allScenarios : chosen(allScenarios, ONLY);
    if (scenarios.length === 0) {
      process.stderr.write(
        `pnpm bench: no scenario's name contains "${ONLY}"; the scenarios:\n${allScenarios.map((s) => `  ${s.name}\n`).join('')}`,
      );
      process.exitCode = 2;
      return;
    }

    keepLoadGeneratorOffServerCpu(true);
    process.stderr.write('Warming up...\n');
    for (const scenario of scenarios) await warmUp(scenario, origin(scenario.target));
    const baselineOf = (scenario: Scenario) =>
      scenarios.find((candidate) => candidate.is === scenario.baseline) as Scenario;
    const measurements = new Map<Scenario, Measurement[]>(scenarios.map((scenario) => [scenario, []]));
    const ratios = new Map<Scenario, { requests: number[]; cpu: number[] }>();
    const load = async (scenario: Scenario) => {
      const measurement = await measure(scenario, origin(scenario.target), servers.get(scenario.target)?.pid);
      measurements.get(scenario)?.push(measurement);
      return measurement;
    };
    for (let round = 1; round <= ROUNDS; round++) {
      process.stderr.write(`Round ${round} of ${ROUNDS} (each scenario between two loads of its baseline)...\n`);
      // The load after a scenario is the load before the next one of the same baseline. Each
      // server's first load of a group follows a warm-up, the baseline's and the scenarios'
      // alike: it sat idle while the other groups ran (firstLoadsOfTheirServers).
      // Each round turns the scenarios of a group (roundOrder), so no scenario always holds one place.
      const order = roundOrder(scenarios, round, ROUNDS);
      const afterIdle = firstLoadsOfTheirServers(order, (scenario) => scenario.target);
      let last: { baseline: Scenario; load: Measurement } | undefined;
      for (const scenario of order) {
        const baseline = baselineOf(scenario);
        const before =
          last?.baseline === baseline
            ? last.load
            : await warmUp(baseline, origin(baseline.target)).then(() => load(baseline));
        if (afterIdle.has(scenario)) await warmUp(scenario, origin(scenario.target));
        const mine = await load(scenario);
        const after = await load(baseline);
        last = { baseline, load: after };
        const { requests, cpu } = bracketedRatios(mine, before, after);
        const paired = ratios.get(scenario) ?? { requests: [], cpu: [] };
        paired.requests.push(requests);
        if (cpu !== undefined) paired.cpu.push(cpu);
        ratios.set(scenario, paired);
      }
    }

    // Then each scenario side by side with its baseline (both servers on the one CPU; the
    // cluster, on two, is left out), in rounds turned the same way.
    const sideBySide = new Map<Scenario, { ratios: number[]; errors: number }>();
    const placeOf = (scenario: Scenario): Place => ({
      origin: origin(scenario.target),
      pid: servers.get(scenario.target)?.pid,
    });
    const besideItsBaseline = scenarios.filter(
      (scenario) => scenario.baseline !== undefined && pinned(scenario.target) && pinned(baselineOf(scenario).target),
    );
    for (let round = 1; round <= ROUNDS && besideItsBaseline.length > 0; round++) {
      process.stderr.write(
        `Side by side, round ${round} of ${ROUNDS} (each scenario loaded with its baseline, one CPU)...\n`,
      );
      for (const scenario of roundOrder(besideItsBaseline, round, ROUNDS)) {
        const baseline = baselineOf(scenario);
        const { ratio, errors } = await measureSideBySide([
          { scenario, at: placeOf(scenario) },
          { scenario: baseline, at: placeOf(baseline) },
        ]);
        const mine = sideBySide.get(scenario) ?? { ratios: [], errors: 0 };
        if (ratio !== undefined) mine.ratios.push(ratio);
        mine.errors += errors;
        sideBySide.set(scenario, mine);
      }
    }
    const results = scenarios.map((scenario) =>
      summarize(
        scenario,
        measurements.get(scenario) ?? [],
        scenario.baseline ? ratios.get(scenario) : undefined,
        sideBySide.get(scenario),
      ),
    );
    keepLoadGeneratorOffServerCpu(false);
    await Promise.all([...servers.values()].map(stop));

    process.stderr.write('Counting backend round trips on quiet servers...\n');
    const counted: RoundTrips[] = [];
    for (const t of used) {
      const mine = scenarios.filter((scenario) => scenario.target === t);
      if (mine.length === 0) continue;
      counted.push(...(await countRoundTrips(targets[t], mine, { database: database.url, redis: redisUrl })));
    }
    counted.sort((a, b) => scenarios.indexOf(a.scenario) - scenarios.indexOf(b.scenario));

    process.stderr.write(`Timing ${STARTS} starts of the app on the migrated database...\n`);
    const nodeStarts = await timeStarts({ file: process.execPath, args: [MAIN], group: false }, common);
    const pnpmStarts = await timeStarts({ file: 'pnpm', args: ['--silent', 'start'], group: true }, common);
    const pnpmLaunches = await timeLaunches('pnpm', ['--silent', 'exec', 'true']);
    // The servers above run without the job worker (JOBS_WORKER=off); a start by default runs it.
    const workerStarts = await timeStarts(
      { file: process.execPath, args: [MAIN], group: false },
      { ...common, JOBS_WORKER: 'embedded' },
    );
    // What a new container would take without the compile cache its image is built with.
    const coldStarts = await timeStarts(
      { file: process.execPath, args: [MAIN], group: false },
      { ...common, NODE_DISABLE_COMPILE_CACHE: '1' },
    );

    const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
    const table = [
      '| scenario | req/s | p50 ms | p99 ms | ratio | CPU µs/req | CPU ratio | side by side | baseline |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
      ...results.map((result) => {
        const { scenario } = result;
        const ratio = result.ratio === undefined ? '–' : `${result.ratio.toFixed(2)}x`;
        const cpu = result.cpuPerRequest === undefined ? '–' : fmt(result.cpuPerRequest);
        const cpuRatio = result.cpuRatio === undefined ? '–' : `${result.cpuRatio.toFixed(2)}x`;
        const sideBySide = result.sideBySide === undefined ? '–' : `${result.sideBySide.toFixed(2)}x`;
        const flag = result.errors ? ` (${result.errors} failed)` : '';
        return `| ${scenario.name}${flag} | ${fmt(result.requestsPerSecond)} | ${result.p50} | ${result.p99} | ${ratio} | ${cpu} | ${cpuRatio} | ${sideBySide} | ${scenario.baseline ?? '–'} |`;
      }),
    ];
    const per = (n: number) => n.toFixed(2);
    const names = (list: readonly (readonly [string, number])[]) =>
      list.map(([name, n]) => (n === 1 ? name : `${name} ×${Number.isInteger(n) ? n : per(n)}`)).join(', ') || '–';
    const tripsTable = [
      '| scenario | SQL statements/req | Redis commands/req | Redis round trips/req | Redis commands |',
      '|---|---:|---:|---:|---|',
      ...counted.map(({ scenario, calls, failed, sql, redis }) => {
        const flag = failed ? ` (${failed} of ${calls} failed)` : '';
        const redisColumns = redis ? [per(redis.commands), per(redis.roundTrips), names(redis.names)] : ['–', '–', '–'];
        return `| ${scenario.name}${flag} | ${per(sql.commands)} | ${redisColumns.join(' | ')} |`;
      }),
    ];
    const startLine = (label: string, starts: { listening: number[]; ready: number[] } | string) =>
      typeof starts === 'string'
        ? `- ${label}: ${starts}`
        : `- ${label}: ready (first 200 of /api/health/ready) in ${fmt(median(starts.ready))} ms` +
          `${starts.listening.length ? `, listening in ${fmt(median(starts.listening))} ms` : ''}` +
          ` (median of ${starts.ready.length}; each: ${starts.ready.map(fmt).join(', ')} ms)`;

    console.log(
      `\nNode ${process.version}, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION} s per scenario (each after ${SETTLE_SECONDS} s of unmeasured load and between two loads of its baseline, the scenarios of one baseline taking turns in their places; medians, ratios the median of the rounds' ratios to the mean of the two; side by side: the CPU ratio with the scenario and its baseline loaded at the same time, their servers on one CPU, the median of ${ROUNDS} more rounds${SERVER_CPU === undefined ? ', not measured: the servers cannot be pinned here' : ''}), ${redisUrl ? 'Redis' : 'memory store'}; server and load generator share the machine.\n`,
    );
    console.log(table.join('\n'));
    console.log(
      `\nBackend round trips per request, counted on quiet servers (${COUNTED_CALLS} sequential calls per scenario; auth.login 5), through counting proxies in front of Postgres${redisUrl ? ' and Redis' : ''}.` +
        ` SQL statements: Query and Execute messages (the job queue's own connections left out). Redis: commands sent, and round trips (a pipeline's commands travel in one).${redisUrl ? '' : ' No REDIS_URL: the memory store, no Redis.'}\n`,
    );
    console.log(tripsTable.join('\n'));
    console.log(
      `\nStart-up on the migrated database (MIGRATE_ON_START=false, ${redisUrl ? 'Redis' : 'memory store'}):`,
    );
    console.log(startLine('node src/main.js', nodeStarts));
    console.log(startLine('pnpm start', pnpmStarts));
    console.log(
      typeof pnpmLaunches === 'string'
        ? `- pnpm's own launch: ${pnpmLaunches}`
        : `- pnpm's own launch, which pnpm start adds (pnpm --silent exec true, spawn to exit): ${fmt(median(pnpmLaunches))} ms (median of ${pnpmLaunches.length}; each: ${pnpmLaunches.map(fmt).join(', ')} ms)`,
    );
    console.log(
      startLine(
        'node src/main.js with the job worker in the process (JOBS_WORKER=embedded, the default)',
        workerStarts,
      ),
    );
    console.log(startLine('node src/main.js without the compile cache (NODE_DISABLE_COMPILE_CACHE=1)', coldStarts));
    const failedScenarios = [
      ...results.filter((result) => result.errors > 0).map((result) => result.scenario.name),
      ...counted.filter((count) => count.failed > 0).map((count) => `${count.scenario.name} (counted calls)`),
    ];
    if (failedScenarios.length > 0) {
      // A load whose requests fail measures errors, not the work: these numbers are not results.
      process.stderr.write(
        `\npnpm bench: requests failed in ${failedScenarios.length} scenario(s), whose numbers measure errors, not the work:\n` +
          failedScenarios.map((name) => `  ${name}\n`).join(''),
      );
      process.exitCode = 1;
    }
  } finally {
    await Promise.all([...children].map(stop));
    await database.cleanup();
    rmSync(filesDir, { recursive: true, force: true });
    if (redisUrl) await deleteKeys(redisUrl, keyPrefix);
  }
}

await main();
