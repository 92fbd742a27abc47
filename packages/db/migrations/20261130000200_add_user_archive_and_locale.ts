import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('users')
    // An archived account cannot sign in and is hidden from lists; its data stays until restored.
    .addColumn('archived_at', 'timestamptz')
    // The language emails are written in (a BCP 47 tag); null: the language of the request.
    .addColumn('locale', 'text', (c) => c.check(sql`locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$'`))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('locale').dropColumn('archived_at').execute();
}
