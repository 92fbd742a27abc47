/**
 * Several hosts on one machine, from real parts: N server processes on their own loopback
 * addresses (127.0.0.2, 127.0.0.3, …) behind HAProxy, Postgres reached through PgBouncer in
 * transaction mode, one Redis of its own, worker processes, and a local stand-in for Resend.
 * Migrations bypass PgBouncer (they are run straight against Postgres, as in production).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startFakeResend } from '../../../apps/server/test/helpers/fake-resend.ts';
import { until } from '../../../apps/server/test/helpers/until.ts';

export { until };

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const serverMain = path.join(repoRoot, 'apps/server/src/main.js');
const workerMain = path.join(repoRoot, 'apps/server/src/worker.ts');
const dbCli = path.join(repoRoot, 'packages/db/src/cli.ts');

/** The Debian packages this needs; a missing one is named with how to get it. */
export function missingTools(): string[] {
  const tools = ['haproxy', 'pgbouncer', 'redis-server'];
  return tools.filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore', env: { PATH: searchPath() } });
      return false;
    } catch {
      return true;
    }
  });
}

/** Whether the installed PgBouncer has `max_prepared_statements` (1.21 and later). */
function pgbouncerKnowsPreparedStatements(): boolean {
  const version = execFileSync('pgbouncer', ['--version'], { encoding: 'utf8', env: { PATH: searchPath() } });
  const [major = 0, minor = 0] = (/PgBouncer (\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
  return major > 1 || (major === 1 && minor >= 21);
}

/** PATH plus the sbin folders, where Debian puts haproxy and pgbouncer. */
function searchPath(): string {
  return [process.env.PATH, '/usr/sbin', '/sbin', '/usr/local/sbin'].filter(Boolean).join(':');
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A child process whose output is kept (shown when something fails) and which can be killed and started again. */
export class Managed {
  process: ChildProcess | undefined;
  output = '';
  readonly name: string;
  private readonly command: string;
  private readonly args: string[];
  private readonly env: Record<string, string>;
  constructor(name: string, command: string, args: string[], env: Record<string, string>) {
    this.name = name;
    this.command = command;
    this.args = args;
    this.env = env;
  }

  start(): this {
    const child = spawn(this.command, this.args, {
      env: { PATH: searchPath(), ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.process = child;
    return this;
  }

  /** Resolves when `check` holds; rejects with the output if the process exits first. */
  async readyWhen(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const child = this.process;
    if (!child) throw new Error(`${this.name} was not started`);
    let onExit: (() => void) | undefined;
    const exited = new Promise<never>((_, reject) => {
      onExit = () => reject(new Error(`${this.name} exited before it was ready:\n${this.output}`));
      child.once('exit', onExit);
    });
    try {
      await Promise.race([until(check, `${this.name} to be ready`, timeoutMs), exited]);
    } finally {
      if (onExit) child.off('exit', onExit);
    }
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** kill -9: no shutdown, no goodbye to anyone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.process;
    if (!child || !this.running) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.process;
    if (!child || !this.running) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

export interface Host {
  name: string;
  /** http://127.0.0.N:port, to reach this host without the load balancer. */
  url: string;
  server: Managed;
  /** Starts it (again) and waits until it is ready. */
  start(): Promise<void>;
}

export interface ClusterOptions {
  hosts: number;
  workers: number;
  /** Extra server and worker environment. */
  env?: Record<string, string>;
  /** Each server's pool (DATABASE_POOL_MAX). */
  poolMax?: number;
  /** PgBouncer's server connections for the database. */
  poolerSize?: number;
  log?: (line: string) => void;
}

export type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** Starts everything and waits until HAProxy sees every host up. */
export async function startCluster(options: ClusterOptions) {
  const log = options.log ?? (() => undefined);
  const dir = mkdtempSync(path.join(tmpdir(), 'scale-out-'));
  // PgBouncer refuses to run as root: it switches to `postgres`, which must read its files.
  chmodSync(dir, 0o755);
  const processes: Managed[] = [];
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const managed of processes.reverse()) await managed.kill().catch(() => undefined);
    for (const cleanup of cleanups.reverse()) await cleanup();
  };

  try {
    const adminUrl = process.env.SCALE_OUT_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const database = `scale_out_${process.pid}_${randomBytes(3).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await client.end();
    });
    const admins = new URL(adminUrl);
    const directUrl = Object.assign(new URL(adminUrl), { pathname: `/${database}` }).toString();

    log('migrating (straight to Postgres, not through PgBouncer)');
    execFileSync(process.execPath, [dbCli, 'migrate'], {
      env: { PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: directUrl },
      stdio: 'pipe',
    });

    const redisPort = await freePort();
    const redis = new Managed(
      'redis',
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {},
    ).start();
    processes.push(redis);

    const poolerPort = await freePort();
    const user = decodeURIComponent(admins.username || 'postgres');
    writeFileSync(path.join(dir, 'userlist.txt'), `"${user}" ""\n`);
    writeFileSync(
      path.join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `app = host=${admins.hostname} port=${admins.port || 5432} dbname=${database} user=${user}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${poolerPort}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${path.join(dir, 'userlist.txt')}`,
        'pool_mode = transaction',
        `default_pool_size = ${options.poolerSize ?? 20}`,
        'max_client_conn = 1000',
        // node-postgres sends these at connect; PgBouncer cannot pass them on per transaction.
        'ignore_startup_parameters = extra_float_digits,statement_timeout,options',
        // No prepared statements carried across server connections, as before 1.21 (which
        // refuses the setting): the servers keep preparing theirs and must fall back.
        ...(pgbouncerKnowsPreparedStatements() ? ['max_prepared_statements = 0'] : []),
        '',
      ].join('\n'),
    );
    for (const file of ['userlist.txt', 'pgbouncer.ini']) chmodSync(path.join(dir, file), 0o644);
    const asRoot = process.getuid?.() === 0;
    const pooler = new Managed(
      'pgbouncer',
      'pgbouncer',
      [...(asRoot ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')],
      {},
    ).start();
    processes.push(pooler);
    const pooledUrl = `postgres://${encodeURIComponent(user)}@127.0.0.1:${poolerPort}/app`;

    const resend = await startFakeResend();
    cleanups.push(() => resend.close());

    const env: Record<string, string> = {
      NODE_ENV: 'production',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'warn',
      DATABASE_URL: pooledUrl,
      DATABASE_POOL_MAX: String(options.poolMax ?? 10),
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      JWT_SECRET: randomBytes(48).toString('base64'),
      MAIL_TRANSPORT: 'resend',
      RESEND_API_KEY: 're_scale_out',
      RESEND_BASE_URL: resend.url,
      EMAIL_FROM: 'Scale out <no-reply@example.com>',
      PUBLIC_URL: 'https://app.example.com',
      FILES_DIR: path.join(dir, 'files'),
      // HAProxy, on 127.0.0.1, appends the client's address to X-Forwarded-For.
      TRUST_PROXY: '127.0.0.1',
      JOBS_WORKER: 'off',
      JOBS_POOL_MAX: '4',
      MIGRATE_ON_START: 'false',
      ...options.env,
    };

    const hosts: Host[] = [];
    for (let i = 0; i < options.hosts; i++) {
      const address = `127.0.0.${i + 2}`;
      const port = await freePort(address);
      const name = `host${i + 1}`;
      const server = new Managed(name, process.execPath, [serverMain], { ...env, HOST: address, PORT: String(port) });
      processes.push(server);
      const url = `http://${address}:${port}`;
      hosts.push({
        name,
        url,
        server,
        async start() {
          await server.start().readyWhen(async () => (await fetch(`${url}/api/health/ready`)).ok);
        },
      });
    }
    await until(async () => {
      const client = new pg.Client({ connectionString: pooledUrl });
      await client.connect();
      await client.end();
      return true;
    }, 'PgBouncer');
    await Promise.all(hosts.map((host) => host.start()));
    log(`${hosts.length} servers ready on ${hosts.map((host) => host.url).join(', ')}`);

    const workers = Array.from(
      { length: options.workers },
      (_, i) =>
        new Managed(`worker${i + 1}`, process.execPath, [workerMain], {
          ...env,
          // The stand-in for Resend tells the workers' sends apart by this path.
          RESEND_BASE_URL: `${resend.url}/worker${i + 1}`,
          JOBS_WORKER: 'embedded',
          // Its "worker ready" line is at info.
          LOG_LEVEL: 'info',
          ...options.env,
        }),
    );
    const startWorker = async (worker: Managed) => {
      await worker.start().readyWhen(async () => worker.output.includes('worker ready'));
    };
    for (const worker of workers) {
      processes.push(worker);
      await startWorker(worker);
    }

    const proxyPort = await freePort();
    const statsPort = await freePort();
    writeFileSync(path.join(dir, 'haproxy.cfg'), haproxyConfig({ proxyPort, statsPort, hosts }));
    const proxy = new Managed('haproxy', 'haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], {}).start();
    processes.push(proxy);
    const proxyUrl = `http://127.0.0.1:${proxyPort}`;
    /** Each host's state as HAProxy's health checks see it (UP, DOWN, …). */
    const hostStates = async (): Promise<Record<string, string>> => {
      const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
      const states: Record<string, string> = {};
      for (const line of csv.split('\n')) {
        const [backend, server, ...fields] = line.split(',');
        if (backend === 'app' && server?.startsWith('host')) states[server] = fields[15] ?? '';
      }
      return states;
    };
    await until(
      async () => Object.values(await hostStates()).filter((state) => state === 'UP').length === hosts.length,
      'HAProxy to see every host up',
    );
    log(`HAProxy on ${proxyUrl}, PgBouncer on 127.0.0.1:${poolerPort} (transaction mode), Redis on ${redisPort}`);

    const sql = new pg.Pool({ connectionString: directUrl, max: 2 });
    // pg's pool resolves end() before its connections have closed: the database's DROP (WITH
    // FORCE) then ends one from the server's side, an 'error' event with no listener left on
    // the client, which would fail the run. A query's own failure still rejects its promise.
    sql.on('connect', (client) => client.on('error', () => undefined));
    cleanups.push(() => sql.end());

    return {
      proxyUrl,
      hosts,
      workers,
      startWorker,
      resend,
      /** Straight to Postgres (not through the pooler): for the test's own checks. */
      sql,
      hostStates,
      /** Every process of the cluster (servers, workers, HAProxy, PgBouncer, Redis). */
      processes: () => [...processes],
      /** The output of every process, for a failure's report. */
      outputs: () => processes.map((managed) => `--- ${managed.name}\n${managed.output.slice(-3_000)}`).join('\n'),
      stop,
    };
  } catch (error) {
    const outputs = processes.map((managed) => `--- ${managed.name}\n${managed.output.slice(-3_000)}`).join('\n');
    await stop();
    throw new Error(`the cluster did not start: ${error instanceof Error ? error.message : String(error)}\n${outputs}`);
  }
}

/**
 * Round robin over the hosts; a host is taken out after 2 failed checks of /api/health/ready
 * 300 ms apart and back after 2 good ones. A request whose connection fails, or (for an
 * idempotent one) whose answer never comes, is tried again on another host; a POST already
 * sent is never sent twice (HAProxy's L7 retries would resend it: a write applied twice,
 * which this test caught before `disable-l7-retry`). Each answer names the host that gave it (X-Served-By).
 */
function haproxyConfig(input: { proxyPort: number; statsPort: number; hosts: Host[] }): string {
  return [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-request 10s',
    '  timeout http-keep-alive 10s',
    '  retries 3',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response response-timeout',
    '  option forwardfor',
    'frontend stats',
    `  bind 127.0.0.1:${input.statsPort}`,
    '  stats enable',
    '  stats uri /stats',
    'frontend public',
    `  bind 127.0.0.1:${input.proxyPort}`,
    '  default_backend app',
    // L7 retries resend a request whose answer never came: only reads may be sent twice.
    '  http-request disable-l7-retry unless METH_GET',
    'backend app',
    '  balance roundrobin',
    '  option httpchk GET /api/health/ready',
    '  http-check expect status 200',
    '  default-server inter 300ms fall 2 rise 2',
    '  http-after-response set-header X-Served-By %[srv_name]',
    ...input.hosts.map((host) => `  server ${host.name} ${new URL(host.url).host} check`),
    '',
  ].join('\n');
}
