import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../src/client.ts';
import {
  errorReason,
  isCachedPlanChange,
  isDuplicatePreparedStatement,
  isForeignKeyViolation,
  isTransactionConflict,
  isUndefinedTable,
  isUniqueViolation,
  isUnknownPreparedStatement,
} from '../src/postgres-errors.ts';
import { createEmptyTestDatabase, type TestDatabase } from '../src/testing.ts';

/** The error a statement fails with (the test fails if it succeeds). */
async function failureOf(db: Db, statement: ReturnType<typeof sql>): Promise<unknown> {
  return statement.execute(db).then(
    () => expect.unreachable('the statement succeeded'),
    (error: unknown) => error,
  );
}

const RECOGNISERS = {
  isUniqueViolation,
  isForeignKeyViolation,
  isUndefinedTable,
  isUnknownPreparedStatement,
  isDuplicatePreparedStatement,
  isCachedPlanChange,
  isTransactionConflict,
};

/** The names of the recognisers that match `error`. */
const recognised = (error: unknown) =>
  Object.entries(RECOGNISERS)
    .filter(([, matches]) => matches(error))
    .map(([name]) => name);

describe('Postgres errors by SQLSTATE, as Postgres raises them', () => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await createEmptyTestDatabase();
    db = createDb({ url: database.url, poolMax: 1 });
    await sql`create table parent (id int primary key)`.execute(db);
    await sql`create table child (parent_id int references parent (id))`.execute(db);
    await sql`insert into parent values (1)`.execute(db);
  });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  it('recognises each one, and only it', async () => {
    expect(recognised(await failureOf(db, sql`insert into parent values (1)`))).toEqual(['isUniqueViolation']);
    expect(recognised(await failureOf(db, sql`insert into child values (2)`))).toEqual(['isForeignKeyViolation']);
    expect(recognised(await failureOf(db, sql`select 1 from no_such_table`))).toEqual(['isUndefinedTable']);
    expect(recognised(await failureOf(db, sql`execute no_such_statement`))).toEqual(['isUnknownPreparedStatement']);
    // The pool's one connection keeps what it prepared between statements.
    await sql`prepare parents as select * from parent`.execute(db);
    expect(recognised(await failureOf(db, sql`prepare parents as select 1`))).toEqual(['isDuplicatePreparedStatement']);
    await sql`alter table parent add column name text`.execute(db);
    expect(recognised(await failureOf(db, sql`execute parents`))).toEqual(['isCachedPlanChange']);
    await sql`deallocate parents`.execute(db);
  });

  it('recognises the transaction Postgres ended to settle a deadlock', async () => {
    const pool = createDb({ url: database.url, poolMax: 2 });
    try {
      await sql`create table pair (id int primary key)`.execute(pool);
      await sql`insert into pair values (1), (2)`.execute(pool);
      // Each takes one row, then, once both have theirs, asks for the other's.
      let holding = 0;
      const bothHold = async () => {
        while (holding < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      };
      const crossed = (first: number, second: number) =>
        pool.transaction().execute(async (trx) => {
          await sql`select id from pair where id = ${first} for update`.execute(trx);
          holding += 1;
          await bothHold();
          await sql`select id from pair where id = ${second} for update`.execute(trx);
        });
      const outcomes = await Promise.allSettled([crossed(1, 2), crossed(2, 1)]);
      const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
      expect(failures).toHaveLength(1);
      expect(recognised(failures[0])).toEqual(['isTransactionConflict']);
    } finally {
      await pool.destroy();
    }
  });

  it('recognises nothing in what is not a Postgres error', () => {
    for (const error of [new Error('23505'), null, undefined, '42P01', { code: 23505 }, { code: '0A000' }]) {
      expect(recognised(error)).toEqual([]);
    }
  });
});

describe('errorReason', () => {
  it('reads a failed connection to several addresses from its attempts, and an error without a message from its code', () => {
    const refused = (address: string) =>
      Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    // What Node's connect gives for `localhost` as ::1 and 127.0.0.1, both refused: no message of its own.
    const both = Object.assign(new AggregateError([refused('::1:5432'), refused('127.0.0.1:5432')]), {
      code: 'ECONNREFUSED',
    });
    expect(both.message).toBe('');
    expect(errorReason(both)).toBe('connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
    expect(errorReason(Object.assign(new Error(''), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
    expect(errorReason(new TypeError(''))).toBe('TypeError');
    expect(errorReason(new Error('plain'))).toBe('plain');
    expect(errorReason('a string')).toBe('a string');
  });
});
