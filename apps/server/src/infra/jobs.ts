/**
 * Durable background jobs in Postgres (pg-boss): a job outlives the process that queued it,
 * is retried with exponential backoff up to its queue's limit, and is kept as failed, with its
 * error, after the last try. pg-boss polls with SKIP LOCKED (any number of workers, each job
 * to one of them) and installs and migrates its own schema (`JOBS_SCHEMA`, `pgboss`) at start, under a
 * transaction-scoped advisory lock. The queue starts on first use, so a process that never touches it pays nothing.
 */
import { JOBS_SCHEMA } from '@app/db';
import { type QueryExecutorProvider, sql } from 'kysely';
import type { KyselyTransactionLike, PgBoss, Queue } from 'pg-boss';
import { isoTime } from './iso-time.ts';
import type { Logger } from './logger.ts';
import { withTimeout } from './with-timeout.ts';

/** pg-boss's table of jobs, which the queries below read and change beside its API. */
const JOBS_TABLE = `${JOBS_SCHEMA}.job`;

/** pg-boss, loaded with the queue's first use: a server that never queues a job never pays for it. */
const loadPgBoss = () => import('pg-boss');

export interface QueueDefinition {
  name: string;
  /** Tries after the first (exponential backoff from `retryDelaySeconds`, capped at `retryDelayMaxSeconds`). */
  retryLimit: number;
  retryDelaySeconds: number;
  retryDelayMaxSeconds: number;
  /** A try that runs longer than this is failed (and retried). */
  expireInSeconds: number;
  /**
   * A try whose worker stops beating this long (killed, frozen) is failed and retried, found
   * by the supervisor (`superviseIntervalSeconds`) long before `expireInSeconds`. At least 10.
   */
  heartbeatSeconds?: number;
  /**
   * A try that may stop part-way and leave the rest to the next (maintenance): as its process
   * begins to stop, its signal aborts, and a try that ends by it goes back to the queue unspent.
   * Tries of other queues (an email being sent) are given the shutdown's time to finish.
   */
  resumable?: boolean;
}

export interface JobCounts {
  queue: string;
  /** Waiting to run now (new, or a retry whose delay is over). */
  ready: number;
  /** Waiting for a later time (a retry's backoff, a scheduled start). */
  deferred: number;
  active: number;
  /** Failed after the last try, kept for the retention period. */
  failed: number;
}

export interface FailedJob {
  id: string;
  queue: string;
  data: unknown;
  error: string;
  tries: number;
  createdAt: string;
  failedAt: string | null;
}

export type JobHandler = (job: { id: string; data: unknown; signal: AbortSignal; retryCount: number }) => Promise<void>;

export interface JobQueueOptions {
  url: string;
  /**
   * The app's own pool, for the backlog the readiness probe reads: a probe must not load and
   * start pg-boss (its schema check, its queues, its timers) in a process that only serves.
   */
  db: QueryExecutorProvider;
  log: Logger;
  /** Connections pg-boss may hold (its own pool, beside the app's). */
  poolMax: number;
  /** How long to wait for a connection (DATABASE_CONNECT_TIMEOUT_MS, as the app's pool). */
  connectTimeoutMs: number;
  /**
   * Server-side limit for one statement, and (a second later) the client's own limit for an
   * answer, which holds when the server cannot enforce its own (frozen): DATABASE_STATEMENT_TIMEOUT_MS,
   * 0 for none.
   */
  statementTimeoutMs: number;
  /** Seconds between polls for new jobs, when idle. */
  pollingIntervalSeconds: number;
  /** Seconds between checks for tries whose worker died (missed heartbeats, expiry). */
  superviseIntervalSeconds: number;
}

/**
 * Of a shutdown's time for the jobs in progress, what is kept for handing back the tries the
 * deadline cuts off; then pg-boss's own stop has as long for its workers' last cleanup.
 */
const STOP_MARGIN_MS = 1_000;

/** pg-boss's stop after its grace: its last queries and the closing of its pool (milliseconds when the database answers). */
const POOL_STOP_MS = 2_000;

export class JobQueue {
  readonly #options: JobQueueOptions;
  readonly #queues: QueueDefinition[];
  #starting: Promise<PgBoss> | undefined;
  readonly #workers: string[] = [];
  /** Queues this process already works (a retried start registers each once). */
  readonly #working = new Set<string>();
  #stopped = false;
  /** Whether this process still takes jobs (`stopTaking`). */
  #taking = true;
  /** Aborted as this process begins to stop: the tries of resumable queues end early, unspent. */
  readonly #leaving = new AbortController();
  /** Tries in progress in this process, by job id: those a shutdown's deadline cuts off are handed back. */
  readonly #running = new Map<string, { name: string; retryCount: number; done: Promise<unknown> }>();

  constructor(options: JobQueueOptions, queues: QueueDefinition[]) {
    this.#options = options;
    this.#queues = queues;
  }

  /** Whether `stop` or `stopTaking` was called (a start being retried gives up). */
  get stopped(): boolean {
    return this.#stopped || !this.#taking;
  }

  /** Connects, installs or migrates the schema, and creates the queues (once). */
  ready(): Promise<PgBoss> {
    // A start that failed (the database away) is tried again by the next caller.
    this.#starting ??= (async () => {
      const { PgBoss } = await loadPgBoss();
      const boss = new PgBoss({
        connectionString: this.#options.url,
        schema: JOBS_SCHEMA,
        max: this.#options.poolMax,
        connectionTimeoutMillis: this.#options.connectTimeoutMs,
        // Passed on to pg's pool (pg-boss's types name only some of its options): no call waits
        // on a database that stopped answering, as with the app's own pool (@app/db createDb).
        ...(this.#options.statementTimeoutMs > 0 &&
          ({
            statement_timeout: this.#options.statementTimeoutMs,
            query_timeout: this.#options.statementTimeoutMs + 1_000,
          } as object)),
        application_name: 'app-jobs',
        superviseIntervalSeconds: this.#options.superviseIntervalSeconds,
        // The pass that fails the tries of dead workers runs at most this often per queue.
        monitorIntervalSeconds: this.#options.superviseIntervalSeconds,
        // Polling only: LISTEN needs a session-pinned connection, which a transaction-mode pooler lacks.
        useListenNotify: false,
      });
      boss.on('error', (error: Error) => this.#options.log.warn({ err: error }, `job queue: ${error.message}`));
      try {
        await this.#install(boss);
      } catch (error) {
        // Half started: let go of its connections and timers before the next try makes another.
        await boss.stop({ graceful: false }).catch(() => undefined);
        throw error;
      }
      return boss;
    })();
    const starting = this.#starting;
    starting.catch(() => {
      if (this.#starting === starting) this.#starting = undefined;
    });
    return starting;
  }

  async #install(boss: PgBoss): Promise<void> {
    await boss.start();
    for (const queue of this.#queues) {
      const options: Omit<Queue, 'name'> = {
        retryLimit: queue.retryLimit,
        retryDelay: queue.retryDelaySeconds,
        retryDelayMax: queue.retryDelayMaxSeconds,
        retryBackoff: true,
        expireInSeconds: queue.expireInSeconds,
        ...(queue.heartbeatSeconds && { heartbeatSeconds: queue.heartbeatSeconds }),
      };
      if (await boss.getQueue(queue.name)) await boss.updateQueue(queue.name, options);
      else await boss.createQueue(queue.name, options);
    }
  }

  #definition(name: string): QueueDefinition {
    const queue = this.#queues.find((q) => q.name === name);
    if (!queue) throw new Error(`No job queue "${name}"`);
    return queue;
  }

  /**
   * Queues a job. With `db` (a Kysely transaction), the job is written in that transaction:
   * it exists only if the transaction commits. `id` lets the caller know the id in advance.
   */
  async send(
    name: string,
    data: object,
    options: {
      db?: KyselyTransactionLike | undefined;
      id?: string | undefined;
      singletonKey?: string;
      /** Tries after the first, for this job (else the queue's `retryLimit`). */
      retryLimit?: number;
    } = {},
  ): Promise<string | null> {
    this.#definition(name);
    const { db, ...rest } = options;
    const boss = await this.ready();
    const { fromKysely } = await loadPgBoss();
    return boss.send(name, data, { ...rest, ...(db && { db: fromKysely(db) }) });
  }

  /** Runs `name` on a cron schedule, once across every process (pg-boss keeps one schedule per name). */
  async schedule(name: string, cron: string): Promise<void> {
    this.#definition(name);
    await (await this.ready()).schedule(name, cron, {}, { tz: 'UTC' });
  }

  /** Takes jobs of `name` in this process, `concurrency` at a time. */
  async work(name: string, concurrency: number, handler: JobHandler): Promise<void> {
    const { resumable = false } = this.#definition(name);
    if (this.#working.has(name)) return;
    const boss = await this.ready();
    if (this.#stopped || !this.#taking) return;
    this.#working.add(name);
    const id = await boss.work(
      name,
      { localConcurrency: concurrency, pollingIntervalSeconds: this.#options.pollingIntervalSeconds },
      async ([job]) => {
        if (!job) return;
        const { retryCount } = job;
        const signal = resumable ? AbortSignal.any([job.signal, this.#leaving.signal]) : job.signal;
        const done = handler({ id: job.id, data: job.data, signal, retryCount });
        this.#running.set(job.id, { name, retryCount, done });
        try {
          await done;
        } catch (error) {
          // Ended by this process's stop, part-way: the rest is the next try's, and this one is not spent.
          // (By its stop alone: a run that failed for another reason meanwhile spends its try.)
          const leftForNext =
            resumable && this.#leaving.signal.aborted && !job.signal.aborted && error === signal.reason;
          if (!leftForNext || !(await this.#handBack([{ id: job.id, name, retryCount }]))) throw error;
        } finally {
          // (Another try of the job may run here since, its claim having lapsed: that one stays.)
          if (this.#running.get(job.id)?.done === done) this.#running.delete(job.id);
        }
      },
    );
    this.#workers.push(id);
    // (Told to stop taking jobs while pg-boss set the worker up.)
    if (!this.#taking) await boss.offWork(name, { wait: false });
  }

  /**
   * Puts tries in progress here back in the queue, to run again at once, wherever a worker
   * takes them, without spending a try: the retry limit grows by the one handed back. The
   * next claim counts a try more (pg-boss names a try by its count), so this process's
   * handler, should it still end, settles nothing (pg-boss's fence). False if none was
   * handed back (the database away: the try is then failed, or its heartbeat lapses).
   */
  async #handBack(tries: { id: string; name: string; retryCount: number }[]): Promise<boolean> {
    try {
      const boss = await this.ready();
      const { rows } = await boss.getDb().executeSql(
        `update ${JOBS_TABLE} j set state = 'retry', start_after = now(), heartbeat_on = null,
           retry_limit = j.retry_limit + 1
           from unnest($1::text[], $2::uuid[], $3::int[]) as t(name, id, retry_count)
           where j.name = t.name and j.id = t.id and j.retry_count = t.retry_count and j.state = 'active'
           returning j.id`,
        [tries.map((t) => t.name), tries.map((t) => t.id), tries.map((t) => t.retryCount)],
      );
      if (rows.length > 0) {
        this.#options.log.info(
          { jobs: rows.map((row) => row.id) },
          `job queue: ${rows.length} job(s) in progress handed back to the queue, unspent`,
        );
      }
      return rows.length > 0;
    } catch (error) {
      this.#options.log.warn({ err: error }, `job queue: the jobs in progress could not be handed back: ${error}`);
      return false;
    }
  }

  /**
   * Takes no more jobs in this process; those in progress go on, and jobs can still be sent
   * (a request still being answered may queue one). A shutdown's first step: a job taken
   * while the requests drain would be cut off at the deadline, a try spent on nothing.
   */
  async stopTaking(): Promise<void> {
    await this.#leave({ wait: false });
  }

  /** Takes no more jobs, tells resumable tries to stop, and (`wait`) waits for each worker's loop to end with its try. */
  async #leave({ wait }: { wait: boolean }): Promise<void> {
    this.#taking = false;
    this.#leaving.abort();
    const boss = await this.#starting?.catch(() => undefined);
    if (boss) await Promise.allSettled([...this.#working].map((name) => boss.offWork(name, { wait })));
  }

  /**
   * Waits until no job of `queues` is ready or running (a retry waiting out its backoff does
   * not count), waking this process's workers meanwhile: what a test awaits before it reads
   * what the jobs did.
   */
  async settle(queues: string[], timeoutMs = 20_000): Promise<void> {
    if (!this.#starting) return;
    const boss = await this.ready();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const id of this.#workers) boss.notifyWorker(id);
      const counts = (await this.counts()).filter((count) => queues.includes(count.queue));
      if (counts.every((count) => count.ready + count.active === 0)) return;
      if (Date.now() > deadline) throw new Error(`jobs of ${queues.join(', ')} still pending after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Counted from the job table at once (pg-boss's own queue counts are refreshed by its monitor, later). */
  async counts(): Promise<JobCounts[]> {
    const boss = await this.ready();
    const names = this.#queues.map((q) => q.name);
    const { rows } = await boss.getDb().executeSql(
      `select name,
         count(*) filter (where state in ('created', 'retry') and start_after <= now())::int as ready,
         count(*) filter (where state in ('created', 'retry') and start_after > now())::int as deferred,
         count(*) filter (where state = 'active')::int as active,
         count(*) filter (where state = 'failed')::int as failed
       from ${JOBS_TABLE} where name = any($1) group by name`,
      [names],
    );
    const byName = new Map(rows.map((row) => [row.name as string, row]));
    return names.map((queue) => {
      const row = byName.get(queue);
      return {
        queue,
        ready: row?.ready ?? 0,
        deferred: row?.deferred ?? 0,
        active: row?.active ?? 0,
        failed: row?.failed ?? 0,
      };
    });
  }

  /**
   * Jobs waiting to run now, and how long the oldest of them has waited. Read through the
   * app's pool without starting the queue: before any process has installed pg-boss's schema
   * the query fails (the probe then reports no backlog).
   */
  async backlog(): Promise<{ ready: number; oldestWaitingSeconds: number }> {
    const { rows } = await sql<{ ready: number; oldest: number }>`
      select count(*)::int as ready,
        coalesce(extract(epoch from now() - min(start_after)), 0)::int as oldest
      from ${sql.table(JOBS_TABLE)} where state in ('created', 'retry') and start_after <= now()
        and name = any(${this.#queues.map((q) => q.name)})`.execute(this.#options.db);
    return { ready: Number(rows[0]?.ready ?? 0), oldestWaitingSeconds: Number(rows[0]?.oldest ?? 0) };
  }

  /** Failed jobs (after their last try), the latest first, with the error each ended with. */
  async failed(limit: number): Promise<FailedJob[]> {
    const boss = await this.ready();
    // pg-boss lists jobs oldest first and by queue: the latest failures across queues are one query.
    const { rows } = await boss.getDb().executeSql(
      `select id, name, data, output, retry_count, created_on, completed_on from ${JOBS_TABLE}
         where state = 'failed' and name = any($1) order by completed_on desc nulls last, id desc limit $2`,
      [this.#queues.map((q) => q.name), limit],
    );
    return rows.map((row) => ({
      id: row.id,
      queue: row.name,
      data: row.data,
      error: errorText(row.output),
      tries: Number(row.retry_count) + 1,
      createdAt: isoTime(new Date(row.created_on)),
      failedAt: row.completed_on ? isoTime(new Date(row.completed_on)) : null,
    }));
  }

  /**
   * Queues a failed job again with as many tries as a new one (the queue's `retryLimit` after
   * the first); false when it is not failed. (pg-boss's own `retry` gives one more try.) The
   * count of tries goes on, as pg-boss names each try by it: the limit is raised instead. It
   * is kept as long again as when it was new: pg-boss deletes a waiting job past its
   * `keep_until`, which a job failed long ago is.
   */
  async retry(queue: string, id: string): Promise<boolean> {
    const { retryLimit } = this.#definition(queue);
    const boss = await this.ready();
    const { rows } = await boss.getDb().executeSql(
      `update ${JOBS_TABLE} set state = 'retry', retry_limit = retry_count + 1 + $3, completed_on = null,
         start_after = now(), keep_until = greatest(keep_until, now() + (keep_until - created_on))
         where name = $1 and id = $2 and state = 'failed' returning id`,
      [queue, id, retryLimit],
    );
    return rows.length > 0;
  }

  /**
   * Deletes a failed job for good; false when it is not failed. One statement: a job retried
   * (or taken by a worker) between a read of its state and a delete is not lost.
   */
  async discard(queue: string, id: string): Promise<boolean> {
    this.#definition(queue);
    const boss = await this.ready();
    const { rows } = await boss
      .getDb()
      .executeSql(`delete from ${JOBS_TABLE} where name = $1 and id = $2 and state = 'failed' returning id`, [
        queue,
        id,
      ]);
    return rows.length > 0;
  }

  /**
   * Stops taking jobs. The tries in progress finish (up to `timeoutMs`), or are handed back
   * to the queue at the deadline, unspent, for another worker to run; resumable ones are told
   * to stop at once. A database that stopped answering holds it up no longer than the
   * deadline (a start under way, a second at least), or the hand-back's second and pg-boss's
   * stop's three past it: it rejects, saying which.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopped = true;
    const starting = this.#starting;
    if (!starting) return;
    const deadline = Date.now() + timeoutMs;
    // A start still under way has taken no job yet; a database that stopped answering may
    // never let it end. (A moment at least, when the requests took the shutdown's time.)
    const boss = await withTimeout(
      () => starting.catch(() => undefined),
      Math.max(timeoutMs, STOP_MARGIN_MS),
      () => new Error("job queue: still starting when the shutdown's time ran out (waiting on the database)"),
    ).catch((error: unknown) => {
      // Should it start after all, it stops at once: none of its timers or connections run on.
      starting.then((late) => late.stop({ graceful: false })).catch(() => undefined);
      throw error;
    });
    if (!boss) return;
    // Each worker's loop ends with its try (one a poll in flight claims included), or the grace does.
    const leaving = this.#leave({ wait: true });
    await withTimeout(() => leaving, Math.max(0, deadline - Date.now() - STOP_MARGIN_MS)).catch(() => undefined);
    const cutOff = [...this.#running].map(([id, { name, retryCount }]) => ({ id, name, retryCount }));
    // (A database that does not answer leaves them to pg-boss, whose stop below fails them.)
    if (cutOff.length > 0) await withTimeout(() => this.#handBack(cutOff), STOP_MARGIN_MS).catch(() => undefined);
    // pg-boss fails what is still in progress as it stops: a try handed back is no longer its to fail.
    // Its stop ends in queries and the closing of its pool, which a database that stopped
    // answering never finishes: then its connections are left to the process's exit.
    await withTimeout(
      () => boss.stop({ graceful: true, timeout: STOP_MARGIN_MS }),
      STOP_MARGIN_MS + POOL_STOP_MS,
      () =>
        new Error(`job queue: not stopped within ${STOP_MARGIN_MS + POOL_STOP_MS} ms (its last queries still running)`),
    );
  }
}

function errorText(output: unknown): string {
  const value = output as { message?: unknown } | null | undefined;
  if (typeof value?.message === 'string') return value.message;
  return output === null || output === undefined ? 'unknown error' : JSON.stringify(output).slice(0, 2_000);
}
