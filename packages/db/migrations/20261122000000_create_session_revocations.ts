import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // The durable list of ended sessions whose access tokens may still be unexpired. Redis
  // caches it (one marker per session); when the cache is lost it is rebuilt from here.
  // No foreign keys: an entry must outlive a deleted user's sessions.
  await db.schema
    .createTable('session_revocations')
    .addColumn('session_id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('session_revocations_expires_at_idx')
    .on('session_revocations')
    .column('expires_at')
    .execute();
  await db.schema
    .createIndex('session_revocations_user_id_idx')
    .on('session_revocations')
    .columns(['user_id', 'expires_at'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('session_revocations').execute();
}
