import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // Uploaded files: the bytes live in storage under a generated key; the row is the truth
  // (an object without a row is swept). `pending`: a direct upload not completed yet.
  await db.schema
    .createTable('files')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`uuid_generate_v7()`))
    .addColumn('owner_id', 'uuid', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull().check(sql`length(name) between 1 and 255`))
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull().check(sql`size >= 0`))
    .addColumn('sha256', 'text')
    .addColumn('storage_key', 'text', (c) => c.notNull().unique())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'ready')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('files_owner_id_id_idx').on('files').columns(['owner_id', 'id']).execute();
  await db.schema
    .createIndex('files_pending_expires_at_idx')
    .on('files')
    .column('expires_at')
    .where(sql.ref('status'), '=', 'pending')
    .execute();
  await db.schema
    .alterTable('users')
    .addColumn('avatar_file_id', 'uuid', (c) => c.references('files.id').onDelete('set null'))
    .execute();
  // "Is this file a profile picture?" on each download, and the SET NULL when a file goes.
  await db.schema
    .createIndex('users_avatar_file_id_idx')
    .on('users')
    .column('avatar_file_id')
    .where(sql.ref('avatar_file_id'), 'is not', null)
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('avatar_file_id').execute();
  await db.schema.dropTable('files').execute();
}
