import { readdir } from 'node:fs/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../src/client.ts';
import { migrateToLatest, migrationStatus, migrationsDir, pendingMigrations, rollback } from '../src/migrate.ts';
import { createEmptyTestDatabase, type TestDatabase } from '../src/testing.ts';

async function tables(db: Db): Promise<string[]> {
  const { rows } = await sql<{ tablename: string }>`
    select tablename from pg_tables where schemaname = 'public' and tablename not like 'kysely_%' order by 1`.execute(
    db,
  );
  return rows.map((row) => row.tablename);
}

describe('migrations', () => {
  let database: TestDatabase;
  let db: Db;

  beforeAll(async () => {
    database = await createEmptyTestDatabase();
    db = createDb({ url: database.url, poolMax: 2 });
  });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  it('go up to latest, down to zero, and up again on a fresh database', async () => {
    const files = (await readdir(migrationsDir)).filter((file) => file.endsWith('.ts'));
    expect(await pendingMigrations(db)).toHaveLength(files.length);

    const up = await migrateToLatest(db);
    expect(up.map((step) => step.name)).toEqual(files.map((file) => file.replace(/\.ts$/, '')).sort());
    expect(await pendingMigrations(db)).toEqual([]);
    expect(await tables(db)).toContain('users');

    const down = await rollback(db, Number.POSITIVE_INFINITY);
    expect(down).toHaveLength(files.length);
    expect(down.every((step) => step.direction === 'Down')).toBe(true);
    expect(await tables(db)).toEqual([]);
    const { rows: functions } = await sql<{ proname: string }>`
      select proname from pg_proc where proname in ('uuid_generate_v7', 'set_updated_at')`.execute(db);
    expect(functions).toEqual([]);

    await migrateToLatest(db);
    expect((await migrationStatus(db)).every((m) => m.executedAt instanceof Date)).toBe(true);
  });

  it('counts every migration pending on a database with no migration table, and creates none', async () => {
    const empty = await createEmptyTestDatabase();
    const emptyDb = createDb({ url: empty.url, poolMax: 1 });
    try {
      const files = (await readdir(migrationsDir)).filter((file) => file.endsWith('.ts'));
      expect(await pendingMigrations(emptyDb)).toHaveLength(files.length);
      const { rows } = await sql<{ tablename: string }>`
        select tablename from pg_tables where tablename like 'kysely_%'`.execute(emptyDb);
      expect(rows).toEqual([]);
    } finally {
      await emptyDb.destroy();
      await empty.drop();
    }
  });

  it('fails, rather than calling everything pending, when the database cannot be asked', async () => {
    const missing = new URL(database.url);
    missing.pathname = '/no_such_database_for_migrations';
    const unreachable = createDb({ url: missing.href, poolMax: 1 });
    try {
      await expect(pendingMigrations(unreachable)).rejects.toThrow(/does not exist/);
    } finally {
      await unreachable.destroy();
    }
  });

  it('rolls back one step at a time and reports nothing to do at zero', async () => {
    await migrateToLatest(db);
    const [last] = await rollback(db, 1);
    expect(last?.direction).toBe('Down');
    expect(await pendingMigrations(db)).toEqual([last?.name]);
    await rollback(db, Number.POSITIVE_INFINITY);
    expect(await rollback(db, 1)).toEqual([]);
    expect(await migrateToLatest(db)).not.toHaveLength(0);
    expect(await migrateToLatest(db)).toEqual([]);
  });
});
