import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // UUIDv7 (time-ordered, so inserts stay at the right edge of the index) on every
  // supported Postgres: 16 random bytes, the first 48 bits replaced by the Unix time in
  // milliseconds, the version nibble turned from 4 into 7 by setting bits 52 and 53.
  await sql`
    create function uuid_generate_v7() returns uuid language sql volatile as $$
      select encode(
        set_bit(set_bit(
          overlay(uuid_send(gen_random_uuid())
            placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
            from 1 for 6),
          52, 1), 53, 1),
        'hex')::uuid
    $$`.execute(db);

  await sql`
    create function set_updated_at() returns trigger language plpgsql as $$
    begin
      new.updated_at = now();
      return new;
    end
    $$`.execute(db);

  await db.schema
    .createTable('users')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`uuid_generate_v7()`))
    .addColumn('email', 'text', (c) =>
      c.notNull().check(sql`email = lower(btrim(email)) and length(email) between 3 and 320`),
    )
    .addColumn('name', 'text')
    .addColumn('password_hash', 'text')
    .addColumn('email_verified_at', 'timestamptz')
    .addColumn('disabled_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // Case-insensitive uniqueness holds even for a row written around the application.
  await db.schema.createIndex('users_email_key').on('users').unique().expression(sql`lower(email)`).execute();

  await sql`create trigger users_set_updated_at before update on users for each row execute function set_updated_at()`.execute(
    db,
  );
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('users').execute();
  await sql`drop function set_updated_at()`.execute(db);
  await sql`drop function uuid_generate_v7()`.execute(db);
}
