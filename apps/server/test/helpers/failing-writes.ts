import type { Db } from '@app/db';
import { sql } from 'kysely';

/**
 * Makes writes to `table` fail in the test's database when the new row matches `when` (SQL
 * on `new`), as a connection lost at that moment would (SQLSTATE 08006: a 503): a trigger
 * refuses them. Whatever the same change wrote before must then be rolled back with it.
 * Returns the undo.
 */
export async function failWrites(
  db: Db,
  { table, when }: { table: string; when: string },
): Promise<() => Promise<void>> {
  const name = `fail_writes_${Math.random().toString(36).slice(2, 10)}`;
  await sql
    .raw(`
      create function ${name}() returns trigger language plpgsql as $$
      begin
        if ${when} then
          raise exception 'the connection was lost (a test)' using errcode = '08006';
        end if;
        return new;
      end $$;
      create trigger ${name} before insert or update on ${table}
        for each row execute function ${name}();`)
    .execute(db);
  return async () => {
    await sql.raw(`drop trigger ${name} on ${table}; drop function ${name}();`).execute(db);
  };
}

/** Writes of one user's rows to `table` fail (`column` holds the user's id). */
export const failWritesOf = (
  db: Db,
  userId: string,
  { table, column = 'user_id' }: { table: 'session_revocations' | 'users'; column?: 'user_id' | 'id' },
) => failWrites(db, { table, when: `new.${column} = '${userId}'` });

/** Ending the user's sessions fails. */
export const failRevocationsOf = (db: Db, userId: string) => failWritesOf(db, userId, { table: 'session_revocations' });
