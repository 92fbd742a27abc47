import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // Every refresh token a session has rotated away (by hash): one presented again, however
  // many rotations ago, is reuse and ends its session (sessions keep only the last one for
  // the grace window). The rows go with their session.
  await db.schema
    .createTable('spent_refresh_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .execute();
  await db.schema
    .createIndex('spent_refresh_tokens_session_id_idx')
    .on('spent_refresh_tokens')
    .column('session_id')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('spent_refresh_tokens').execute();
}
