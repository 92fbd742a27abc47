import type { Kysely } from 'kysely';
import { sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // Emails are stored lower-cased (the column's check), so one unique index on the column
  // keeps them unique whatever their case, as the index on lower(email) did, and serves the
  // lookups, which name the column (`email = $1`): the expression index served none of them,
  // and every sign-in read the whole table.
  await db.schema.dropIndex('users_email_key').execute();
  await db.schema.createIndex('users_email_key').on('users').unique().column('email').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('users_email_key').execute();
  await db.schema.createIndex('users_email_key').on('users').unique().expression(sql`lower(email)`).execute();
}
