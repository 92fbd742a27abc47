import { type Generated, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../src/client.ts';
import { preparingClient } from '../src/prepared-statements.ts';
import { createEmptyTestDatabase, type TestDatabase } from '../src/testing.ts';

interface Tables {
  items: { id: number; label: string; attempt: Generated<string> };
}

/** The statements the pool's one connection holds (a query without parameters, so never one of them). */
async function preparedOn(db: Kysely<Tables>): Promise<{ name: string; statement: string; runs: number }[]> {
  const { rows } = await sql<{ name: string; statement: string; runs: number }>`
    select name, statement, (generic_plans + custom_plans)::int as runs
    from pg_prepared_statements order by name`.execute(db);
  return rows;
}

/** A pool of one connection whose statements are prepared (`limit` texts at most). */
function preparingDb(url: string, options: Parameters<typeof preparingClient>[0] = {}): Kysely<Tables> {
  const pool = new pg.Pool({ connectionString: url, max: 1, Client: preparingClient(options) });
  return new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
}

const selectById = (db: Kysely<Tables>, id: number) =>
  db.selectFrom('items').select(['id', 'label']).where('id', '=', id);
const byId = (db: Kysely<Tables>, id: number) => selectById(db, id).execute();

describe('prepared statements (createDb by default)', () => {
  let database: TestDatabase;
  let setup: Db;
  const open: Kysely<Tables>[] = [];
  const track = (db: Kysely<Tables>) => {
    open.push(db);
    return db;
  };
  /** A pool of one connection from createDb. */
  const appDb = (preparedStatements?: boolean) =>
    track(createDb({ url: database.url, poolMax: 1, preparedStatements }) as unknown as Kysely<Tables>);

  beforeAll(async () => {
    database = await createEmptyTestDatabase();
    setup = createDb({ url: database.url, poolMax: 1, preparedStatements: false });
    // `attempt` counts every insert tried, failed ones too (a sequence is not rolled back).
    await sql`create sequence attempts`.execute(setup);
    await sql`create table items (id int primary key, label text not null check (label <> ''), attempt bigint default nextval('attempts'))`.execute(
      setup,
    );
    await sql`insert into items values (1, 'one'), (2, 'two'), (3, 'three')`.execute(setup);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((db) => db.destroy()));
    await sql`alter table items drop column if exists extra`.execute(setup);
  });
  afterAll(async () => {
    await setup.destroy();
    await database.drop();
  });

  it('parses a query with parameters once per connection and runs it again by name, answering as unprepared', async () => {
    const db = appDb();
    const plain = appDb(false);
    for (const id of [1, 2, 3]) expect(await byId(db, id)).toEqual(await byId(plain, id));

    const statements = await preparedOn(db);
    expect(statements).toEqual([
      { name: expect.stringMatching(/^app_[0-9a-f]{32}$/), statement: selectById(db, 1).compile().sql, runs: 3 },
    ]);
    expect(await preparedOn(plain)).toEqual([]);
  });

  it('leaves unnamed the queries without parameters and those inside a transaction', async () => {
    const db = appDb();
    await sql`select count(*) from items`.execute(db);
    await db.transaction().execute(async (trx) => {
      await byId(trx, 1);
      await trx.updateTable('items').set({ label: 'one' }).where('id', '=', 1).execute();
    });
    expect(await preparedOn(db)).toEqual([]);
    await byId(db, 1);
    expect(await preparedOn(db)).toHaveLength(1);
  });

  it('names a text the same in every pool, and two texts apart', async () => {
    const a = track(preparingDb(database.url));
    const b = track(preparingDb(database.url));
    await byId(a, 1);
    await byId(b, 2);
    await b.selectFrom('items').select('label').where('id', '=', 2).execute();
    const [inA] = await preparedOn(a);
    const inB = await preparedOn(b);
    expect(inB).toHaveLength(2);
    expect(inB.filter((statement) => statement.name === inA?.name)).toHaveLength(1);
  });

  it('prepares a statement anew under a new name when its columns changed (a migration), for the same call', async () => {
    const db = appDb();
    const star = () => db.selectFrom('items').selectAll().where('id', '=', 1).execute();
    await star();
    const [before] = await preparedOn(db);
    await sql`alter table items add column extra text not null default 'x'`.execute(setup);
    // Prepared before the column came, `select *` would now answer other columns: Postgres refuses it.
    expect(await star()).toEqual([{ id: 1, label: 'one', attempt: expect.any(String), extra: 'x' }]);
    expect(await star()).toHaveLength(1);
    const after = await preparedOn(db);
    expect(after).toHaveLength(2);
    expect(after).toContainEqual({ ...before, runs: 1 });
    expect(after).toContainEqual({ name: `${before?.name}_1`, statement: before?.statement, runs: 2 });
  });

  it("prepares again, and goes on naming, when node-postgres's record is out of step: a statement gone", async () => {
    const told: unknown[] = [];
    const db = track(preparingDb(database.url, { onUnsupported: (error) => told.push(error) }));
    await byId(db, 1);
    // Behind node-postgres's back: it still believes the connection holds the statement.
    await sql`deallocate all`.execute(db);
    expect(await byId(db, 2)).toEqual([{ id: 2, label: 'two' }]);
    expect(await byId(db, 3)).toEqual([{ id: 3, label: 'three' }]);
    expect(told).toEqual([]);
    expect(await preparedOn(db)).toEqual([expect.objectContaining({ runs: 2 })]);
  });

  it('does the same after a value that could not be sent closed the statement', async () => {
    const told: unknown[] = [];
    const db = track(preparingDb(database.url, { onUnsupported: (error) => told.push(error) }));
    const unsendable = {
      toPostgres() {
        throw new Error('no text for this value');
      },
    };
    await expect(selectById(db, unsendable as unknown as number).execute()).rejects.toThrow('no text for this value');
    expect(await byId(db, 2)).toEqual([{ id: 2, label: 'two' }]);
    expect(told).toEqual([]);
    expect(await preparedOn(db)).toEqual([expect.objectContaining({ runs: 1 })]);
  });

  it('does the same when the server holds a statement node-postgres does not know of', async () => {
    const first = track(preparingDb(database.url));
    await byId(first, 1);
    const [statement] = await preparedOn(first);
    const told: unknown[] = [];
    const db = track(preparingDb(database.url, { onUnsupported: (error) => told.push(error) }));
    await sql.raw(`prepare "${statement?.name}" as ${statement?.statement}`).execute(db);
    expect(await byId(db, 2)).toEqual([{ id: 2, label: 'two' }]);
    expect(await byId(db, 3)).toEqual([{ id: 3, label: 'three' }]);
    expect(told).toEqual([]);
    expect(await preparedOn(db)).toEqual([expect.objectContaining({ name: statement?.name, runs: 2 })]);
  });

  it("passes a statement's own error through as it is, without running it again", async () => {
    const told: unknown[] = [];
    const db = track(preparingDb(database.url, { onUnsupported: (error) => told.push(error) }));
    const attempts = async () =>
      Number((await sql<{ n: string }>`select last_value as n from attempts`.execute(db)).rows[0]?.n);
    const insert = (id: number, label: string) => db.insertInto('items').values({ id, label }).execute();
    const before = await attempts();
    await expect(insert(1, 'again')).rejects.toMatchObject({ code: '23505' });
    await expect(insert(4, '')).rejects.toMatchObject({ code: '23514' });
    expect(await attempts()).toBe(before + 2);
    expect(told).toEqual([]);
    expect(await preparedOn(db)).toEqual([expect.objectContaining({ runs: 2 })]);
  });

  it('runs unnamed the texts past its limit', async () => {
    const db = track(preparingDb(database.url, { limit: 1 }));
    await byId(db, 1);
    await db.selectFrom('items').select('label').where('id', '=', 1).execute();
    await byId(db, 2);
    expect(await preparedOn(db)).toEqual([
      expect.objectContaining({ statement: selectById(db, 1).compile().sql, runs: 2 }),
    ]);
  });
});
