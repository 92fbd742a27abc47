import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // The refresh tokens sessions rotated away (by hash), for a day: one presented again,
  // however many rotations ago, is reuse and ends its session (sessions keep only the last
  // one, for the grace window). The rows go with their session, or after the day (maintenance).
  await db.schema
    .createTable('spent_refresh_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('spent_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('spent_refresh_tokens_session_id_idx')
    .on('spent_refresh_tokens')
    .column('session_id')
    .execute();
  await db.schema
    .createIndex('spent_refresh_tokens_spent_at_idx')
    .on('spent_refresh_tokens')
    .column('spent_at')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('spent_refresh_tokens').execute();
}
