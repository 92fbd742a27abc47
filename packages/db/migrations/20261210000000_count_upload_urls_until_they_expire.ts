import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // A direct upload's URL writes to its key until it expires, whatever became of the upload: a
  // cancelled, rejected or deleted one keeps its declared size counted against the quota (a
  // `spent` row naming that key) until then, so bytes PUT to it again are never free.
  // A completed upload's row remembers the key (`upload_key`) while its URL may still write.
  // The index is built first: the build reads the whole table and holds writes back, and the
  // changes after it lock the table against reads too, until the migration commits (the
  // order of 20261208000000_index_users_by_email).
  await db.schema
    .createIndex('files_unfinished_expires_at_idx')
    .on('files')
    .column('expires_at')
    .where(sql.ref('status'), 'in', sql`('pending', 'spent')`)
    .execute();
  // NOT VALID: every row is 'pending' or 'ready', so no scan of the table under that lock;
  // new rows are checked as before.
  await sql`alter table files drop constraint files_status_check`.execute(db);
  await sql`alter table files add constraint files_status_check check (status in ('pending', 'ready', 'spent')) not valid`.execute(
    db,
  );
  await db.schema.alterTable('files').addColumn('upload_key', 'text').execute();
  await db.schema.dropIndex('files_pending_expires_at_idx').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.deleteFrom('files').where('status', '=', 'spent').execute();
  await db.schema
    .createIndex('files_pending_expires_at_idx')
    .on('files')
    .column('expires_at')
    .where(sql.ref('status'), '=', 'pending')
    .execute();
  await db.schema.dropIndex('files_unfinished_expires_at_idx').execute();
  await db.schema.alterTable('files').dropColumn('upload_key').execute();
  // NOT VALID, as in up(): the spent rows are gone.
  await sql`alter table files drop constraint files_status_check`.execute(db);
  await sql`alter table files add constraint files_status_check check (status in ('pending', 'ready')) not valid`.execute(
    db,
  );
}
