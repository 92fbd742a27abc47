import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../src/client.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';

describe('users table', () => {
  let database: TestDatabase;
  let db: Db;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDb({ url: database.url, poolMax: 2 });
  });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  it('generates time-ordered UUIDv7 ids', async () => {
    const first = await db
      .insertInto('users')
      .values({ email: 'first@example.com' })
      .returningAll()
      .executeTakeFirstOrThrow();
    const second = await db
      .insertInto('users')
      .values({ email: 'second@example.com' })
      .returningAll()
      .executeTakeFirstOrThrow();
    expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(second.id > first.id).toBe(true);
    // The first 48 bits are the creation time in milliseconds.
    const millis = Number.parseInt(first.id.replaceAll('-', '').slice(0, 12), 16);
    expect(Math.abs(millis - first.created_at.getTime())).toBeLessThan(5_000);
    expect(first).toMatchObject({ name: null, password_hash: null, email_verified_at: null, disabled_at: null });
  });

  it('orders ids made one after the other within a millisecond too (the fraction after the version)', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) {
      const { rows } = await sql<{ id: string }>`select uuid_generate_v7() as id`.execute(db);
      ids.push(rows[0]?.id as string);
    }
    // Several fall in one millisecond (a round trip takes less here), where the milliseconds
    // alone would order them by chance; all are in order.
    expect(ids.every((id, i) => i === 0 || id > (ids[i - 1] as string))).toBe(true);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('keeps emails unique whatever their case, and stored lower-cased', async () => {
    await db.insertInto('users').values({ email: 'taken@example.com' }).execute();
    await expect(db.insertInto('users').values({ email: 'taken@example.com' }).execute()).rejects.toThrow(
      /users_email_key/,
    );
    await expect(db.insertInto('users').values({ email: 'Taken@Example.com' }).execute()).rejects.toThrow(/check/);
    await expect(db.insertInto('users').values({ email: ' padded@example.com' }).execute()).rejects.toThrow(/check/);
  });

  it('finds a user by email through the index, not by reading the table (sign-in, batches)', async () => {
    // With sequential scans priced out, the planner takes an index whenever one serves the
    // query: a plan still scanning the table means none does.
    const plans = await db.connection().execute(async (connection) => {
      await sql`set enable_seqscan = off`.execute(connection);
      const lookups = [
        connection.selectFrom('users').selectAll().where('email', '=', 'taken@example.com'),
        connection.selectFrom('users').select('email').where('email', 'in', ['a@example.com', 'b@example.com']),
      ];
      const explained: string[] = [];
      for (const lookup of lookups) {
        const query = lookup.compile();
        const { rows } = await connection.executeQuery<{ 'QUERY PLAN': string }>(
          CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]),
        );
        explained.push(rows.map((row) => row['QUERY PLAN']).join('\n'));
      }
      await sql`reset enable_seqscan`.execute(connection);
      return explained;
    });
    for (const plan of plans) {
      expect(plan).toMatch(/Index (Only )?Scan (using|on) users_email_key/);
      expect(plan).not.toMatch(/Seq Scan/);
    }
  });

  it('maintains updated_at on every update', async () => {
    const user = await db
      .insertInto('users')
      .values({ email: 'touch@example.com' })
      .returningAll()
      .executeTakeFirstOrThrow();
    await sql`select pg_sleep(0.01)`.execute(db);
    const updated = await db
      .updateTable('users')
      .set({ name: 'Touched' })
      .where('id', '=', user.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    expect(updated.updated_at.getTime()).toBeGreaterThan(user.updated_at.getTime());
    expect(updated.created_at.getTime()).toBe(user.created_at.getTime());
  });
});
