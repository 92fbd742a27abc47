import { randomUUID } from 'node:crypto';
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
});
