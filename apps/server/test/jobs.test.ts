/**
 * Durable jobs (pg-boss in the test database): the maintenance job purges what can never be
 * used again and runs once however many workers take jobs; a failing job is retried with
 * backoff and kept as failed with its error; administrators see the queues and retry or
 * discard failed jobs (REST and tRPC); `pnpm worker` runs jobs in a process of its own.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unavailableDependency } from '../src/infra/dependency-errors.ts';
import { JobQueue, type QueueDefinition } from '../src/infra/jobs.ts';
import { createLogger } from '../src/infra/logger.ts';
import { type EmailJob, enqueueEmail, runEmailJob } from '../src/modules/auth/email-jobs.ts';
import {
  MAINTENANCE,
  maintenanceRule,
  QUEUES,
  runMaintenance,
  startWorker,
  startWorkerWhenPossible,
} from '../src/modules/jobs/jobs.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  holdConnection,
  registerAccount,
  registerAdmin,
  sharedRedisEnv,
  spawnCommand,
  startFakeResend,
  startTcpProxy,
  type TestApp,
  uniqueEmail,
  until,
} from './helpers/index.ts';

const DAY = 86_400_000;

describe('durable jobs', () => {
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    t = await buildTestApp({ env: { JOBS_POLL_INTERVAL: '1' } });
    admin = await registerAdmin(t.app, t.services.db);
  });
  afterAll(() => t.close());

  it('maintenance purges ended sessions, spent links and unfinished sign-ins, and keeps what may still be used', async () => {
    const { db } = t.services;
    const account = await registerAccount(t.app);
    const now = Date.now();
    const old = new Date(now - 2 * DAY);
    const ended = await db
      .insertInto('sessions')
      .values([
        { user_id: account.id, refresh_token_hash: `expired-${now}`, expires_at: old },
        { user_id: account.id, refresh_token_hash: `revoked-${now}`, expires_at: new Date(now + DAY), revoked_at: old },
        // Ended an hour ago: kept a day, so its refresh token is still "revoked", not "unknown".
        {
          user_id: account.id,
          refresh_token_hash: `recent-${now}`,
          expires_at: new Date(now + DAY),
          revoked_at: new Date(now - 3_600_000),
        },
      ])
      .returning('refresh_token_hash')
      .execute();
    await db
      .insertInto('user_tokens')
      .values([
        {
          user_id: account.id,
          purpose: 'verify-email',
          token_hash: `used-${now}`,
          expires_at: new Date(now + DAY),
          used_at: old,
        },
        { user_id: account.id, purpose: 'reset-password', token_hash: `expired-${now}`, expires_at: old },
        // Used a minute ago: kept while a reset sent again may still finish with it, expired or not.
        {
          user_id: account.id,
          purpose: 'reset-password',
          token_hash: `just-used-${now}`,
          expires_at: new Date(now + DAY),
          used_at: new Date(now - 60_000),
        },
        {
          user_id: account.id,
          purpose: 'reset-password',
          token_hash: `used-then-expired-${now}`,
          expires_at: new Date(now - 1_000),
          used_at: new Date(now - 60_000),
        },
        { user_id: account.id, purpose: 'reset-password', token_hash: `live-${now}`, expires_at: new Date(now + DAY) },
      ])
      .execute();

    const done = await runMaintenance(t.services);
    expect(done.sessions).toBeGreaterThanOrEqual(2);
    expect(done.links).toBeGreaterThanOrEqual(2);
    const sessions = await db
      .selectFrom('sessions')
      .select('refresh_token_hash')
      .where('user_id', '=', account.id)
      .execute();
    const left = sessions.map((s) => s.refresh_token_hash);
    expect(left).toContain(`recent-${now}`);
    expect(left).not.toContain(ended[0]?.refresh_token_hash);
    expect(left).not.toContain(ended[1]?.refresh_token_hash);
    // The account's own live session (from registering) is untouched: it still works.
    expect((await t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) })).statusCode).toBe(
      200,
    );
    const tokens = await db.selectFrom('user_tokens').select('token_hash').where('user_id', '=', account.id).execute();
    const kept = tokens.map((row) => row.token_hash);
    expect(kept).toContain(`live-${now}`);
    expect(kept).toContain(`just-used-${now}`);
    expect(kept).toContain(`used-then-expired-${now}`);
    expect(kept).not.toContain(`used-${now}`);
    expect(kept).not.toContain(`expired-${now}`);
  });

  it('schedules maintenance once, by MAINTENANCE_INTERVAL, and a worker runs a queued maintenance job', async () => {
    expect(maintenanceRule(3_600)).toBe('FREQ=MINUTELY;INTERVAL=60');
    expect(maintenanceRule(90)).toBe('FREQ=MINUTELY;INTERVAL=2');
    await startWorker(t.services);
    await startWorker(t.services); // a second process declaring it: still one schedule
    const boss = await t.services.jobs.ready();
    const schedules = await boss.getSchedules(MAINTENANCE);
    expect(schedules).toHaveLength(1);
    expect(schedules[0]?.cron).toBe('FREQ=MINUTELY;INTERVAL=60');

    const id = (await t.services.jobs.send(MAINTENANCE, {})) as string;
    const job = await until(async () => {
      const [found] = await boss.findJobs(MAINTENANCE, { id });
      return found?.state === 'completed' ? found : undefined;
    }, 'the maintenance job to complete');
    expect(job.retryCount).toBe(0);
  });

  /** A queue of its own on the test database, polled every 0.5 s, retrying twice after 1–2 s. */
  const quickQueue = (name: string, definition: Partial<QueueDefinition> = {}) =>
    new JobQueue(
      {
        url: t.database.url,
        db: t.services.db,
        log: createLogger({ level: 'silent', format: 'json' }),
        poolMax: 2,
        connectTimeoutMs: 5_000,
        statementTimeoutMs: 30_000,
        pollingIntervalSeconds: 0.5,
        superviseIntervalSeconds: 1,
      },
      [{ name, retryLimit: 2, retryDelaySeconds: 1, retryDelayMaxSeconds: 2, expireInSeconds: 30, ...definition }],
    );

  describe('a job that fails', () => {
    let queue: JobQueue;
    const tries: number[] = [];
    beforeAll(async () => {
      queue = quickQueue('flaky');
      await queue.work('flaky', 1, async (job) => {
        tries.push(Date.now());
        throw new Error(`the provider said no (try ${job.retryCount + 1})`);
      });
    });
    afterAll(() => queue.stop(1_000));

    it('is retried with backoff, then kept as failed with its last error', async () => {
      const id = (await queue.send('flaky', { to: 'someone@example.com' })) as string;
      const boss = await queue.ready();
      const job = await until(
        async () => {
          const [found] = await boss.findJobs('flaky', { id });
          return found?.state === 'failed' ? found : undefined;
        },
        'the job to fail for good',
        30_000,
      );
      expect(job.retryCount).toBe(2);
      expect(tries).toHaveLength(3);
      // The queue's retry policy reached pg-boss as exponential backoff.
      expect(job).toMatchObject({ retryLimit: 2, retryDelay: 1, retryBackoff: true, retryDelayMax: 2 });
      // Backoff: pg-boss waits 1-2 s (1 s doubled, with jitter) after the first failure and
      // 2 s (the cap) after the second. Only lower bounds: polling adds up to 0.5 s to either
      // wait, so comparing the two waits with each other would be a race.
      const [a = 0, b = 0, c = 0] = tries;
      expect(b - a).toBeGreaterThanOrEqual(900);
      expect(c - b).toBeGreaterThanOrEqual(1_900);
      const [failed] = await queue.failed(10);
      expect(failed).toMatchObject({ id, queue: 'flaky', tries: 3, error: 'the provider said no (try 3)' });
      expect(failed?.data).toEqual({ to: 'someone@example.com' });

      // Retried by an administrator, its tries start over: three more, not one.
      expect(await queue.retry('flaky', id)).toBe(true);
      const again = await until(
        async () => {
          const [found] = await boss.findJobs('flaky', { id });
          return found?.state === 'failed' && tries.length === 6 ? found : undefined;
        },
        'the retried job to fail for good again',
        30_000,
      );
      expect(again).toMatchObject({ retryCount: 5, retryLimit: 5 });
      expect((await queue.failed(10))[0]).toMatchObject({ id, tries: 6, error: 'the provider said no (try 6)' });
      expect(await queue.retry('flaky', randomUUID())).toBe(false); // no such failed job
    });

    it('is kept while its retry runs, however old it is (pg-boss sweeps a waiting job past its retention)', async () => {
      const id = (await queue.send('flaky', { to: 'old@example.com' })) as string;
      const boss = await queue.ready();
      const failedAfter = (tries: number) =>
        until(
          async () => {
            const [found] = await boss.findJobs('flaky', { id });
            return found?.state === 'failed' && found.retryCount === tries - 1 ? found : undefined;
          },
          `the job to fail for good after ${tries} tries`,
          30_000,
        );
      await failedAfter(3);
      // A job failed longer ago than the queue keeps jobs: pg-boss deletes one waiting past its
      // keep_until, so an administrator's retry that left it there lost the job in its backoff.
      await boss
        .getDb()
        .executeSql(
          "update pgboss.job set created_on = now() - interval '15 days', keep_until = now() - interval '1 day' where id = $1",
          [id],
        );
      expect(await queue.retry('flaky', id)).toBe(true);
      expect((await failedAfter(6)).keepUntil.getTime()).toBeGreaterThan(Date.now() + 13 * 86_400_000);
    });
  });

  describe('a worker told to stop taking jobs (the first step of a shutdown)', () => {
    let queue: JobQueue;
    const finished: string[] = [];
    let release = () => {};
    beforeAll(async () => {
      queue = quickQueue('draining');
      await queue.work('draining', 1, async (job) => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        finished.push(job.id);
      });
    });
    afterAll(() => queue.stop(1_000));

    it('finishes the job it has, takes no other, and still sends them', async () => {
      const boss = await queue.ready();
      const stateOf = async (id: string) => (await boss.findJobs('draining', { id }))[0]?.state;
      const first = (await queue.send('draining', {})) as string;
      await until(async () => ((await stateOf(first)) === 'active' ? true : undefined), 'the first job to start');

      await queue.stopTaking();
      const second = (await queue.send('draining', {})) as string;
      release();
      await until(async () => ((await stateOf(first)) === 'completed' ? true : undefined), 'the first job to finish');
      expect(finished).toEqual([first]);
      // Polled every 0.5 s: three polls' time later, the second is still waiting for another process.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await stateOf(second)).toBe('created');
      expect(finished).toEqual([first]);
      // A worker started afterwards (a retried start) takes none either.
      await queue.work('draining', 1, async () => {
        finished.push('taken after all');
      });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await stateOf(second)).toBe('created');
    });
  });

  describe('a shutdown with a job in progress', () => {
    /** Takes jobs of `name` that run until their signal aborts, then fail by it. */
    const untilAborted = async (queue: JobQueue, name: string, failure?: Error) => {
      const aborted: string[] = [];
      await queue.work(name, 1, async (job) => {
        await new Promise((resolve) => job.signal.addEventListener('abort', resolve, { once: true }));
        aborted.push(job.id);
        throw failure ?? job.signal.reason;
      });
      return aborted;
    };
    const jobOf = async (name: string, id: string) => (await (await t.services.jobs.ready()).findJobs(name, { id }))[0];
    /** The job once it is in `state`. */
    const inState = (name: string, id: string, state: string) =>
      until(async () => {
        const job = await jobOf(name, id);
        return job?.state === state ? job : undefined;
      }, `the job to be ${state}`);

    it("hands the try its deadline cuts off back to the queue, unspent even when it was the last, and settles nothing of another worker's try", async () => {
      const leaving = quickQueue('cut-off');
      const aborted = await untilAborted(leaving, 'cut-off');
      const id = (await leaving.send('cut-off', {}, { retryLimit: 0 })) as string;
      await inState('cut-off', id, 'active');
      const stopping = leaving.stop(2_000);
      try {
        // Handed back at the deadline, it is another worker's to take at once.
        const boss = await t.services.jobs.ready();
        const taken = await until(
          async () => (await boss.fetch('cut-off'))[0],
          'the try handed back to be taken',
          10_000,
        );
        expect(taken).toMatchObject({ id, retryCount: 1 });
        await stopping;
        await until(async () => (aborted.includes(id) ? true : undefined), 'the cut-off handler to end');
        // The cut-off handler failed, and pg-boss failed what it had in progress as it stopped:
        // neither touched the try the other worker holds.
        expect(await jobOf('cut-off', id)).toMatchObject({ state: 'active', retryCount: 1, retryLimit: 1 });
        await boss.complete('cut-off', taken);
        expect((await jobOf('cut-off', id))?.state).toBe('completed');
      } finally {
        await stopping;
      }
    });

    it('tells a resumable try to stop as soon as its process begins to stop, and hands it back unspent', async () => {
      const leaving = quickQueue('resumable', { resumable: true });
      const aborted = await untilAborted(leaving, 'resumable');
      const id = (await leaving.send('resumable', {})) as string;
      await inState('resumable', id, 'active');
      try {
        // The shutdown's first step, long before any deadline.
        await leaving.stopTaking();
        const handedBack = await inState('resumable', id, 'retry');
        expect(handedBack).toMatchObject({ retryCount: 0, retryLimit: 3 });
        expect(handedBack?.startAfter.getTime()).toBeLessThanOrEqual(Date.now() + 1_000); // no backoff
        expect(aborted).toEqual([id]);
      } finally {
        await leaving.stop(1_000);
      }
    });

    it('spends the try of a resumable run that failed for another reason as it was told to stop', async () => {
      const leaving = quickQueue('failing-as-stopped', { resumable: true });
      await untilAborted(leaving, 'failing-as-stopped', new Error('the store was away'));
      const id = (await leaving.send('failing-as-stopped', {})) as string;
      await inState('failing-as-stopped', id, 'active');
      try {
        await leaving.stopTaking();
        const failed = await inState('failing-as-stopped', id, 'retry');
        expect(failed).toMatchObject({ retryCount: 0, retryLimit: 2, output: { message: 'the store was away' } });
      } finally {
        await leaving.stop(1_000);
      }
    });
  });

  describe('administration (perm jobs:manage)', () => {
    let failedId: string;
    beforeAll(async () => {
      // A maintenance job that failed after its last try.
      const boss = await t.services.jobs.ready();
      failedId = (await boss.send(MAINTENANCE, { probe: true }, { retryLimit: 0, startAfter: 3_600 })) as string;
      await boss.fail(MAINTENANCE, failedId, { message: 'the store was away' });
    });

    it('lists the queues and the failed jobs with their errors, over REST and tRPC', async () => {
      const counts = await t.app.inject({ method: 'GET', url: '/api/admin/jobs', headers: bearer(admin) });
      expect(counts.statusCode).toBe(200);
      const queues = counts.json() as { queue: string; failed: number; ready: number }[];
      expect(queues.map((q) => q.queue)).toEqual(['email', 'storage-delete', 'publish-revocations', MAINTENANCE]);
      expect(queues.find((q) => q.queue === MAINTENANCE)?.failed).toBeGreaterThanOrEqual(1);
      const failed = await t.app.inject({
        method: 'GET',
        url: '/api/admin/jobs/failed?limit=5',
        headers: bearer(admin),
      });
      expect(failed.json()).toContainEqual(
        expect.objectContaining({
          id: failedId,
          queue: MAINTENANCE,
          error: 'the store was away',
          data: { probe: true },
        }),
      );
      const trpc = await t.app.inject({
        method: 'GET',
        url: `/trpc/admin.jobs.failed?input=${encodeURIComponent('{}')}`,
        headers: bearer(admin),
      });
      expect(trpc.json().result.data.map((job: { id: string }) => job.id)).toContain(failedId);
    });

    it('retries a failed job (queued again), then discards one for good; anything else is 404', async () => {
      const retry = await t.app.inject({
        method: 'POST',
        url: `/api/admin/jobs/${MAINTENANCE}/${failedId}/retry`,
        headers: bearer(admin),
      });
      expect(retry.json()).toEqual({ ok: true });
      const boss = await t.services.jobs.ready();
      expect((await boss.findJobs(MAINTENANCE, { id: failedId }))[0]?.state).not.toBe('failed');
      // No longer failed: neither retried nor discarded again.
      const again = await t.app.inject({
        method: 'POST',
        url: `/api/admin/jobs/${MAINTENANCE}/${failedId}/retry`,
        headers: bearer(admin),
      });
      expect([again.statusCode, again.json().appCode]).toEqual([404, 'NOT_FOUND']);

      const doomed = (await boss.send(MAINTENANCE, {}, { retryLimit: 0, startAfter: 3_600 })) as string;
      await boss.fail(MAINTENANCE, doomed, { message: 'gone' });
      const discard = await t.app.inject({
        method: 'POST',
        url: '/trpc/admin.jobs.discard',
        headers: bearer(admin),
        payload: { queue: MAINTENANCE, id: doomed },
      });
      expect(discard.json().result.data).toEqual({ ok: true });
      expect(await boss.findJobs(MAINTENANCE, { id: doomed })).toEqual([]);
      // Retried by another administrator while the discard runs (after it read the job's
      // state, or before its delete): the retry stands.
      const contested = (await boss.send(MAINTENANCE, {}, { retryLimit: 0, startAfter: 3_600 })) as string;
      await boss.fail(MAINTENANCE, contested, { message: 'gone' });
      let raced = false;
      const race = async () => {
        if (raced) return;
        raced = true;
        await t.services.jobs.retry(MAINTENANCE, contested);
      };
      const findJobs = boss.findJobs.bind(boss);
      const db = boss.getDb();
      const executeSql = db.executeSql.bind(db);
      boss.findJobs = (async (...args: Parameters<typeof findJobs>) => {
        const found = await findJobs(...args);
        await race();
        return found;
      }) as typeof boss.findJobs;
      db.executeSql = (async (text: string, values?: unknown[]) => {
        if (/^delete /i.test(text)) await race();
        return executeSql(text, values);
      }) as typeof db.executeSql;
      try {
        expect(await t.services.jobs.discard(MAINTENANCE, contested)).toBe(false); // before: true, the job gone
      } finally {
        boss.findJobs = findJobs;
        db.executeSql = executeSql;
      }
      expect(raced).toBe(true);
      expect((await findJobs(MAINTENANCE, { id: contested }))[0]?.state).toBe('retry');
      const missing = await t.app.inject({
        method: 'DELETE',
        url: `/api/admin/jobs/${MAINTENANCE}/${doomed}`,
        headers: bearer(admin),
      });
      expect([missing.statusCode, missing.json().appCode]).toEqual([404, 'NOT_FOUND']);
      const unknownQueue = await t.app.inject({
        method: 'DELETE',
        url: `/api/admin/jobs/nope/${doomed}`,
        headers: bearer(admin),
      });
      expect(unknownQueue.statusCode).toBe(400);
      for (const [method, url] of [
        ['POST', `/api/admin/jobs/${MAINTENANCE}/abc/retry`],
        ['DELETE', `/api/admin/jobs/${MAINTENANCE}/abc`],
      ] as const) {
        const notAnId = await t.app.inject({ method, url, headers: bearer(admin) });
        expect([notAnId.statusCode, notAnId.json().appCode]).toEqual([400, 'VALIDATION_FAILED']);
      }
    });

    it('is refused without jobs:manage', async () => {
      const user = await registerAccount(t.app);
      const denied = await t.app.inject({ method: 'GET', url: '/api/admin/jobs', headers: bearer(user) });
      expect(denied.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'jobs:manage' } });
    });
  });

  it('queues an email only if the transaction that causes it commits', async () => {
    const boss = await t.services.jobs.ready();
    const before = (await boss.findJobs('email')).length;
    await expect(
      t.services.db.transaction().execute(async (trx) => {
        await trx.insertInto('users').values({ email: 'rolled-back@example.com' }).execute();
        await enqueueEmail(t.services, { kind: 'welcome', email: 'rolled-back@example.com' }, { db: trx });
        throw new Error('the account could not be created');
      }),
    ).rejects.toThrow(/could not be created/);
    expect(await boss.findJobs('email')).toHaveLength(before);

    await t.services.db.transaction().execute(async (trx) => {
      await trx.insertInto('users').values({ email: 'committed@example.com' }).execute();
      await enqueueEmail(t.services, { kind: 'welcome', email: 'committed@example.com' }, { db: trx });
    });
    await t.settle();
    expect(t.mail.last('committed@example.com', 'welcome')).toBeDefined();
    expect(t.mail.to('rolled-back@example.com')).toEqual([]);
  });

  it('sends no welcome to an address whose account went before its job ran (deleted, disabled)', async () => {
    const deleted = uniqueEmail();
    const disabled = uniqueEmail();
    await t.services.db.insertInto('users').values({ email: disabled, disabled_at: new Date() }).execute();
    for (const email of [deleted, disabled]) await enqueueEmail(t.services, { kind: 'welcome', email });
    await t.settle();
    expect(t.mail.to(deleted)).toEqual([]);
    expect(t.mail.to(disabled)).toEqual([]);
  });

  it('registers an account and queues its verification email together: a refused sign-up queues nothing', async () => {
    const boss = await t.services.jobs.ready();
    const account = await registerAccount(t.app);
    await t.settle();
    expect(t.mail.last(account.email, 'verify-email')).toBeDefined();
    const before = (await boss.findJobs('email')).length;
    const taken = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { email: account.email, password: 'Another-pass-1' },
    });
    expect(taken.json().appCode).toBe('EMAIL_TAKEN');
    expect(await boss.findJobs('email')).toHaveLength(before);
  });

  it('sends a retried email job once, with the same link (derived from the job, not stored in it)', async () => {
    const account = await registerAccount(t.app);
    await t.settle();
    const boss = await t.services.jobs.ready();
    const [job] = (await boss.findJobs<{ userId?: string }>('email')).filter((j) => j.data.userId === account.id);
    expect(job?.data).toEqual({
      kind: 'verify-email',
      userId: account.id,
      locale: 'en',
      requestId: expect.any(String),
    });
    expect(JSON.stringify(job?.data)).not.toMatch(/token/);
    const first = t.mail.last(account.email, 'verify-email');
    // The same job run again (a worker that died after sending): the same email, sent once.
    await runEmailJob(t.services, { id: job?.id as string, data: job?.data as EmailJob });
    expect(t.mail.to(account.email).filter((m) => m.template === 'verify-email')).toHaveLength(1);
    expect(first?.idempotencyKey).toBe(job?.id);
    // And its link still works (the token was not replaced by the second run).
    const token = /token=([\w-]+)/.exec(first?.text ?? '')?.[1];
    const verified = await t.app.inject({
      method: 'POST',
      url: '/api/auth/email/verify',
      headers: bearer(account),
      payload: { token },
    });
    expect(verified.json()).toEqual({ ok: true });
  });

  it('pnpm worker runs jobs in a process of its own and stops gracefully on SIGTERM', async () => {
    // Its ready file (JOBS_READY_FILE), left by a worker that died: not ready until it takes jobs.
    const readyFile = path.join(mkdtempSync(path.join(tmpdir(), 'worker-')), 'ready');
    writeFileSync(readyFile, 'a worker that died\n');
    const worker = spawnCommand(process.execPath, [fileURLToPath(new URL('../src/worker.ts', import.meta.url))], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        LOG_FORMAT: 'json',
        DATABASE_URL: t.database.url,
        JOBS_POLL_INTERVAL: '1',
        JOBS_READY_FILE: readyFile,
        ...sharedRedisEnv(),
      },
    });
    try {
      await worker.waitFor(/worker ready/);
      expect(readFileSync(readyFile, 'utf8')).toBe(`${worker.process.pid}\n`);
      // Renewed while it runs (a liveness probe reads its age): made old here, it is new again.
      utimesSync(readyFile, 0, 0);
      await until(
        async () => statSync(readyFile).mtimeMs > Date.now() - 60_000,
        'the worker to renew its ready file',
        15_000,
      );
      const boss = await t.services.jobs.ready();
      const id = (await t.services.jobs.send(MAINTENANCE, {})) as string;
      await until(
        async () => (await boss.findJobs(MAINTENANCE, { id }))[0]?.state === 'completed',
        'the worker to run the job',
      );
      worker.process.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      expect(worker.output()).toMatch(/stopped/);
      expect(existsSync(readyFile)).toBe(false);
    } finally {
      worker.process.kill('SIGKILL');
      rmSync(path.dirname(readyFile), { recursive: true, force: true });
    }
  });
});

describe('the readiness probe in a process that only serves (JOBS_WORKER=off)', () => {
  it('reads the backlog without starting the job queue, before and after its schema exists', async () => {
    const t = await buildTestApp({ env: { JOBS_WORKER: 'off' } });
    const queueConnections = async () => {
      const { rows } = await sql<{ count: number }>`select count(*)::int as count from pg_stat_activity
        where datname = current_database() and application_name = 'app-jobs'`.execute(t.services.db);
      return rows[0]?.count;
    };
    try {
      // No process has installed pg-boss here: there is no backlog to read, and the probe says so.
      const fresh = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
      expect(fresh.statusCode).toBe(200);
      expect(fresh.json()).not.toHaveProperty('jobs');
      expect(await queueConnections()).toBe(0);

      // Once a job is queued (the queue starts for that), the same probe reads it.
      await t.services.jobs.send(MAINTENANCE, {});
      await sql`update pgboss.job set start_after = now() - interval '2 minutes'`.execute(t.services.db);
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the readiness cache
      const backlogged = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
      expect(backlogged.json().jobs).toEqual({ ready: 1, oldestWaitingSeconds: expect.any(Number) });
    } finally {
      await t.close();
    }
  });
});

/** An app whose own pool reaches Postgres directly, and a job queue that reaches it through a proxy the test controls. */
async function queueBehindProxy(
  options: Pick<
    ConstructorParameters<typeof JobQueue>[0],
    'connectTimeoutMs' | 'statementTimeoutMs' | 'pollingIntervalSeconds' | 'superviseIntervalSeconds'
  >,
) {
  const t = await buildTestApp({ env: { JOBS_WORKER: 'off' } });
  const target = new URL(t.database.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const viaProxy = new URL(t.database.url);
  viaProxy.port = String(proxy.port);
  const queue = new JobQueue(
    {
      url: viaProxy.toString(),
      db: t.services.db,
      log: createLogger({ level: 'silent', format: 'json' }),
      poolMax: 2,
      ...options,
    },
    QUEUES,
  );
  return { t, proxy, queue };
}

describe('a worker that cannot start (the database away)', () => {
  it('keeps trying, and runs the jobs once the database is back', async () => {
    const { t, proxy, queue } = await queueBehindProxy({
      connectTimeoutMs: 5_000,
      statementTimeoutMs: 30_000,
      pollingIntervalSeconds: 0.5,
      superviseIntervalSeconds: 1,
    });
    try {
      await t.services.db.insertInto('users').values({ email: 'patient@example.com' }).execute();
      proxy.cut();
      startWorkerWhenPossible({ ...t.services, jobs: queue }, 200);
      await new Promise((resolve) => setTimeout(resolve, 600)); // a few refused tries
      await t.services.jobs.send('email', { kind: 'welcome', email: 'patient@example.com' });
      proxy.restore();
      await until(async () => t.mail.last('patient@example.com', 'welcome'), 'the worker to start and send', 30_000);
    } finally {
      await queue.stop(1_000);
      await t.close();
      await proxy.close();
    }
  });
});

describe('a database that stops answering', () => {
  it("fails the administrators' job calls as the database being down (503), after DATABASE_STATEMENT_TIMEOUT_MS, never a hang", async () => {
    const { t, proxy, queue } = await queueBehindProxy({
      // Room for pg-boss's start and the first count on a loaded machine; four frozen calls ~12 s.
      connectTimeoutMs: 2_000,
      statementTimeoutMs: 2_000,
      pollingIntervalSeconds: 60,
      superviseIntervalSeconds: 60,
    });
    try {
      expect(await queue.counts()).toHaveLength(QUEUES.length);
      proxy.freeze();
      const id = '00000000-0000-4000-8000-000000000000';
      for (const call of [
        () => queue.counts(),
        () => queue.failed(5),
        () => queue.retry(MAINTENANCE, id),
        () => queue.discard(MAINTENANCE, id),
      ]) {
        const failure = await call().then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(unavailableDependency(failure)).toBe('database');
      }
    } finally {
      await proxy.close();
      await queue.stop(1_000);
      await t.close();
    }
  }, 30_000);
});

describe('a queue stopped while the database does not answer', () => {
  it('gives up on a start still waiting on the database, saying so, never a hang', async () => {
    const { t, proxy, queue } = await queueBehindProxy({
      connectTimeoutMs: 20_000,
      statementTimeoutMs: 30_000,
      pollingIntervalSeconds: 60,
      superviseIntervalSeconds: 60,
    });
    try {
      proxy.freeze();
      const starting = queue.ready().catch(() => undefined);
      await expect(queue.stop(200)).rejects.toThrow(
        "job queue: still starting when the shutdown's time ran out (waiting on the database)",
      );
      await proxy.close(); // the start fails now, and lets go of what it opened
      await starting;
    } finally {
      await proxy.close();
      await t.close();
    }
  });

  it('gives up on a stop whose last queries are still running, saying so', async () => {
    const { t, proxy, queue } = await queueBehindProxy({
      connectTimeoutMs: 5_000,
      statementTimeoutMs: 0,
      pollingIntervalSeconds: 60,
      superviseIntervalSeconds: 60,
    });
    try {
      const boss = await queue.ready();
      const held = await holdConnection(t.services.db, (query) => boss.getDb().executeSql(query));
      await expect(queue.stop(0)).rejects.toThrow(
        /^job queue: not stopped within \d+ ms \(its last queries still running\)$/,
      );
      await held.release();
    } finally {
      await proxy.close();
      await t.close();
    }
  });
});

describe('a worker killed in the middle of a send', () => {
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let t: TestApp;
  beforeAll(async () => {
    resend = await startFakeResend();
    // This app only queues: the emails go out from `pnpm worker` processes.
    t = await buildTestApp({ env: { JOBS_WORKER: 'off' } });
  });
  afterAll(async () => {
    await t.close();
    await resend.close();
  });

  const startWorkerProcess = (env: Record<string, string> = {}) =>
    spawnCommand(process.execPath, [fileURLToPath(new URL('../src/worker.ts', import.meta.url))], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        LOG_FORMAT: 'json',
        DATABASE_URL: t.database.url,
        RESEND_API_KEY: 're_test_kill',
        RESEND_BASE_URL: resend.url,
        EMAIL_SEND_TIMEOUT_MS: '60000',
        JOBS_POLL_INTERVAL: '1',
        JOBS_SUPERVISE_INTERVAL: '1',
        ...sharedRedisEnv(),
        ...env,
      },
    });

  it('readiness reports a backlog of jobs nobody runs (no worker here), and stays ready', async () => {
    const boss = await t.services.jobs.ready();
    const id = (await boss.send('maintenance', {})) as string;
    // Waiting for two minutes already.
    await boss
      .getDb()
      .executeSql(`update pgboss.job set start_after = now() - interval '2 minutes' where id = $1`, [id]);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the readiness cache
    const backlogged = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
    expect(backlogged.statusCode).toBe(200);
    expect(backlogged.json().jobs).toEqual({ ready: 1, oldestWaitingSeconds: expect.any(Number) });
    expect(backlogged.json().jobs.oldestWaitingSeconds).toBeGreaterThanOrEqual(119);
    await boss.deleteJob('maintenance', id);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const calm = await t.app.inject({ method: 'GET', url: '/api/health/ready' });
    expect(calm.json()).not.toHaveProperty('jobs');
  });

  it('stops at once on a second signal while a job holds its shutdown up', async () => {
    resend.setMode('accept-then-hang');
    const worker = startWorkerProcess({ SHUTDOWN_TIMEOUT_MS: '60000' });
    try {
      await worker.waitFor(/worker ready/);
      const account = await registerAccount(t.app);
      await until(async () => resend.received.some((email) => email.body.to === account.email), 'the send to start');
      worker.process.kill('SIGTERM');
      await worker.waitFor(/finishing the jobs in progress/);
      await new Promise((resolve) => setTimeout(resolve, 1_200)); // past the window of a repeated Ctrl-C
      worker.process.kill('SIGTERM');
      await worker.waitFor(/SIGTERM again: exiting now/);
      expect(await worker.exited).toBe(1);
    } finally {
      worker.process.kill('SIGKILL');
      resend.setMode('ok');
    }
  }, 60_000);

  it('is retried by another worker after its heartbeat lapses, and the email is delivered exactly once', async () => {
    resend.setMode('accept-then-hang');
    const first = startWorkerProcess();
    let second: ReturnType<typeof startWorkerProcess> | undefined;
    try {
      await first.waitFor(/worker ready/);
      const account = await registerAccount(t.app);
      // The provider has the email, but its answer never reaches the worker: kill -9 it now.
      await until(async () => resend.received.some((email) => email.body.to === account.email), 'the send to start');
      first.process.kill('SIGKILL');
      expect(await first.exited).toBeNull();
      resend.setMode('ok');

      second = startWorkerProcess();
      await second.waitFor(/worker ready/);
      const boss = await t.services.jobs.ready();
      const key = resend.received.find((email) => email.body.to === account.email)?.idempotencyKey as string;
      const job = await until(
        async () => {
          const [found] = await boss.findJobs('email', { id: key });
          return found?.state === 'completed' ? found : undefined;
        },
        'the email job to be retried and completed',
        60_000,
      );
      expect(job.retryCount).toBeGreaterThanOrEqual(1);
      const tries = resend.received.filter((email) => email.body.to === account.email);
      expect(tries.length).toBeGreaterThanOrEqual(2);
      expect(tries.every((email) => email.idempotencyKey === key)).toBe(true);
      expect(resend.delivered.filter((email) => email.body.to === account.email)).toHaveLength(1);
    } finally {
      first.process.kill('SIGKILL');
      second?.process.kill('SIGTERM');
      await second?.exited;
    }
  }, 90_000);
});
