import { randomUUID } from 'node:crypto';
import { createDb } from '@app/db';
import { createTestDatabase } from '@app/db/testing';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/infra/logger.ts';
import { createServices } from '../src/services.ts';
import { holdConnection } from './helpers/index.ts';
import { createTestKeyValueStore, testConfig } from './helpers/test-app.ts';

/** The server's services on a database of their own (no job worker), with what to clean up. */
async function servicesOnTestDatabase(env: Record<string, string> = {}) {
  const database = await createTestDatabase();
  const config = testConfig({ DATABASE_URL: database.url, JOBS_WORKER: 'off', ...env });
  const kv = createTestKeyValueStore();
  const services = await createServices(config, createLogger({ level: 'silent', format: 'json' }), database.url, {
    kv,
  });
  return {
    database,
    services,
    async cleanup() {
      await kv.cleanup();
      await database.drop();
    },
  };
}

describe("the server's database pool", () => {
  it.each([
    ['prepares queries with parameters by default', {}, 1],
    ['runs them unnamed with DATABASE_PREPARED_STATEMENTS=false', { DATABASE_PREPARED_STATEMENTS: 'false' }, 0],
  ])('%s', async (_title, env, statements) => {
    const { services, cleanup } = await servicesOnTestDatabase(env);
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
      await cleanup();
    }
  });

  it("is closed when the job queue fails to stop: the queue's failure is the answer", async () => {
    const { database, services, cleanup } = await servicesOnTestDatabase();
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
      await cleanup();
    }
  });

  it("is left to the process's exit when a connection does not close (a query the database never answers), saying so", async () => {
    const { database, services, cleanup } = await servicesOnTestDatabase();
    const watcher = createDb({ url: database.url, poolMax: 1, applicationName: 'watcher' });
    try {
      const held = await holdConnection(watcher, (query) => sql.raw(query).execute(services.db));
      await expect(services.close()).rejects.toThrow(
        /^database: connections not closed within \d+ ms \(calls still in flight\)/,
      );
      await held.release();
    } finally {
      await watcher.destroy();
      await cleanup();
    }
  });
});
