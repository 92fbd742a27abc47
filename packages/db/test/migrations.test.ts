import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  CreateIndexNode,
  CreateTableNode,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  sql,
  type UnknownRow,
} from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../src/client.ts';
import {
  createMigrator,
  loadMigrations,
  migrateToLatest,
  migrationFiles,
  migrationStatus,
  migrationsDir,
  newMigrationFile,
  pendingMigrations,
  rollback,
} from '../src/migrate.ts';
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

  it('counts the live unused links made before 20261210000100 as sent when they were made (a link sent later retires them)', async () => {
    const { error } = await createMigrator(db).migrateTo('20261210000000_count_upload_urls_until_they_expire');
    expect(error).toBeUndefined();
    const [user] = await sql<{ id: string }>`insert into users (email) values ('early@example.com') returning id`
      .execute(db)
      .then((result) => result.rows);
    const made = new Date(Date.now() - 60_000);
    const link = (hash: string, expires: string, used: Date | null) =>
      sql`insert into user_tokens (user_id, purpose, token_hash, created_at, expires_at, used_at)
        values (${user?.id}, 'reset-password', ${hash}, ${made}, now() + ${expires}::interval, ${used})`.execute(db);
    await link('live', '1 hour', null);
    await link('used', '1 hour', made);
    await link('expired', '-1 minute', null);
    await migrateToLatest(db);
    const { rows } = await sql<{ token_hash: string; sent_at: Date | null }>`
      select token_hash, sent_at from user_tokens order by token_hash`.execute(db);
    expect(rows).toEqual([
      { token_hash: 'expired', sent_at: null },
      { token_hash: 'live', sent_at: made },
      { token_hash: 'used', sent_at: null },
    ]);
    await sql`delete from users`.execute(db); // (the tests after this one migrate an empty database)
  });
});

describe('a new migration’s name (pnpm db:new)', () => {
  const at = new Date('2026-12-07T13:05:09.750Z');
  it('is timestamped now, in UTC to the second', () => {
    expect(newMigrationFile('add_projects', [], at)).toBe('20261207130509_add_projects.ts');
    expect(newMigrationFile('add_projects', ['20261207130508_older.ts'], at)).toBe('20261207130509_add_projects.ts');
  });

  it('sorts after the newest migration when that one is dated now or later (Kysely refuses one out of order)', () => {
    expect(newMigrationFile('x', ['20261101000000_a.ts', '20261207130509_b.ts'], at)).toBe('20261207130510_x.ts');
    expect(newMigrationFile('x', ['20261210000000_ahead.ts'], at)).toBe('20261210000001_x.ts');
    expect(newMigrationFile('x', ['20261231235959_year_end.ts'], at)).toBe('20270101000000_x.ts');
  });

  it('sorts last among the migrations of this repository, whatever the clock says', async () => {
    const files = await migrationFiles();
    for (const now of [new Date('2000-01-01T00:00:00Z'), new Date()]) {
      const name = newMigrationFile('probe', files, now);
      expect([...files, name].sort().at(-1)).toBe(name);
    }
  });
});

/**
 * Notes each index a migration builds on a table it did not create while it holds that table
 * in ACCESS EXCLUSIVE (taken by `alter table`, `drop index`...): the build reads the whole
 * table, and every query of it waits for the migration to commit. The locks are read from
 * another connection after each statement (so before the next one).
 */
class IndexBuildWatch implements KyselyPlugin {
  readonly created = new Set<string>();
  readonly builtUnderLock: string[] = [];
  #exclusive: string[] = [];
  readonly #locked: () => Promise<string[]>;
  constructor(locked: () => Promise<string[]>) {
    this.#locked = locked;
  }
  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    if (CreateTableNode.is(node)) this.created.add(node.table.table.identifier.name);
    if (CreateIndexNode.is(node) && node.table) {
      const table = node.table.table.identifier.name;
      if (!this.created.has(table) && this.#exclusive.includes(table)) {
        this.builtUnderLock.push(`${node.name.name} on ${table}`);
      }
    }
    return node;
  }
  async transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    this.#exclusive = await this.#locked();
    return result;
  }
}

describe('what a migration locks', () => {
  let database: TestDatabase;
  let db: Db;
  let observer: Db;
  beforeAll(async () => {
    database = await createEmptyTestDatabase();
    db = createDb({ url: database.url, poolMax: 1 });
    observer = createDb({ url: database.url, poolMax: 1 });
  });
  afterAll(async () => {
    await db.destroy();
    await observer.destroy();
    await database.drop();
  });

  it('builds no index on an existing table while that table’s reads wait for it (up and down)', async () => {
    const locked = async () => {
      const { rows } = await sql<{ name: string }>`
        select c.relname as name from pg_locks l join pg_class c on c.oid = l.relation
        where l.mode = 'AccessExclusiveLock' and l.granted and l.pid <> pg_backend_pid()
          and l.database = (select oid from pg_database where datname = current_database())`.execute(observer);
      return rows.map((row) => row.name);
    };
    // Written before anyone could have had a large table to lock: applied by every database
    // since, so changing it now would reach none (the users index is on a column it adds).
    const before = new Set(['20261130000100_create_files up: users_avatar_file_id_idx on users']);
    const found: string[] = [];
    for (const [name, migration] of Object.entries(await loadMigrations())) {
      for (const [direction, step] of [
        ['up', migration.up],
        ['down', migration.down ?? (async () => {})],
        ['up', migration.up],
      ] as const) {
        const watch = new IndexBuildWatch(locked);
        await db.transaction().execute((trx) => step(trx.withPlugin(watch)));
        found.push(...watch.builtUnderLock.map((build) => `${name} ${direction}: ${build}`));
      }
    }
    expect(found.filter((build) => !before.has(build))).toEqual([]);
    expect(new Set(found)).toEqual(before); // the watch sees a build under the lock
  });
});

describe('the limits a migration runs under', () => {
  let database: TestDatabase;
  let folder: string;
  beforeAll(async () => {
    database = await createEmptyTestDatabase();
    folder = await mkdtemp(path.join(os.tmpdir(), 'migrations-'));
  });
  afterAll(async () => {
    await database.drop();
    await rm(folder, { recursive: true, force: true });
  });
  const migration = (name: string, up: string) =>
    writeFile(
      path.join(folder, `${name}.ts`),
      `export async function up(db) { ${up} }\nexport async function down() {}\n`,
    );

  it("lets a migration run longer than the pool's statement timeout (an index on a large table)", async () => {
    await migration(
      '20260101000000_slow',
      "await db.selectNoFrom((eb) => eb.fn('pg_sleep', [eb.val(0.5)]).as('slept')).execute();",
    );
    const db = createDb({ url: database.url, poolMax: 2, statementTimeoutMs: 200 });
    try {
      expect((await migrateToLatest(db, { folder })).map((step) => step.name)).toEqual(['20260101000000_slow']);
    } finally {
      await db.destroy();
    }
  });

  it('gives up on a table another transaction holds, instead of stalling every query behind it', async () => {
    const db = createDb({ url: database.url, poolMax: 3 });
    try {
      await sql`create table busy (id int)`.execute(db);
      await migration(
        '20260101000100_alter_busy',
        "await db.schema.alterTable('busy').addColumn('note', 'text').execute();",
      );
      const released = Promise.withResolvers<void>();
      const read = Promise.withResolvers<void>();
      // A long transaction that read the table holds a lock the migration's ALTER TABLE must wait for.
      const holder = db.transaction().execute(async (trx) => {
        await sql`select * from busy`.execute(trx);
        read.resolve();
        await released.promise;
      });
      await read.promise;
      const failure = await migrateToLatest(db, { folder, lockTimeoutMs: 300 }).catch((error: unknown) => error);
      released.resolve();
      await holder;
      expect(String(failure)).toMatch(/Migration 20260101000100_alter_busy failed: .*lock timeout/);
      // Rolled back: run again once the table is free, it applies.
      expect((await migrateToLatest(db, { folder })).map((step) => step.name)).toEqual(['20260101000100_alter_busy']);
    } finally {
      await db.destroy();
    }
  });
});
