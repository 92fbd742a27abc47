import type { Db } from '@app/db';
import { sql } from 'kysely';

/**
 * Makes ending a user's sessions fail in the test's database, as a connection lost at that
 * moment would (SQLSTATE 08006: a 503): a trigger refuses their rows in the revocation list.
 * What the change that ends them wrote must then be rolled back with it. Returns the undo.
 */
export async function failRevocationsOf(db: Db, userId: string): Promise<() => Promise<void>> {
  const name = `fail_revocations_${userId.replaceAll('-', '')}`;
  await sql
    .raw(`
      create function ${name}() returns trigger language plpgsql as $$
      begin
        if new.user_id = '${userId}' then
          raise exception 'the connection was lost (a test)' using errcode = '08006';
        end if;
        return new;
      end $$;
      create trigger ${name} before insert on session_revocations
        for each row execute function ${name}();`)
    .execute(db);
  return async () => {
    await sql.raw(`drop trigger ${name} on session_revocations; drop function ${name}();`).execute(db);
  };
}
