/**
 * `pnpm bench`: starts the app and a plain-Fastify baseline as separate processes, loads
 * each scenario with autocannon and prints req/s, latency and the ratio to the baseline
 * measured in the same run. Options and what it needs: `pnpm bench --help` (USAGE below).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDb, hashPassword, migrateToLatest, repoRoot, startEmbeddedPostgres } from '@app/db';
import autocannon from 'autocannon';
import pg from 'pg';

const USAGE = `Usage: pnpm bench [--duration <seconds>] [--connections <n>]

Starts the app and a plain-Fastify baseline, loads each scenario with autocannon and prints
req/s, latency and the ratio to the baseline measured in the same run.

Options:
  --duration <seconds>   load per scenario, after a warm-up (default 10)
  --connections <n>      concurrent connections (default 50)
  -h, --help             show this help

Uses DATABASE_URL / REDIS_URL when set (a fresh database is created and dropped), else an
embedded Postgres and the in-memory store. See bench/README.md for how to read the results.
`;

/** The options, or the process ends: with the usage (--help) or one line saying what is wrong. */
function readOptions(args: string[]): { duration: number; connections: number } {
  const fail = (message: string): never => {
    process.stderr.write(`pnpm bench: ${message} (see pnpm bench --help)\n`);
    process.exit(2);
  };
  let values: { duration?: string; connections?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: args.filter((arg) => arg !== '--'),
      options: {
        duration: { type: 'string' },
        connections: { type: 'string' },
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
    duration: positive('duration', values.duration, 10, 3600),
    connections: positive('connections', values.connections, 50, 10_000),
  };
}

const { duration: DURATION, connections: CONNECTIONS } = readOptions(process.argv.slice(2));
const here = path.dirname(fileURLToPath(import.meta.url));
const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256!!';
const PASSWORD = 'Bench-pass-123';

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

const children: ChildProcess[] = [];
function start(script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
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

async function seed(url: string): Promise<string> {
  const db = createDb({ url, poolMax: 2 });
  await migrateToLatest(db);
  const email = 'bench@example.com';
  const user = await db
    .insertInto('users')
    .values({ email, password_hash: await hashPassword(PASSWORD), email_verified_at: new Date() })
    .returning('id')
    .executeTakeFirstOrThrow();
  const role = await db.selectFrom('roles').select('id').where('name', '=', 'user').executeTakeFirstOrThrow();
  await db.insertInto('user_roles').values({ user_id: user.id, role_id: role.id }).execute();
  await db
    .insertInto('notes')
    .values(Array.from({ length: 30 }, (_, i) => ({ owner_id: user.id, title: `Note ${i}`, body: 'x'.repeat(200) })))
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
  return email;
}

interface Result {
  name: string;
  requests: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(name: string, options: autocannon.Options): Promise<Result> {
  await autocannon({ ...options, connections: CONNECTIONS, duration: 3 }); // warm-up (JIT, pools): 1 s was too short
  const result = await autocannon({ ...options, connections: CONNECTIONS, duration: DURATION });
  const errors = result.non2xx + result.errors + result.timeouts;
  process.stderr.write(
    `  ${name}: ${Math.round(result.requests.average)} req/s${errors ? ` (${errors} failed!)` : ''}\n`,
  );
  return { name, requests: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors };
}

async function main() {
  process.stderr.write(`Preparing (duration ${DURATION} s per scenario, ${CONNECTIONS} connections)...\n`);
  const database = await prepareDatabase();
  try {
    const email = await seed(database.url);
    const redisUrl = process.env.REDIS_URL;
    const common = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      JWT_SECRET,
      REDIS_KEY_PREFIX: `bench:${process.pid}:`,
      RATE_LIMIT_DEFAULT_PER_MINUTE: '1000000',
      RATE_LIMIT_AUTH_PER_MINUTE: '100000',
      ...(redisUrl && { REDIS_URL: redisUrl }),
    };
    const main = path.join(repoRoot, 'apps', 'server', 'src', 'main.ts');
    const [basePort, fastPort, officialPort, workersPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    start(path.join(here, 'baseline-server.ts'), { ...common, PORT: String(basePort) });
    start(main, { ...common, PORT: String(fastPort) });
    start(main, { ...common, PORT: String(officialPort), TRPC_TRANSPORT: 'official' });
    if (redisUrl) start(main, { ...common, PORT: String(workersPort), WORKERS: '2' });

    const base = `http://127.0.0.1:${basePort}`;
    const fast = `http://127.0.0.1:${fastPort}`;
    const official = `http://127.0.0.1:${officialPort}`;
    const workers = `http://127.0.0.1:${workersPort}`;
    await Promise.all([
      waitUntilUp(`${base}/health`),
      waitUntilUp(`${fast}/api/health`),
      waitUntilUp(`${official}/api/health`),
    ]);
    if (redisUrl) await waitUntilUp(`${workers}/api/health`);

    const login = await fetch(`${fast}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    const { accessToken } = (await login.json()) as { accessToken: string };
    const authorization = { authorization: `Bearer ${accessToken}` };
    const listInput = encodeURIComponent(JSON.stringify({ limit: 20 }));

    process.stderr.write('Loading...\n');
    const rows: { result: Result; baseline: string }[] = [];
    const raw = await load('raw Fastify: GET /health', { url: `${base}/health` });
    const handNotes = await load('raw Fastify + Kysely: GET /notes (JWT, revocation, query)', {
      url: `${base}/notes?limit=20`,
      headers: authorization,
    });
    const add = async (name: string, baseline: 'raw' | 'notes', options: autocannon.Options) =>
      rows.push({ result: await load(name, options), baseline });
    await add('tRPC query health.live (fast path)', 'raw', { url: `${fast}/trpc/health.live` });
    await add('tRPC query health.live (official adapter)', 'raw', { url: `${official}/trpc/health.live` });
    await add('tRPC batch of 3 (fast path)', 'raw', {
      url: `${fast}/trpc/health.live,health.live,health.live?batch=1`,
    });
    await add('tRPC batch of 3 (official adapter)', 'raw', {
      url: `${official}/trpc/health.live,health.live,health.live?batch=1`,
    });
    await add('REST GET /api/health', 'raw', { url: `${fast}/api/health` });
    await add('notes.list, signed in (fast path)', 'notes', {
      url: `${fast}/trpc/notes.list?input=${listInput}`,
      headers: authorization,
    });
    await add('notes.list, signed in (official adapter)', 'notes', {
      url: `${official}/trpc/notes.list?input=${listInput}`,
      headers: authorization,
    });
    await add('REST GET /api/notes, signed in', 'notes', { url: `${fast}/api/notes?limit=20`, headers: authorization });
    await add('auth.login (argon2id, fast path)', 'raw', {
      url: `${fast}/trpc/auth.login`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    if (redisUrl) {
      await add('tRPC query, 2 cluster workers (fast path)', 'raw', { url: `${workers}/trpc/health.live` });
      await add('notes.list, 2 cluster workers (fast path)', 'notes', {
        url: `${workers}/trpc/notes.list?input=${listInput}`,
        headers: authorization,
      });
    }

    const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
    const table = [
      '| scenario | req/s | p50 ms | p99 ms | ratio | baseline |',
      '|---|---:|---:|---:|---:|---|',
      `| ${raw.name} | ${fmt(raw.requests)} | ${raw.p50} | ${raw.p99} | 1.00x | – |`,
      `| ${handNotes.name} | ${fmt(handNotes.requests)} | ${handNotes.p50} | ${handNotes.p99} | 1.00x | – |`,
      ...rows.map(({ result, baseline }) => {
        const against = baseline === 'raw' ? raw : handNotes;
        const ratio = (result.requests / against.requests).toFixed(2);
        const flag = result.errors ? ` (${result.errors} failed)` : '';
        return `| ${result.name}${flag} | ${fmt(result.requests)} | ${result.p50} | ${result.p99} | ${ratio}x | ${baseline === 'raw' ? 'raw /health' : 'hand-written /notes'} |`;
      }),
    ];
    console.log(
      `\nNode ${process.version}, ${CONNECTIONS} connections, ${DURATION} s per scenario, ${redisUrl ? 'Redis' : 'memory store'}; server and load generator share the machine.\n`,
    );
    console.log(table.join('\n'));
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await sleep(500);
    await database.cleanup();
  }
}

await main();
