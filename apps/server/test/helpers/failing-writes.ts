import type { Db } from '@app/db';
import { sql } from 'kysely';

/**
 * Makes writes of one user's rows to `table` fail in the test's database, as a connection
 * lost at that moment would (SQLSTATE 08006: a 503): a trigger refuses them (`column` holds
 * the user's id). Whatever the same change wrote before must then be rolled back with it.
 * Returns the undo.
 */
export async function failWritesOf(
  db: Db,
  userId: string,
  { table, column = 'user_id' }: { table: 'session_revocations' | 'users'; column?: 'user_id' | 'id' },
): Promise<() => Promise<void>> {
  const name = `fail_${table}_${userId.replaceAll('-', '')}`;
  await sql
    .raw(`
      create function ${name}() returns trigger language plpgsql as $$
      begin
        if new.${column} = '${userId}' then
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

/** Ending the user's sessions fails (see `failWritesOf`). */
export const failRevocationsOf = (db: Db, userId: string) => failWritesOf(db, userId, { table: 'session_revocations' });
