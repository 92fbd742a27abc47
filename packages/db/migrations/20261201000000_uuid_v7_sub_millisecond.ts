import { type Kysely, sql } from 'kysely';

// UUIDv7 as RFC 9562 §6.2 method 3 (and Postgres 18's uuidv7()) makes it: after the 48 bits
// of Unix milliseconds, the version nibble 7 and 12 bits of the fraction of the millisecond
// (the clock's microseconds, in steps of 1/4096 ms), then random bits with the variant.
// Ids made one after the other now sort in the order they were made, not only to the
// millisecond: two notes created within one millisecond list newest first too.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create or replace function uuid_generate_v7() returns uuid language sql volatile as $$
      select encode(
        overlay(uuid_send(gen_random_uuid())
          placing substring(int8send(floor(t.ms)::bigint) from 3)
               || int2send((x'7000'::int + floor((t.ms - floor(t.ms)) * 4096)::int)::smallint)
          from 1 for 8),
        'hex')::uuid
      from (select extract(epoch from clock_timestamp()) * 1000 as ms) as t
    $$`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  // The definition 20261121000000_create_users made: random bits after the milliseconds.
  await sql`
    create or replace function uuid_generate_v7() returns uuid language sql volatile as $$
      select encode(
        set_bit(set_bit(
          overlay(uuid_send(gen_random_uuid())
            placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
            from 1 for 6),
          52, 1), 53, 1),
        'hex')::uuid
    $$`.execute(db);
}
