import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // When a link's email was sent (its job's send answered): a link sent later retires the
  // unused ones sent before it, never one whose email is still on its way. Retired, a link is
  // kept (until it expires) rather than deleted: a try of its email run again (its job's
  // completion lost) finds it and sends nothing, instead of making it anew. Nullable, no
  // default: no rewrite of the table.
  await db.schema
    .alterTable('user_tokens')
    .addColumn('sent_at', 'timestamptz')
    .addColumn('retired_at', 'timestamptz')
    .execute();
  // The live links made before: each was made as its email went out, so it counts as sent
  // then, and the next link sent retires it (left unsent, it would work until it expired).
  await sql`update user_tokens set sent_at = created_at
    where sent_at is null and used_at is null and expires_at > now()`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('user_tokens').dropColumn('sent_at').dropColumn('retired_at').execute();
}
