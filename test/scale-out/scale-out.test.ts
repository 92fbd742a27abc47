/**
 * Three servers behind HAProxy, Postgres through PgBouncer (transaction mode), one Redis,
 * two workers: the stateless design holds when hosts die. Prints its figures; fails on any
 * loss. Needs Debian's haproxy, pgbouncer and redis-server: skipped without them, except
 * under CI (CI=true), where their absence fails.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, missingTools, sleep, startCluster, until } from './src/cluster.ts';

const missing = missingTools();
const required = process.env.CI === 'true';
if (missing.length > 0 && !required) {
  console.log(
    `scale-out: skipped, ${missing.join(', ')} not installed (apt-get install haproxy pgbouncer redis-server)`,
  );
}

const PASSWORD = 'Scale-out-pass-42';
const run = randomBytes(3).toString('hex');
let clientIp = 0;
/** A distinct client address per sign-in flow, so the per-IP limits measure what each test means. */
const nextClientIp = () => {
  clientIp += 1;
  return `198.51.${100 + Math.floor(clientIp / 250)}.${(clientIp % 250) + 1}`;
};

interface Answer {
  status: number;
  servedBy: string | null;
  body: Record<string, unknown>;
}

async function call(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; ip?: string } = {},
): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(options.body !== undefined && { 'content-type': 'application/json' }),
      ...(options.token && { authorization: `Bearer ${options.token}` }),
      ...(options.ip && { 'x-forwarded-for': options.ip }),
    },
    ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { text };
  }
  return { status: response.status, servedBy: response.headers.get('x-served-by'), body };
}

describe.skipIf(missing.length > 0 && !required)('several hosts behind a load balancer', () => {
  let cluster: Cluster;
  let failed = false;

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(`${missing.join(', ')} missing: apt-get install -y haproxy pgbouncer redis-server`);
    cluster = await startCluster({
      hosts: 3,
      workers: 2,
      env: {
        RATE_LIMIT_DEFAULT_PER_MINUTE: '1000000',
        RATE_LIMIT_AUTH_PER_MINUTE: '10',
        // One job at a time per worker, and heartbeats checked every second: a killed
        // worker's job goes to the other one within seconds.
        JOBS_CONCURRENCY: '1',
        JOBS_SUPERVISE_INTERVAL: '1',
        JOBS_POLL_INTERVAL: '1',
      },
      log: (line) => console.log(`scale-out: ${line}`),
    });
  }, 120_000);

  afterAll(async () => {
    if (failed && cluster) console.log(cluster.outputs());
    await cluster?.stop();
  }, 60_000);

  const track = (test: () => Promise<void>) => async () => {
    try {
      await test();
    } catch (error) {
      failed = true;
      throw error;
    }
  };

  async function signUp(): Promise<{ email: string; token: string; refreshToken: string; id: string }> {
    const email = `so-${run}-${randomBytes(4).toString('hex')}@example.com`;
    const answer = await call(cluster.proxyUrl, 'POST', '/api/auth/register', {
      body: { email, password: PASSWORD },
      ip: nextClientIp(),
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const user = answer.body.user as { id: string };
    return {
      email,
      id: user.id,
      token: answer.body.accessToken as string,
      refreshToken: answer.body.refreshToken as string,
    };
  }

  it(
    'kill -9 of one host under load: no acknowledged write lost, none applied twice, no failure but writes in flight there',
    track(async () => {
      const accounts = await Promise.all(Array.from({ length: 6 }, () => signUp()));
      const victim = cluster.hosts[1];
      if (!victim) throw new Error('no second host');
      interface Sent {
        method: string;
        startedAt: number;
        endedAt: number;
        status: number;
        servedBy: string | null;
        title?: string;
        error?: string;
      }
      const sent: Sent[] = [];
      let stopAt = Number.POSITIVE_INFINITY;
      const loop = async (worker: number) => {
        const account = accounts[worker % accounts.length] as (typeof accounts)[number];
        for (let i = 0; Date.now() < stopAt; i++) {
          const write = i % 3 === 2;
          const title = write ? `w-${run}-${worker}-${i}` : undefined;
          const startedAt = Date.now();
          try {
            const answer = write
              ? await call(cluster.proxyUrl, 'POST', '/api/notes', { token: account.token, body: { title } })
              : await call(cluster.proxyUrl, 'GET', '/api/notes?limit=10', { token: account.token });
            sent.push({
              method: write ? 'POST' : 'GET',
              startedAt,
              endedAt: Date.now(),
              status: answer.status,
              servedBy: answer.servedBy,
              ...(title && { title }),
            });
          } catch (error) {
            sent.push({
              method: write ? 'POST' : 'GET',
              startedAt,
              endedAt: Date.now(),
              status: 0,
              servedBy: null,
              ...(title && { title }),
              error: String((error as { cause?: unknown }).cause ?? error),
            });
          }
        }
      };
      const loadStartedAt = Date.now();
      const load = Promise.all(Array.from({ length: 12 }, (_, worker) => loop(worker)));
      await sleep(1_500);
      const killedAt = Date.now();
      await victim.server.kill('SIGKILL');
      const diedAt = Date.now();
      const down = await until(
        async () => (await cluster.hostStates())[victim.name]?.startsWith('DOWN') && Date.now(),
        'HAProxy to mark the killed host down',
      );
      await sleep(500);
      const restartAt = Date.now();
      await victim.start();
      const up = await until(
        async () => (await cluster.hostStates())[victim.name] === 'UP' && Date.now(),
        'HAProxy to take the restarted host back',
      );
      stopAt = Math.max(loadStartedAt + 6_000, up + 2_000);
      await load;

      const acknowledged = sent.filter((request) => request.title && request.status >= 200 && request.status < 300);
      const titles = sent.flatMap((request) => (request.title ? [request.title] : []));
      const stored = await cluster.sql.query<{ title: string; copies: number }>(
        'select title, count(*)::int as copies from notes where title = any($1) group by title',
        [titles],
      );
      const copies = new Map(stored.rows.map((row) => [row.title, row.copies]));
      const lost = acknowledged.filter((request) => !copies.has(request.title as string));
      const duplicated = stored.rows.filter((row) => row.copies > 1);
      // A write whose answer died with the host: HAProxy answers 502, or closes the client's
      // connection without an answer (as the host did), and never sends it again elsewhere.
      const failures = sent.filter((request) => request.status === 0 || request.status >= 500);
      const inFlightOnVictim = (request: Sent) =>
        request.method === 'POST' &&
        (request.servedBy === null || request.servedBy === victim.name) &&
        request.startedAt <= diedAt &&
        request.endedAt >= killedAt;
      const unexplained = failures.filter((request) => !inFlightOnVictim(request));
      const otherStatuses = sent.filter((request) => request.status >= 300 && request.status < 500);
      const afterRestart = sent.filter((request) => request.servedBy === victim.name && request.startedAt >= up);
      const byHost = (requests: Sent[]) =>
        Object.fromEntries(
          cluster.hosts.map((host) => [host.name, requests.filter((request) => request.servedBy === host.name).length]),
        );
      const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

      console.log(
        [
          'scale-out: kill -9 of one host under load',
          `  requests: ${sent.length} in ${seconds(Date.now() - loadStartedAt)} (${sent.filter((r) => r.method === 'GET').length} signed-in reads, ${titles.length} writes)`,
          `  served by host: ${JSON.stringify(byHost(sent))}`,
          `  ${victim.name} killed at +${seconds(killedAt - loadStartedAt)}; HAProxy marked it down after ${seconds(down - killedAt)}; restarted at +${seconds(restartAt - loadStartedAt)}, back in rotation after ${seconds(up - restartAt)}, then served ${afterRestart.length}`,
          `  writes acknowledged: ${acknowledged.length}, stored: ${copies.size}, lost: ${lost.length}, applied twice: ${duplicated.length}`,
          `  failed: ${failures.length} (${failures.filter((r) => r.status >= 500).length} 5xx, ${failures.filter((r) => r.status === 0).length} closed unanswered), all POSTs in flight on ${victim.name} when it died but ${unexplained.length}`,
          `  of those writes, applied before the host died: ${failures.filter((r) => r.title && copies.has(r.title)).length}; signed-in reads failed: ${failures.filter((r) => r.method === 'GET').length}`,
          `  3xx/4xx: ${otherStatuses.length}`,
        ].join('\n'),
      );
      expect(lost).toEqual([]);
      expect(duplicated).toEqual([]);
      expect(unexplained).toEqual([]);
      expect(otherStatuses).toEqual([]);
      expect(afterRestart.length).toBeGreaterThan(0);
    }),
    90_000,
  );

  it(
    'a logout through one host is refused by every host on the very next request',
    track(async () => {
      const account = await signUp();
      const [first, second, third] = cluster.hosts as [Cluster['hosts'][0], Cluster['hosts'][0], Cluster['hosts'][0]];
      for (const host of cluster.hosts) {
        expect((await call(host.url, 'GET', '/api/users/me', { token: account.token })).status).toBe(200);
      }
      expect((await call(first.url, 'POST', '/api/auth/logout', { token: account.token })).status).toBe(200);
      for (const host of [second, third]) {
        const refused = await call(host.url, 'GET', '/api/users/me', { token: account.token });
        expect(refused.status).toBe(401);
        expect(refused.body.appCode).toBe('SESSION_REVOKED');
      }
      const refresh = await call(third.url, 'POST', '/api/auth/refresh', {
        body: { refreshToken: account.refreshToken },
      });
      expect(refresh.status).toBe(401);
      console.log('scale-out: logout on host1, refused at once on host2 and host3 (and its refresh token on host3)');
    }),
  );

  it(
    'counts rate limits across hosts: the 11th failed sign-in of one address is refused by every host',
    track(async () => {
      const ip = nextClientIp();
      const servedBy = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const answer = await call(cluster.proxyUrl, 'POST', '/api/auth/login', {
          body: { email: `nobody-${run}-${i}@example.com`, password: 'Wrong-pass-42' },
          ip,
        });
        expect(answer.status).toBe(401);
        if (answer.servedBy) servedBy.add(answer.servedBy);
      }
      expect(servedBy.size).toBe(cluster.hosts.length);
      for (const host of cluster.hosts) {
        const refused = await call(host.url, 'POST', '/api/auth/login', {
          body: { email: `nobody-${run}@example.com`, password: 'Wrong-pass-42' },
          ip,
        });
        expect(refused.status, host.name).toBe(429);
      }
      console.log(
        `scale-out: 10 failed sign-ins spread over ${servedBy.size} hosts, the 11th refused (429) by each host`,
      );
    }),
  );

  /** The code in the newest one-time-code email sent to `email` (the workers send it). */
  async function codeSentTo(email: string, after: number): Promise<string> {
    return until(async () => {
      const emails = cluster.resend.delivered.slice(after).filter((sent) => sent.body.to === email);
      const text = String(emails.at(-1)?.body.text ?? '');
      return text.match(/\b(\d{6})\b/)?.[1];
    }, `the code sent to ${email}`);
  }

  it(
    'counts one-time-code attempts across hosts: five wrong tries on three hosts burn the code',
    track(async () => {
      const tryCode = (host: number, email: string, code: string, ip: string) =>
        call((cluster.hosts[host % cluster.hosts.length] as Cluster['hosts'][0]).url, 'POST', '/api/auth/otp/verify', {
          body: { email, code },
          ip,
        });
      const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

      const burnt = `otp-${run}-burnt@example.com`;
      const ip = nextClientIp();
      const before = cluster.resend.delivered.length;
      expect(
        (await call(cluster.proxyUrl, 'POST', '/api/auth/otp/request', { body: { email: burnt }, ip })).status,
      ).toBe(200);
      const code = await codeSentTo(burnt, before);
      for (let i = 0; i < 5; i++) expect((await tryCode(i, burnt, wrong(code), ip)).body.appCode).toBe('INVALID_CODE');
      const refused = await tryCode(5, burnt, code, ip);
      expect(refused.body.appCode).toBe('INVALID_CODE');

      // The same with four wrong tries: the right code still works, on yet another host.
      const kept = `otp-${run}-kept@example.com`;
      const ip2 = nextClientIp();
      const before2 = cluster.resend.delivered.length;
      expect(
        (await call(cluster.proxyUrl, 'POST', '/api/auth/otp/request', { body: { email: kept }, ip: ip2 })).status,
      ).toBe(200);
      const code2 = await codeSentTo(kept, before2);
      for (let i = 0; i < 4; i++) expect((await tryCode(i, kept, wrong(code2), ip2)).body.appCode).toBe('INVALID_CODE');
      expect((await tryCode(4, kept, code2, ip2)).status).toBe(200);
      console.log('scale-out: 5 wrong codes over 3 hosts burn the code; after 4 the right one still signs in');
    }),
  );

  it(
    'a job queued through the hosts is processed exactly once while a worker is killed -9 mid-send',
    track(async () => {
      // Each send takes 1.5 s; worker1 is killed while one of its own is in progress (the
      // stand-in tells the workers' sends apart by their base URL).
      cluster.resend.setDelay(1_500);
      try {
        const accounts = await Promise.all(Array.from({ length: 8 }, () => signUp()));
        // (Not any send of worker1's: an earlier test's welcome email may still be going out.)
        const signedUp = new Set(accounts.map((account) => account.email));
        await until(
          async () =>
            cluster.resend.sending().some((sent) => sent.sender === 'worker1' && signedUp.has(String(sent.body.to))),
          'worker1 to be in the middle of a sign-up email',
        );
        const victim = cluster.workers[0];
        if (!victim) throw new Error('no worker');
        const killedAt = Date.now();
        await victim.kill('SIGKILL');
        const deliveredTo = (email: string) => cluster.resend.delivered.filter((sent) => sent.body.to === email);
        await until(
          async () => accounts.every((account) => deliveredTo(account.email).length > 0),
          'every verification email to be delivered',
          90_000,
        );
        const jobs = await until(async () => {
          const result = await cluster.sql.query<{ state: string; retry_count: number }>(
            "select state, retry_count from pgboss.job where name = 'email' and data->>'userId' = any($1)",
            [accounts.map((account) => account.id)],
          );
          return result.rows.every((row) => row.state === 'completed') && result.rows;
        }, 'the email jobs to complete');
        const tries = cluster.resend.received.filter((sent) => accounts.some((a) => a.email === sent.body.to));
        console.log(
          [
            `scale-out: ${accounts.length} sign-ups, worker1 killed -9 mid-send; every email delivered after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`,
            `  jobs: ${jobs.length}, completed: ${jobs.filter((job) => job.state === 'completed').length}, retried after the kill: ${jobs.filter((job) => job.retry_count > 0).length}`,
            `  sends tried: ${tries.length}, delivered: ${accounts.map((a) => deliveredTo(a.email).length).reduce((x, y) => x + y, 0)} (one per account)`,
          ].join('\n'),
        );
        expect(jobs).toHaveLength(accounts.length);
        // The send worker1 died in was tried again by worker2, under the same idempotency key.
        expect(jobs.some((job) => job.retry_count > 0)).toBe(true);
        expect(tries.some((sent) => sent.sender === 'worker1')).toBe(true);
        expect(tries.length).toBeGreaterThan(accounts.length);
        for (const account of accounts) expect(deliveredTo(account.email), account.email).toHaveLength(1);
      } finally {
        cluster.resend.setDelay(0);
      }
      const worker = cluster.workers[0];
      if (worker) await cluster.startWorker(worker);
    }),
    150_000,
  );

  it(
    'prepared statements behind a PgBouncer that cannot keep them: the processes stopped them and said so, with every call above answered',
    track(async () => {
      // The tests above fail on any call that failed; here, that the fallback is what they went through.
      const said =
        /prepared statements stopped: prepared statement \\"app_[0-9a-f]{32}(_\d+)?\\" (does not exist|already exists)/;
      const saying = cluster.processes().filter((managed) => said.test(managed.output));
      expect(saying.length).toBeGreaterThan(0);
    }),
  );
});
