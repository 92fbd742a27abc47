import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // A direct upload's URL writes to its key until it expires, whatever became of the upload: a
  // cancelled, rejected or deleted one keeps its declared size counted against the quota (a
  // `spent` row naming that key) until then, so bytes PUT to it again are never free.
  // A completed upload's row remembers the key (`upload_key`) while its URL may still write.
  // NOT VALID: every row is 'pending' or 'ready', so no scan of the table under the lock the
  // constraint's change takes (reads of files wait for it); new rows are checked as before.
  await sql`alter table files drop constraint files_status_check`.execute(db);
  await sql`alter table files add constraint files_status_check check (status in ('pending', 'ready', 'spent')) not valid`.execute(
    db,
  );
  await db.schema.alterTable('files').addColumn('upload_key', 'text').execute();
  await db.schema.dropIndex('files_pending_expires_at_idx').execute();
  await db.schema
    .createIndex('files_unfinished_expires_at_idx')
    .on('files')
    .column('expires_at')
    .where(sql.ref('status'), 'in', sql`('pending', 'spent')`)
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.deleteFrom('files').where('status', '=', 'spent').execute();
  await db.schema.dropIndex('files_unfinished_expires_at_idx').execute();
  await db.schema
    .createIndex('files_pending_expires_at_idx')
    .on('files')
    .column('expires_at')
    .where(sql.ref('status'), '=', 'pending')
    .execute();
  await db.schema.alterTable('files').dropColumn('upload_key').execute();
  await sql`alter table files drop constraint files_status_check`.execute(db);
  await sql`alter table files add constraint files_status_check check (status in ('pending', 'ready'))`.execute(db);
}
