/**
 * `pnpm --filter @app/scale-out throughput`: the benchmark's signed-in read (GET /api/notes)
 * on one host straight, then through HAProxy and PgBouncer with 1, 2 and 3 hosts. Prints
 * req/s, the ratio to the single host, and CPU time per request (servers; and everything:
 * servers, HAProxy, PgBouncer, Redis — Postgres and the load generator excluded).
 * Options: --duration <s> (default 10), --connections <n> (default 50).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { type Cluster, missingTools, startCluster } from './cluster.ts';

const { values } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' } },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
if (!(duration > 0 && connections > 0)) {
  console.error('--duration and --connections take positive numbers');
  process.exit(2);
}
const missing = missingTools();
if (missing.length > 0) {
  console.error(`${missing.join(', ')} not installed: apt-get install -y haproxy pgbouncer redis-server`);
  process.exit(1);
}

/** User plus system CPU time of a process so far, in ms (Linux). */
function cpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

interface Row {
  setup: string;
  rps: number;
  serverCpu: number;
  totalCpu: number;
  failed: number;
}

async function measure(cluster: Cluster, setup: string, url: string, token: string): Promise<Row> {
  const options = {
    url: `${url}/api/notes?limit=10`,
    headers: { authorization: `Bearer ${token}` },
    connections,
  };
  await autocannon({ ...options, duration: 3 }); // warm-up: JIT, pools
  const serverPids = cluster.hosts.map((host) => host.server.process?.pid);
  const allPids = cluster.processes().map((managed) => managed.process?.pid);
  const sum = (pids: Array<number | undefined>): number => pids.reduce<number>((total, pid) => total + cpuMs(pid), 0);
  const serversBefore = sum(serverPids);
  const allBefore = sum(allPids);
  const result = await autocannon({ ...options, duration });
  const requests = result.requests.total;
  const row = {
    setup,
    rps: result.requests.average,
    serverCpu: (sum(serverPids) - serversBefore) / requests,
    totalCpu: (sum(allPids) - allBefore) / requests,
    failed: result.non2xx + result.errors + result.timeouts,
  };
  console.error(`  ${setup}: ${Math.round(row.rps)} req/s${row.failed ? ` (${row.failed} failed!)` : ''}`);
  return row;
}

async function signedIn(cluster: Cluster): Promise<string> {
  const post = async (path: string, body: unknown, token?: string) => {
    const response = await fetch(`${cluster.proxyUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  };
  const { accessToken } = await post('/api/auth/register', {
    email: `throughput-${process.pid}@example.com`,
    password: 'Throughput-pass-42',
  });
  for (let i = 0; i < 30; i++)
    await post('/api/notes', { title: `Note ${i}`, body: 'x'.repeat(200) }, accessToken as string);
  return accessToken as string;
}

const rows: Row[] = [];
console.error(`Signed-in read, ${duration} s per setup, ${connections} connections`);
for (const hosts of [1, 2, 3]) {
  const cluster = await startCluster({
    hosts,
    workers: 0,
    // An access token lives 15 minutes by default: long enough for every setup.
    env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '1000000', RATE_LIMIT_AUTH_PER_MINUTE: '100000' },
  });
  try {
    const token = await signedIn(cluster);
    if (hosts === 1)
      rows.push(await measure(cluster, '1 host, straight (no HAProxy)', cluster.hosts[0]?.url as string, token));
    rows.push(await measure(cluster, `${hosts} host${hosts > 1 ? 's' : ''} behind HAProxy`, cluster.proxyUrl, token));
  } finally {
    await cluster.stop();
  }
}

const base = rows[0]?.rps ?? 1;
console.log('| Setup | req/s | vs 1 host straight | server CPU ms/req | all CPU ms/req |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const row of rows) {
  console.log(
    `| ${row.setup} | ${Math.round(row.rps)} | ${(row.rps / base).toFixed(2)}x | ${row.serverCpu.toFixed(3)} | ${row.totalCpu.toFixed(3)} |`,
  );
}
console.log(
  `\nPostgres and the load generator (autocannon, in this process) share the same cores; ${connections} connections, ${duration} s per setup.`,
);
if (rows.some((row) => row.failed > 0)) process.exit(1);
