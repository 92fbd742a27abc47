/**
 * Trust under faults, with real parts: a Redis of the test's own that is flushed,
 * restarted, filled or frozen; the machine's Postgres behind a TCP proxy the test cuts.
 * Revoked sessions stay revoked, outages are 503 DEPENDENCY_DOWN (never a 500 or a hang),
 * and rate limits hold while Redis is away.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createDb, PASSWORD_HASH_OPTIONS } from '@app/db';
import { createTestDatabase } from '@app/db/testing';
import { hash } from '@node-rs/argon2';
import { type KyselyPlugin, QueryNode, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, RedisStore } from '../src/infra/kv/index.ts';
import { checkPassword, passwordHashingLine } from '../src/infra/passwords.ts';
import { changePassword } from '../src/modules/auth/auth.service.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  grantRole,
  login,
  type RedisServer,
  registerAccount,
  registerAdmin,
  startRedisServer,
  startTcpProxy,
  type TestApp,
  uniqueEmail,
  until,
} from './helpers/index.ts';

/** Fault tests start their own redis-server (never touching the machine's shared one). */
const REDIS_AVAILABLE = (process.env.PATH ?? '').split(':').some((dir) => existsSync(`${dir}/redis-server`));
if (process.env.CI && !REDIS_AVAILABLE) {
  // Skipped there, the Redis fault tests would pass by never running.
  throw new Error('redis-server is missing: CI must install it (apt-get install -y redis-server)');
}

const me = (t: TestApp, account: { accessToken: string }) =>
  t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) });

/** Polls until `call` answers something other than 503 (a client reconnecting after a restart). */
async function untilAvailable<T extends { statusCode: number }>(call: () => Promise<T>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const response = await call();
    if (response.statusCode !== 503) return response;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return call();
}

/** Ends sessions in each way the API can, returning the access tokens that must now be refused. */
async function revokeEveryWay(t: TestApp, admin: Account): Promise<Record<string, Account>> {
  const post = (account: Account, url: string, payload?: object) =>
    t.app.inject({ method: 'POST', url, headers: bearer(account), ...(payload && { payload }) });
  const ended: Record<string, Account> = {};

  const loggedOut = await registerAccount(t.app);
  expect((await post(loggedOut, '/api/auth/logout')).statusCode).toBe(200);
  ended.logout = loggedOut;

  const everywhere = await registerAccount(t.app);
  expect((await post(everywhere, '/api/auth/logout-all')).statusCode).toBe(200);
  ended.logoutAll = everywhere;

  const owner = await registerAccount(t.app);
  const second = (await login(t.app, owner.email, owner.password)).json();
  const other = { ...owner, accessToken: second.accessToken, refreshToken: second.refreshToken };
  const sessionId = JSON.parse(Buffer.from(other.accessToken.split('.')[1] as string, 'base64url').toString()).sid;
  const revoke = await t.app.inject({
    method: 'DELETE',
    url: `/api/auth/sessions/${sessionId}`,
    headers: bearer(owner),
  });
  expect(revoke.statusCode).toBe(200);
  ended.revokeSession = other;

  const changer = await registerAccount(t.app);
  const changerOther = (await login(t.app, changer.email, changer.password)).json();
  const change = await post(changer, '/api/auth/password/change', {
    currentPassword: changer.password,
    newPassword: 'Brand-new-pass-7',
  });
  expect(change.statusCode).toBe(200);
  ended.passwordChanged = { ...changer, accessToken: changerOther.accessToken };

  const disabled = await registerAccount(t.app);
  const disable = await t.app.inject({
    method: 'PATCH',
    url: `/api/users/${disabled.id}`,
    headers: bearer(admin),
    payload: { disabled: true },
  });
  expect(disable.statusCode).toBe(200);
  ended.disabled = disabled;

  const deleted = await registerAccount(t.app);
  const remove = await t.app.inject({
    method: 'DELETE',
    url: '/api/users/me',
    headers: bearer(deleted),
    payload: { password: deleted.password },
  });
  expect(remove.statusCode).toBe(200);
  ended.deleted = deleted;

  const stolen = await registerAccount(t.app);
  const refresh = (refreshToken: string) =>
    t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken } });
  const rotated = (await refresh(stolen.refreshToken)).json();
  await t.services.db
    .updateTable('sessions')
    .set({ last_used_at: new Date(Date.now() - 60_000) }) // past the reuse grace window
    .where('user_id', '=', stolen.id)
    .execute();
  expect((await refresh(stolen.refreshToken)).json().appCode).toBe('SESSION_REVOKED');
  ended.reuseDetected = { ...stolen, accessToken: rotated.accessToken };

  return ended;
}

async function expectAllRefused(apps: TestApp[], ended: Record<string, Account>) {
  for (const t of apps) {
    for (const [how, account] of Object.entries(ended)) {
      const response = await untilAvailable(() => me(t, account));
      expect(response.statusCode, how).toBe(401);
      expect(response.json().appCode, how).toBe('SESSION_REVOKED');
    }
  }
}

describe('revocation is durable: Postgres is the truth, the store a cache of it', () => {
  it('keeps every kind of ended session refused by a process whose store starts empty', async () => {
    const first = await buildTestApp({ overrides: { kv: new MemoryStore() } });
    const admin = await registerAdmin(first.app, first.services.db);
    const ended = await revokeEveryWay(first, admin);
    const live = await registerAccount(first.app);
    // A restarted process: same database, a new (empty) in-memory store.
    const restarted = await buildTestApp({ database: first.database, overrides: { kv: new MemoryStore() } });
    try {
      await expectAllRefused([first, restarted], ended);
      expect((await me(restarted, live)).statusCode).toBe(200);
    } finally {
      await restarted.close();
      await first.close();
    }
  });

  it('publishes a revocation whose markers Postgres did not answer for after the commit, and says it took effect', async () => {
    // After the logout committed, the read of the ended sessions' markers and the sweep of
    // spent ones run past the statement timeout (a busy database): Postgres cancels them, for real.
    let slowQueries = 0;
    const slowRevocations: KyselyPlugin = {
      transformQuery({ node }) {
        const kind = node.kind === 'SelectQueryNode' || node.kind === 'DeleteQueryNode';
        if (!kind || slowQueries === 0 || !JSON.stringify(node).includes('session_revocations')) return node;
        slowQueries -= 1;
        return QueryNode.cloneWithWhere(node, sql`pg_sleep(5) is not null`.toOperationNode());
      },
      transformResult: async ({ result }) => result,
    };
    const database = await createTestDatabase();
    const t = await buildTestApp({
      database,
      overrides: {
        kv: new MemoryStore(),
        // (2 s: under the slowed queries' 5 s, with room for the others on a loaded machine.)
        db: createDb({ url: database.url, poolMax: 2, statementTimeoutMs: 2_000 }).withPlugin(slowRevocations),
      },
    });
    try {
      const account = await registerAccount(t.app);
      // This process rebuilds its cache, then trusts it: no marker reads "not ended".
      await until(async () => (await me(t, account)).statusCode === 200, 'the cache to be trusted');
      // A spent revocation for the sweep to take (the slowed query waits only where it has rows).
      await t.services.db
        .insertInto('session_revocations')
        .values({ session_id: randomUUID(), user_id: account.id, expires_at: new Date(Date.now() - 60_000) })
        .execute();
      slowQueries = 2;
      const logout = await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) });
      expect(slowQueries).toBe(0);
      // The cache it could not complete is no longer trusted: the ended session is refused.
      const refused = await me(t, account);
      expect([refused.statusCode, refused.json().appCode]).toEqual([401, 'SESSION_REVOKED']);
      // The logout committed and took effect: the client is told so.
      expect(logout.statusCode).toBe(200);
    } finally {
      await t.close();
      await database.drop();
    }
  });

  describe.skipIf(!REDIS_AVAILABLE)('with a Redis of its own', () => {
    let redis: RedisServer;
    let a: TestApp;
    let b: TestApp;
    let admin: Account;
    beforeAll(async () => {
      redis = await startRedisServer();
      const kv = () => new RedisStore({ url: redis.url, keyPrefix: 'durable:', commandTimeoutMs: 5_000 });
      a = await buildTestApp({ overrides: { kv: kv() } });
      b = await buildTestApp({ database: a.database, overrides: { kv: kv() } });
      admin = await registerAdmin(a.app, a.services.db);
    });
    afterAll(async () => {
      await b?.close();
      await a?.close();
      await redis?.stop();
    });

    /**
     * A third process that reaches the shared Redis through a proxy the test can cut (a
     * partition of that host alone); the others reach it and trust their caches.
     */
    async function cutOffProcess() {
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(redis.url).port) });
      const app = await buildTestApp({
        database: a.database,
        overrides: {
          kv: new RedisStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: 'durable:', commandTimeoutMs: 500 }),
        },
      });
      return { proxy, cutOff: app };
    }

    it('refuses every ended session on every process after FLUSHALL and after a real restart', async () => {
      const ended = await revokeEveryWay(a, admin);
      const live = await registerAccount(a.app);
      await expectAllRefused([a, b], ended);

      await redis.flushAll();
      await expectAllRefused([a, b], ended);
      expect((await me(b, live)).statusCode).toBe(200);

      await redis.restart();
      await expectAllRefused([a, b], ended);
      expect((await untilAvailable(() => me(a, live))).statusCode).toBe(200);
      // Once Redis answers again, a call rebuilds the cache: the markers are back in Redis.
      const client = redis.command();
      try {
        await until(
          async () =>
            (await me(a, live)).statusCode === 200 && (await client.keys('durable:revoked-session:*')).length >= 7,
          'the revocation cache to be rebuilt',
          15_000,
        );
      } finally {
        client.disconnect();
      }
    });

    it('publishes a revocation that a process cut off from Redis could not, though that process is gone', async () => {
      const { proxy, cutOff } = await cutOffProcess();
      let running = true;
      try {
        const account = await registerAccount(cutOff.app);
        await until(async () => (await me(b, account)).statusCode === 200, 'the other process to trust its cache');
        proxy.cut();
        // The session ends in Postgres; neither its marker nor the drop of the cache reach Redis.
        const logout = await cutOff.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) });
        expect(logout.statusCode).toBe(503);
        // Queued with tries for as long as the access token lives (15 minutes and the clock skew's minute).
        const { rows } = await sql<{ retry_limit: number }>`
          select retry_limit from pgboss.job where name = 'publish-revocations' and data->>'userId' = ${account.id}`.execute(
          a.services.db,
        );
        expect(rows.map((row) => row.retry_limit)).toEqual([16 * 60]);
        await cutOff.close(); // the process goes away (a deploy, a crash) before it could publish
        running = false;
        const refused = await until(
          async () => {
            const response = await me(b, account);
            return response.statusCode === 401 && response;
          },
          'the other process to refuse the ended session',
          15_000,
        );
        expect(refused.json().appCode).toBe('SESSION_REVOKED');
      } finally {
        if (running) await cutOff.close();
        await proxy.close();
      }
    });

    it('finishes a password change answered 503 after its commit when it is sent again (was: the old password called wrong)', async () => {
      const { proxy, cutOff } = await cutOffProcess();
      try {
        const account = await registerAccount(cutOff.app);
        const otherDevice = (await login(a.app, account.email, account.password)).json();
        await until(async () => (await me(b, otherDevice)).statusCode === 200, 'the other process to trust its cache');
        const change = (currentPassword: string) =>
          cutOff.app.inject({
            method: 'POST',
            url: '/api/auth/password/change',
            headers: bearer(account),
            payload: { currentPassword, newPassword: 'Changed-pass-9' },
          });
        proxy.cut();
        // Committed, its revocations not published: 503. Sent again while the store is away: 503 again.
        for (const attempt of ['first', 'again']) {
          const answer = await change(account.password);
          expect([answer.statusCode, answer.json().appCode], attempt).toEqual([503, 'DEPENDENCY_DOWN']);
        }
        const signedInSince = await login(a.app, account.email, 'Changed-pass-9');
        expect(signedInSince.statusCode).toBe(200);
        // Only the session that made the change may finish it: from one signed in since, a wrong
        // current password is one wrong guess, whatever the new one (not two passwords tried).
        const fromAnother = await a.app.inject({
          method: 'POST',
          url: '/api/auth/password/change',
          headers: bearer(signedInSince.json()),
          payload: { currentPassword: 'Wrong-pass-1', newPassword: 'Changed-pass-9' },
        });
        expect([fromAnother.statusCode, fromAnother.json().appCode]).toEqual([401, 'INVALID_CREDENTIALS']);
        // Nor from a session the change ended (a process whose cache lacks its revocation
        // would still admit it): asked of the service directly, as such a process would.
        const endedSession = JSON.parse(
          Buffer.from(otherDevice.accessToken.split('.')[1] as string, 'base64url').toString(),
        ).sid;
        const fromEnded = changePassword(a.services, {
          caller: { userId: account.id, sessionId: endedSession },
          currentPassword: account.password,
          newPassword: 'Changed-pass-9',
        });
        await expect(fromEnded).rejects.toMatchObject({ appCode: 'INVALID_CREDENTIALS' });

        // Once the store answers, sending it again finishes it: 200, and the other device is refused.
        proxy.restore();
        const finished = await untilAvailable(() => change(account.password));
        expect(finished.statusCode, finished.body).toBe(200);
        expect((await me(b, otherDevice)).json().appCode).toBe('SESSION_REVOKED');
        expect((await me(cutOff, account)).statusCode).toBe(200);
        // Not a way around the current password: a wrong one with another new password is refused.
        const wrong = await cutOff.app.inject({
          method: 'POST',
          url: '/api/auth/password/change',
          headers: bearer(account),
          payload: { currentPassword: account.password, newPassword: 'Another-pass-8' },
        });
        expect([wrong.statusCode, wrong.json().appCode]).toEqual([401, 'INVALID_CREDENTIALS']);
      } finally {
        await cutOff.close();
        await proxy.close();
      }
    });

    it('asks Postgres again after a reconnect, until it has rebuilt the cache: the store may have lost a marker', async () => {
      const account = await registerAccount(a.app);
      const sessionId = JSON.parse(
        Buffer.from(account.accessToken.split('.')[1] as string, 'base64url').toString(),
      ).sid;
      const logout = await a.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) });
      expect(logout.statusCode).toBe(200);
      expect((await me(b, account)).statusCode).toBe(401);
      // A failover to a replica that had not received the marker: the "cache ready" key is
      // there, the marker is not, and every client reconnects.
      const client = redis.command();
      const marker = `durable:revoked-session:${sessionId}`;
      expect(await client.del(marker)).toBe(1);
      await client.client('KILL', 'TYPE', 'normal');
      try {
        for (const t of [a, b]) {
          const response = await untilAvailable(() => me(t, account));
          expect(response.statusCode).toBe(401);
          expect(response.json().appCode).toBe('SESSION_REVOKED');
        }
        // The next call that reaches the store rebuilds the cache: the marker is back.
        await until(
          async () => (await me(a, account)).statusCode === 401 && (await client.exists(marker)) === 1,
          'the marker to come back',
        );
        expect((await me(a, account)).statusCode).toBe(401);
      } finally {
        client.disconnect();
      }
    });
  });
});

describe.skipIf(!REDIS_AVAILABLE)('a Redis that refuses writes (maxmemory, noeviction)', () => {
  let redis: RedisServer;
  let t: TestApp;
  let other: TestApp;
  beforeAll(async () => {
    redis = await startRedisServer();
    t = await buildTestApp({
      overrides: { kv: new RedisStore({ url: redis.url, keyPrefix: 'full:', commandTimeoutMs: 5_000 }) },
    });
    other = await buildTestApp({
      database: t.database,
      overrides: { kv: new RedisStore({ url: redis.url, keyPrefix: 'full:', commandTimeoutMs: 5_000 }) },
    });
  });
  afterAll(async () => {
    await other?.close();
    await t?.close();
    await redis?.stop();
  });

  it('still ends sessions for real (Postgres takes over the check), and readiness names Redis', async () => {
    const account = await registerAccount(t.app);
    expect((await me(other, account)).statusCode).toBe(200);
    // Data above the memory limit, with no eviction: Redis now refuses every write.
    const filler = redis.command();
    const chunk = 'x'.repeat(256 * 1024);
    for (let i = 0; i < 8; i++) await filler.set(`filler:${i}`, chunk);
    await filler.config('SET', 'maxmemory-policy', 'noeviction');
    await filler.config('SET', 'maxmemory', '1mb');
    await expect(filler.set('one-more', 'x')).rejects.toThrow(/OOM/);
    filler.disconnect();

    const logout = await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) });
    expect(logout.statusCode).toBe(200);
    for (const app of [t, other]) {
      const refused = await me(app, account);
      expect(refused.statusCode).toBe(401);
      expect(refused.json().appCode).toBe('SESSION_REVOKED');
    }
    // Signing in still works (the rate limits count per process meanwhile), and so do live sessions.
    const fresh = await login(t.app, account.email, account.password);
    expect(fresh.statusCode).toBe(200);
    expect((await me(other, fresh.json())).statusCode).toBe(200);

    const ready = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ appCode: 'DEPENDENCY_DOWN', details: { checks: { redis: 'down' } } });
    // What Kubernetes' readiness asks (deploy/kubernetes): the pod stays in the Service, serving.
    expect((await t.app.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200);
  });
});

describe.skipIf(!REDIS_AVAILABLE)('Redis down or hung', () => {
  let redis: RedisServer;
  let t: TestApp;
  let store: RedisStore;
  beforeAll(async () => {
    redis = await startRedisServer();
    store = new RedisStore({ url: redis.url, keyPrefix: 'down:', commandTimeoutMs: 1_000 });
    t = await buildTestApp({
      env: { RATE_LIMIT_AUTH_PER_MINUTE: '10', TRUST_PROXY: '1', MAX_SESSIONS_PER_USER: '2' },
      overrides: { kv: store },
    });
  });
  afterAll(async () => {
    redis?.thaw();
    await t?.close();
    await redis?.stop();
  });

  it('answers signed-in calls from Postgres while Redis is frozen, then stops waiting on it (circuit open)', async () => {
    const account = await registerAccount(t.app);
    const ended = await registerAccount(t.app);
    await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(ended) });
    redis.freeze();
    try {
      // Each waits out the command timeout, then Postgres says which sessions have ended.
      for (let i = 0; i < 3; i++) expect((await me(t, account)).statusCode).toBe(200);
      expect(store.circuitOpen).toBe(true);
      expect((await me(t, account)).statusCode).toBe(200);
      const refused = await me(t, ended);
      expect([refused.statusCode, refused.json().appCode]).toEqual([401, 'SESSION_REVOKED']);
      // One-time codes live in Redis alone: while the circuit is open, they fail without waiting for it at all.
      const otp = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/request',
        payload: { email: uniqueEmail() },
      });
      expect(otp.statusCode).toBe(503);
      expect(otp.headers['retry-after']).toBe('2');
      expect(otp.json()).toMatchObject({ appCode: 'DEPENDENCY_DOWN', details: { dependency: 'redis' } });
    } finally {
      redis.thaw();
    }
    // Redis answers again: the circuit closes at its next probe.
    await until(
      async () => (await me(t, account)).statusCode === 200 && !store.circuitOpen,
      'the circuit to close',
      10_000,
    );
  });

  it('refuses to report a logout it could not publish, yet the session is refused from then on', async () => {
    const account = await registerAccount(t.app);
    const logout = () => t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) });
    redis.freeze();
    try {
      // The session is ended in Postgres, but neither its marker nor the cache flag can be written.
      const failed = await logout();
      expect(failed.statusCode).toBe(503);
      expect(failed.json().appCode).toBe('DEPENDENCY_DOWN');
      // Meanwhile Postgres answers for the store: the session has ended.
      const refused = await me(t, account);
      expect([refused.statusCode, refused.json().appCode]).toEqual([401, 'SESSION_REVOKED']);
    } finally {
      redis.thaw();
    }
    // Redis is back with its data (and its "cache ready" key): the client retries, as the 503
    // told it to, and is told the session has ended (or, before the process published its
    // marker, ends it again).
    const retried = await untilAvailable(logout);
    expect([200, 401]).toContain(retried.statusCode);
    await until(
      async () => (await me(t, account)).statusCode === 401 && !store.circuitOpen,
      'the session refused with Redis answering',
      10_000,
    );
    const refused = await me(t, account);
    expect([refused.statusCode, refused.json().appCode]).toEqual([401, 'SESSION_REVOKED']);
  });

  it('finishes a reset answered 503 after its commit when it is sent again, and publishes its revocations anyway', async () => {
    const account = await registerAccount(t.app);
    await t.app.inject({ method: 'POST', url: '/api/auth/password/forgot', payload: { email: account.email } });
    await t.settle();
    const token = /reset-password\?token=([\w-]+)/.exec(t.mail.last(account.email, 'reset-password')?.text ?? '')?.[1];
    // From an address of its own (TRUST_PROXY=1): these calls leave the others' credential limit alone.
    const headers = { 'x-forwarded-for': '203.0.113.12' };
    const reset = (newPassword = 'Reset-pass-12') =>
      t.app.inject({ method: 'POST', url: '/api/auth/password/reset', headers, payload: { token, newPassword } });
    redis.freeze();
    try {
      // The link is spent and the sessions ended in Postgres; neither their markers nor the
      // cache flag get written. Sent again meanwhile: 503 again (before: 400 INVALID_TOKEN).
      for (const attempt of ['first', 'again']) {
        const failed = await reset();
        expect([failed.statusCode, failed.json().appCode], attempt).toEqual([503, 'DEPENDENCY_DOWN']);
      }
    } finally {
      redis.thaw();
    }
    // Redis is back with its data (and its "cache ready" key): sent again, the reset is finished.
    const answers = () =>
      store.get('probe').then(
        () => true,
        () => false,
      );
    await until(answers, 'Redis to answer this process again');
    const finished = await reset();
    expect(finished.statusCode, finished.body).toBe(200);
    // The spent link sets no other password, nor says whether a guess is the new one: after
    // one other password, even the right one is refused (the link is gone).
    expect((await reset('Another-pass-34')).json().appCode).toBe('INVALID_TOKEN');
    expect((await reset()).json().appCode).toBe('INVALID_TOKEN');
    expect((await login(t.app, account.email, 'Reset-pass-12', headers)).statusCode).toBe(200);
    // And the old session's access token is refused.
    const refused = await until(
      async () => {
        const response = await me(t, account);
        return response.statusCode === 401 && response;
      },
      'the ended session’s access token to be refused',
      10_000,
    );
    expect(refused.json().appCode).toBe('SESSION_REVOKED');
  });

  it('signs in over the session cap while Redis is frozen, and publishes the session it ended once Redis answers', async () => {
    const account = await registerAccount(t.app);
    const second = await login(t.app, account.email, account.password);
    // The cache is ready (its key set): a session without a marker there is taken as live.
    expect((await me(t, account)).statusCode).toBe(200);
    redis.freeze();
    let third: { accessToken: string };
    try {
      // The first session (least recently used) ends in Postgres; its marker cannot be written.
      const signedIn = await login(t.app, account.email, account.password);
      expect(signedIn.statusCode).toBe(200);
      third = signedIn.json();
    } finally {
      redis.thaw();
    }
    // Redis is back with its data (and its "cache ready" key): a job publishes the marker.
    const refused = await until(
      async () => {
        const response = await me(t, account);
        return response.statusCode === 401 && !store.circuitOpen && response;
      },
      'the ended session’s access token to be refused with Redis answering',
      10_000,
    );
    expect(refused.json().appCode).toBe('SESSION_REVOKED');
    for (const live of [second.json(), third]) expect((await me(t, live)).statusCode).toBe(200);
  });

  it('ends the sessions of every user a batch disables while Redis is frozen, not only the first', async () => {
    // Each from an address of its own: this app keeps the real sign-up limit (10 a minute an address).
    const signUp = async (ip: string) => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        headers: { 'x-forwarded-for': ip },
        payload: { email: uniqueEmail(), password: 'Correct-horse-42' },
      });
      expect(response.statusCode).toBe(200);
      return { id: response.json().user.id as string, accessToken: response.json().accessToken as string };
    };
    const admin = await signUp('198.51.100.10');
    await grantRole(t.services.db, admin.id, 'admin');
    const users = [await signUp('198.51.100.11'), await signUp('198.51.100.12'), await signUp('198.51.100.13')];
    redis.freeze();
    try {
      const batch = await t.app.inject({
        method: 'PATCH',
        url: '/api/users/batch',
        headers: bearer(admin),
        payload: { items: users.map((user) => ({ id: user.id, disabled: true })) },
      });
      // Written, but not yet effective where a cache is trusted: a retry finishes it.
      expect([batch.statusCode, batch.json().appCode]).toEqual([503, 'DEPENDENCY_DOWN']);
      // Postgres answers for the store meanwhile: every one of them has ended.
      for (const user of users) {
        const refused = await me(t, user);
        expect([refused.statusCode, refused.json().appCode]).toEqual([401, 'SESSION_REVOKED']);
      }
    } finally {
      redis.thaw();
    }
    // Redis is back with its data (and its "cache ready" key): jobs published every marker.
    for (const user of users) {
      await until(
        async () => (await me(t, user)).statusCode === 401 && !store.circuitOpen,
        'each disabled user’s session refused with Redis answering',
        10_000,
      );
    }
    const rows = await t.services.db
      .selectFrom('users')
      .select('disabled_at')
      .where(
        'id',
        'in',
        users.map((u) => u.id),
      )
      .execute();
    expect(rows.every((row) => row.disabled_at !== null)).toBe(true);
  });

  it('keeps a per-process login limit while Redis is down, and signs in for real meanwhile', async () => {
    const account = await registerAccount(t.app);
    await redis.stop();
    try {
      const statuses: number[] = [];
      const ip = { 'x-forwarded-for': '203.0.113.77' };
      for (let i = 0; i < 11; i++) statuses.push((await login(t.app, uniqueEmail(), 'Wrong-pass-1', ip)).statusCode);
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
      expect(statuses[10]).toBe(429);
      // Signed-in calls go on: Postgres answers the revocation check.
      expect((await me(t, account)).statusCode).toBe(200);
    } finally {
      await redis.start();
    }
    expect((await untilAvailable(() => me(t, account))).statusCode).toBe(200);
  });
});

describe('Postgres down', () => {
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let t: TestApp;
  let account: Account;
  beforeAll(async () => {
    const healthy = await buildTestApp();
    const target = new URL(healthy.database.url);
    await healthy.app.close();
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(healthy.database.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    t = await buildTestApp({
      database: healthy.database,
      overrides: { db: createDb({ url: viaProxy.toString(), poolMax: 2, connectionTimeoutMs: 1_500 }) },
    });
    account = await registerAccount(t.app);
    // The first app only created the database; it is dropped when `t`'s owner closes.
    Object.assign(t, { closeDatabase: () => healthy.close() });
  });
  afterAll(async () => {
    await t?.close();
    await (t as unknown as { closeDatabase?: () => Promise<void> })?.closeDatabase?.();
    await proxy?.close();
  });

  it('answers 503 DEPENDENCY_DOWN with Retry-After on every transport, never a 500, then recovers', async () => {
    proxy.cut();
    try {
      const calls = [
        () => t.app.inject({ method: 'GET', url: '/api/notes', headers: bearer(account) }),
        () => t.app.inject({ method: 'GET', url: '/trpc/notes.list', headers: bearer(account) }),
        () => t.app.inject({ method: 'POST', url: '/api/notes', headers: bearer(account), payload: { title: 'x' } }),
        () => login(t.app, account.email, account.password),
        () =>
          t.app.inject({
            method: 'POST',
            url: '/api/auth/register',
            payload: { email: uniqueEmail(), password: 'Sunny-day-42' },
          }),
      ];
      for (const call of calls) {
        const response = await call();
        expect(response.statusCode).toBe(503);
        expect(response.headers['retry-after']).toBe('2');
        const body = response.json();
        const error = body.error?.data ?? body;
        expect(error).toMatchObject({ appCode: 'DEPENDENCY_DOWN', details: { dependency: 'database' } });
        expect(JSON.stringify(body)).not.toMatch(/select|insert|ECONN|stack/i);
      }
    } finally {
      proxy.restore();
    }
    expect(
      (await untilAvailable(() => t.app.inject({ method: 'GET', url: '/api/notes', headers: bearer(account) })))
        .statusCode,
    ).toBe(200);
  });

  it('answers a write 503 while the database takes none (a standby, a primary demoted by a failover), never a 500', async () => {
    // Every new connection to the test's database is read-only, as on a standby; the app's
    // are ended so that its pool reconnects into that.
    const admin = createDb({ url: t.database.url, poolMax: 1 });
    const readOnly = async (on: boolean) => {
      const name = sql.id(new URL(t.database.url).pathname.slice(1));
      await sql`alter database ${name} set default_transaction_read_only = ${sql.lit(on)}`.execute(admin);
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid()`.execute(admin);
    };
    const write = () =>
      t.app.inject({ method: 'POST', url: '/api/notes', headers: bearer(account), payload: { title: 'Kept?' } });
    try {
      await readOnly(true);
      // The first calls may meet the ended connections (a 503 too); the rest, the read-only
      // server's refusal (before: 500 INTERNAL_ERROR, logged as a bug).
      for (let i = 0; i < 5; i++) {
        const refused = await write();
        expect(refused.statusCode, refused.body).toBe(503);
        expect(refused.json()).toMatchObject({ appCode: 'DEPENDENCY_DOWN', details: { dependency: 'database' } });
        expect(refused.headers['retry-after']).toBe('2');
      }
      const stored = await t.services.db.selectFrom('notes').select('id').where('title', '=', 'Kept?').execute();
      expect(stored).toEqual([]);
    } finally {
      await readOnly(false);
      await admin.destroy();
    }
    expect((await untilAvailable(write)).statusCode).toBe(200);
  });

  it('answers 503 when the pool is exhausted for longer than the connection wait', async () => {
    const held = t.services.db.transaction().execute(async (trx) => {
      const other = trx.selectFrom('users').select('id').execute();
      await other;
      await new Promise((resolve) => setTimeout(resolve, 4_000));
    });
    const second = t.services.db.transaction().execute(async () => {
      await new Promise((resolve) => setTimeout(resolve, 4_000));
    });
    const response = await t.app.inject({ method: 'GET', url: '/api/notes', headers: bearer(account) });
    expect(response.statusCode).toBe(503);
    expect(response.json().appCode).toBe('DEPENDENCY_DOWN');
    await Promise.all([held, second]);
  });
});

// Each test waits for checks of a hash that takes about a second (on an idle machine) to end:
// on one loaded by the whole suite at once, several times that.
describe('a storm of sign-ins', { timeout: 120_000 }, () => {
  /** A stored hash that takes about a second to check (300 passes): the line stays full while a test looks. */
  let slowHash: string;
  beforeAll(async () => {
    slowHash = await hash('Slow-pass-1', { ...PASSWORD_HASH_OPTIONS, timeCost: 300 });
  });

  it('answers the calls its password hashing cannot take soon a fast 503 with Retry-After, and serves the rest', async () => {
    const t = await buildTestApp();
    try {
      const account = await registerAccount(t.app);
      // Many addresses, each within its limits: more password checks than can run soon.
      const storm = Array.from({ length: 200 }, () => login(t.app, uniqueEmail(), 'Wrong-pass-1'));
      const signedIn = await me(t, account);
      const answers = await Promise.all(storm);
      expect(signedIn.statusCode).toBe(200);
      const busy = answers.filter((answer) => answer.statusCode === 503);
      expect(busy.length).toBeGreaterThan(0);
      for (const answer of busy) {
        expect(answer.headers['retry-after']).toBe('1');
        expect(answer.json().appCode).toBe('SERVICE_UNAVAILABLE');
      }
      const checked = answers.filter((answer) => answer.statusCode !== 503);
      expect(checked.length).toBeGreaterThan(2);
      expect(new Set(checked.map((answer) => answer.json().appCode))).toEqual(new Set(['INVALID_CREDENTIALS']));
      // Once the storm is over, sign-ins are checked again.
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('lets the callers that gave up leave the line: they hold no place, and no hash is made for them', async () => {
    const t = await buildTestApp();
    try {
      // An account whose stored hash takes about a second to check: the line stays full while the test looks.
      const slow = await registerAccount(t.app);
      await t.services.db.updateTable('users').set({ password_hash: slowHash }).where('id', '=', slow.id).execute();
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const address = t.app.server.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/api/auth/login`;
      // A line's worth of clients over real connections (2 checking, 64 waiting), which give up while they wait.
      const givingUp = new AbortController();
      const abandoned = Array.from({ length: 66 }, () =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: slow.email, password: 'Wrong-pass-1' }),
          signal: givingUp.signal,
        }).catch(() => undefined),
      );
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // all in line, behind two checks of a second
      givingUp.abort();
      await Promise.all(abandoned);
      // The next callers find room in the line (behind the two checks still running), not a full one.
      const next = await Promise.all(Array.from({ length: 20 }, () => login(t.app, uniqueEmail(), 'Wrong-pass-1')));
      expect(next.map((answer) => answer.json().appCode)).toEqual(Array(20).fill('INVALID_CREDENTIALS'));
    } finally {
      await t.close();
    }
  });

  /** Once the hashing line is idle: an account whose password (Legacy-pass-1) was hashed with older parameters. */
  async function accountWithOutdatedHash(t: TestApp) {
    await until(async () => {
      const line = passwordHashingLine();
      return line.running === 0 && line.waiting === 0;
    }, 'the previous tests’ checks to end');
    const email = uniqueEmail();
    const outdated = await hash('Legacy-pass-1', { ...PASSWORD_HASH_OPTIONS, timeCost: 1 });
    const user = await t.services.db
      .insertInto('users')
      .values({ email, password_hash: outdated })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { email, outdated, user };
  }

  it('signs in with an outdated hash without waiting for a turn to upgrade it, and upgrades it at a quieter sign-in', async () => {
    const t = await buildTestApp();
    const release = new AbortController();
    try {
      const { email, outdated, user } = await accountWithOutdatedHash(t);
      const storedHash = async () =>
        (
          await t.services.db
            .selectFrom('users')
            .select('password_hash')
            .where('id', '=', user.id)
            .executeTakeFirstOrThrow()
        ).password_hash;
      // Two slow checks hold both turns; the sign-in waits in line, and another check behind it.
      const slowChecks = [0, 1].map(() =>
        checkPassword(slowHash, 'Wrong-pass-1', release.signal).catch(() => undefined),
      );
      const signingIn = login(t.app, email, 'Legacy-pass-1');
      await until(async () => passwordHashingLine().waiting === 1, 'the sign-in to wait in line');
      // Two checks behind it: whichever of the two running checks ends first, its turn goes to
      // the sign-in, and the other's and then the sign-in's to these two, so when the sign-in's
      // check is done, both turns are taken and none is free for an upgrade.
      for (let i = 0; i < 2; i++) {
        slowChecks.push(checkPassword(slowHash, 'Wrong-pass-1', release.signal).catch(() => undefined));
      }
      const signedIn = await signingIn;
      expect(signedIn.statusCode).toBe(200);
      expect((await me(t, signedIn.json())).statusCode).toBe(200);
      expect(await storedHash()).toBe(outdated);
      release.abort(); // those still waiting leave the line; those running end
      await Promise.all(slowChecks);
      expect((await login(t.app, email, 'Legacy-pass-1')).statusCode).toBe(200);
      expect(await storedHash()).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    } finally {
      release.abort();
      await t.close();
    }
  });

  it('signs in with the right password when another sign-in upgraded its hash during the check', async () => {
    const t = await buildTestApp();
    const release = new AbortController();
    const again = new AbortController();
    try {
      const { email, outdated, user } = await accountWithOutdatedHash(t);
      const setHash = (password_hash: string) =>
        t.services.db.updateTable('users').set({ password_hash }).where('id', '=', user.id).execute();
      // Two slow checks hold both turns: the sign-in reads the outdated hash and waits in line.
      const slowChecks = [0, 1].map(() =>
        checkPassword(slowHash, 'Wrong-pass-1', release.signal).catch(() => undefined),
      );
      const signingIn = login(t.app, email, 'Legacy-pass-1');
      await until(async () => passwordHashingLine().waiting === 1, 'the sign-in to wait in line');
      // Meanwhile another sign-in upgrades the hash (the same password, today's parameters),
      // and two more checks queue behind this one: no turn is free for its own upgrade.
      await setHash(await hash('Legacy-pass-1', PASSWORD_HASH_OPTIONS));
      for (let i = 0; i < 2; i++) {
        slowChecks.push(checkPassword(slowHash, 'Wrong-pass-1', release.signal).catch(() => undefined));
      }
      const signedIn = await signingIn;
      // Before: 401 INVALID_CREDENTIALS (the session wanted the hash it had checked), counted as a wrong password.
      expect(signedIn.statusCode, signedIn.body).toBe(200);
      expect((await me(t, signedIn.json())).statusCode).toBe(200);

      // A hash replaced by another password's during the check (a change) still refuses it.
      release.abort();
      await Promise.all(slowChecks);
      await until(async () => passwordHashingLine().running === 0, 'the slow checks to end');
      await setHash(outdated);
      const holding = [0, 1].map(() => checkPassword(slowHash, 'Wrong-pass-1', again.signal).catch(() => undefined));
      const refused = login(t.app, email, 'Legacy-pass-1');
      await until(async () => passwordHashingLine().waiting === 1, 'the sign-in to wait in line');
      await setHash(await hash('Changed-pass-2', PASSWORD_HASH_OPTIONS));
      expect((await refused).json().appCode).toBe('INVALID_CREDENTIALS');
      again.abort();
      await Promise.all(holding);
    } finally {
      release.abort();
      again.abort();
      await t.close();
    }
  });

  it('answers every call that would hash a password 503 while the line is full', async () => {
    const t = await buildTestApp();
    const admin = await registerAdmin(t.app, t.services.db);
    const account = await registerAccount(t.app);
    // Two slow checks running and 64 waiting: the line is full until they are released.
    const release = new AbortController();
    const filling = Array.from({ length: 66 }, () =>
      checkPassword(slowHash, 'Wrong-pass-1', release.signal).catch(() => undefined),
    );
    try {
      const calls = {
        register: () =>
          t.app.inject({
            method: 'POST',
            url: '/api/auth/register',
            payload: { email: uniqueEmail(), password: 'Sunny-day-42' },
          }),
        changePassword: () =>
          t.app.inject({
            method: 'POST',
            url: '/api/auth/password/change',
            headers: bearer(account),
            payload: { currentPassword: account.password, newPassword: 'Brand-new-pass-7' },
          }),
        resetPassword: () =>
          t.app.inject({
            method: 'POST',
            url: '/api/auth/password/reset',
            payload: { token: 'x'.repeat(43), newPassword: 'Brand-new-pass-7' },
          }),
        deleteMe: () =>
          t.app.inject({
            method: 'DELETE',
            url: '/api/users/me',
            headers: bearer(account),
            payload: { password: account.password },
          }),
        createMany: () =>
          t.app.inject({
            method: 'POST',
            url: '/api/users/batch',
            headers: bearer(admin),
            payload: { items: [{ email: uniqueEmail(), password: 'Sunny-day-42' }] },
          }),
      };
      for (const [name, call] of Object.entries(calls)) {
        const answer = await call();
        expect([answer.statusCode, answer.json().appCode], name).toEqual([503, 'SERVICE_UNAVAILABLE']);
        expect(answer.headers['retry-after'], name).toBe('1');
      }
      // Nothing was done: the account still signs in with its password.
      release.abort();
      await Promise.all(filling);
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
    } finally {
      release.abort();
      await Promise.all(filling);
      await t.close();
    }
  });
});

describe('one-time codes under concurrent guesses', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  it('burns the code after 5 tries even when 8 wrong guesses arrive at once', async () => {
    for (let trial = 0; trial < 3; trial++) {
      const email = uniqueEmail();
      expect(
        (await t.app.inject({ method: 'POST', url: '/api/auth/otp/request', payload: { email } })).statusCode,
      ).toBe(200);
      await t.settle();
      const code = /\b(\d{6})\b/.exec(t.mail.last(email, 'one-time-code')?.text ?? '')?.[1] as string;
      const wrong = code === '000000' ? '111111' : '000000';
      const guesses = await Promise.all(
        Array.from({ length: 8 }, () =>
          t.app.inject({ method: 'POST', url: '/api/auth/otp/verify', payload: { email, code: wrong } }),
        ),
      );
      expect(guesses.map((guess) => guess.statusCode)).toEqual(Array(8).fill(401));
      const real = await t.app.inject({ method: 'POST', url: '/api/auth/otp/verify', payload: { email, code } });
      expect(real.statusCode, `trial ${trial}`).toBe(401);
      expect(real.json().appCode).toBe('INVALID_CODE');
    }
  });
});
