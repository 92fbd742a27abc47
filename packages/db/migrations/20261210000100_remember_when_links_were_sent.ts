import type { Kysely } from 'kysely';

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
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('user_tokens').dropColumn('sent_at').dropColumn('retired_at').execute();
}
