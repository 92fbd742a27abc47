import { randomUUID } from 'node:crypto';
import type { Db } from '@app/db';
import { sql } from 'kysely';

/**
 * Polls `probe` every 100 ms until it returns a value (not undefined, null or false), and returns
 * it. A probe that throws (a server not listening yet) is tried again; past `timeoutMs` the
 * wait fails, naming what it waited for and the probe's last error.
 */
export async function until<T>(
  probe: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Until `count` queries of `db`'s database wait on a lock (a statement held behind another
 * transaction), or `pending` settles first (it never had to wait); gives up after 5 s.
 */
export async function untilWaitingOnLocks(db: Db, count: number, pending?: Promise<unknown>): Promise<void> {
  let settled = false;
  const done = () => {
    settled = true;
  };
  void pending?.then(done, done);
  for (let i = 0; i < 200 && !settled; i++) {
    const { rows } = await sql<{ waiting: number }>`
      select count(*)::int as waiting from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
    if ((rows[0]?.waiting ?? 0) >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Runs `call` while a transaction holds what `hold` wrote or locked, and commits it once `call`
 * waits on that lock (or has settled without waiting): another request's change that lands
 * while `call` is under way. Returns what `call` then answers.
 */
export async function whileHolding<T>(db: Db, hold: (trx: Db) => Promise<unknown>, call: () => Promise<T>): Promise<T> {
  let pending: Promise<T> | undefined;
  await db.transaction().execute(async (trx) => {
    await hold(trx);
    pending = call();
    await untilWaitingOnLocks(db, 1, pending);
  });
  return pending as Promise<T>;
}

/**
 * Runs a minute-long `pg_sleep` through `run` (a connection of the pool under test) and
 * returns once `observer` (another pool, on the same database) sees it running: a call in
 * flight that holds its connection, as one on a database that stopped answering would.
 * `release()` ends it (its backend terminated) and waits for the call to settle.
 */
export async function holdConnection(
  observer: Db,
  run: (query: string) => Promise<unknown>,
): Promise<{ release(): Promise<void> }> {
  const query = `select pg_sleep(60) -- held ${randomUUID()}`;
  const call = run(query).catch(() => undefined);
  const running = () =>
    sql<{ pid: number }>`select pid from pg_stat_activity
      where datname = current_database() and query = ${query}`.execute(observer);
  await until(async () => (await running()).rows.length > 0, 'the held query to run', 10_000);
  return {
    async release() {
      for (const { pid } of (await running()).rows) await sql`select pg_terminate_backend(${pid})`.execute(observer);
      await call;
    },
  };
}
