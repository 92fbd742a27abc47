import { randomUUID } from 'node:crypto';
import { createDb } from '@app/db';
import { createTestDatabase } from '@app/db/testing';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/infra/logger.ts';
import { createServices } from '../src/services.ts';
import { createTestKeyValueStore, testConfig } from './helpers/test-app.ts';

describe("the server's database pool", () => {
  it.each([
    ['prepares queries with parameters by default', {}, 1],
    ['runs them unnamed with DATABASE_PREPARED_STATEMENTS=false', { DATABASE_PREPARED_STATEMENTS: 'false' }, 0],
  ])('%s', async (_title, env, statements) => {
    const database = await createTestDatabase();
    const config = testConfig({ DATABASE_URL: database.url, JOBS_WORKER: 'off', ...env });
    const kv = createTestKeyValueStore();
    const services = await createServices(config, createLogger({ level: 'silent', format: 'json' }), database.url, {
      kv,
    });
    try {
      // One connection of the pool: the statements it holds.
      const held = await services.db.connection().execute(async (db) => {
        for (let i = 0; i < 2; i++)
          await db.selectFrom('notes').select('id').where('owner_id', '=', randomUUID()).execute();
        return (await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements`.execute(db)).rows[0]?.n;
      });
      expect(held).toBe(statements);
    } finally {
      await services.close();
      await kv.cleanup();
      await database.drop();
    }
  });

  it("is closed when the job queue fails to stop: the queue's failure is the answer", async () => {
    const database = await createTestDatabase();
    const config = testConfig({ DATABASE_URL: database.url, JOBS_WORKER: 'off' });
    const kv = createTestKeyValueStore();
    const services = await createServices(config, createLogger({ level: 'silent', format: 'json' }), database.url, {
      kv,
    });
    try {
      await sql`select 1`.execute(services.db); // a connection in the pool
      services.jobs.stop = () => Promise.reject(new Error('the queue would not stop'));
      await expect(services.close()).rejects.toThrow('the queue would not stop');
      // Before: the pool stayed open, its connection with it (and held the process up).
      const watcher = createDb({ url: database.url, poolMax: 1, applicationName: 'watcher' });
      const { rows } = await sql<{ open: number }>`
        select count(*)::int as open from pg_stat_activity
        where datname = current_database() and application_name like 'app-server@%'`.execute(watcher);
      await watcher.destroy();
      expect(rows[0]?.open).toBe(0);
    } finally {
      await kv.cleanup();
      await database.drop();
    }
  });

  it("is left to the process's exit when a connection does not close (a query the database never answers), saying so", async () => {
    const database = await createTestDatabase();
    const config = testConfig({ DATABASE_URL: database.url, JOBS_WORKER: 'off' });
    const kv = createTestKeyValueStore();
    const services = await createServices(config, createLogger({ level: 'silent', format: 'json' }), database.url, {
      kv,
    });
    const watcher = createDb({ url: database.url, poolMax: 1, applicationName: 'watcher' });
    const sleeping = () =>
      sql<{ pid: number }>`
        select pid from pg_stat_activity
        where datname = current_database() and query like 'select pg_sleep(60)%'`.execute(watcher);
    try {
      // A query that holds its connection for a minute: the pool cannot end before it does.
      const held = sql`select pg_sleep(60)`.execute(services.db).catch(() => undefined);
      await expect.poll(async () => (await sleeping()).rows.length).toBe(1);
      await expect(services.close()).rejects.toThrow(
        /^database: connections not closed within \d+ ms \(calls still in flight\)/,
      );
      for (const { pid } of (await sleeping()).rows) await sql`select pg_terminate_backend(${pid})`.execute(watcher);
      await held;
    } finally {
      await watcher.destroy();
      await kv.cleanup();
      await database.drop();
    }
  });
});
