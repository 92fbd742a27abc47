import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // Emails are stored lower-cased (the column's check), so one unique index on the column
  // keeps them unique whatever their case, as the index on lower(email) did, and serves the
  // lookups, which name the column (`email = $1`): the expression index served none of them,
  // and every sign-in read the whole table. Built before the old one is dropped: dropping
  // locks the table against reads too, until the migration commits, and the build takes the
  // table's time (it only holds writes back). A transaction that read users during the build
  // and then writes it can deadlock with the drop: Postgres ends one of the two (the app's
  // call answers 409, or the migration fails and is run again by the next start).
  await db.schema.createIndex('users_email_key_new').on('users').unique().column('email').execute();
  await db.schema.dropIndex('users_email_key').execute();
  await sql`alter index users_email_key_new rename to users_email_key`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('users_email_key_old').on('users').unique().expression(sql`lower(email)`).execute();
  await db.schema.dropIndex('users_email_key').execute();
  await sql`alter index users_email_key_old rename to users_email_key`.execute(db);
}
