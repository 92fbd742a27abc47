/** Single-use tokens of email links (verify the address, reset the password): the `user_tokens` table's owner. */
import type { UserTokensTable } from '@app/db';
import { AppError } from '../../errors/index.ts';
import { hashOpaqueToken } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';

export type LinkPurpose = UserTokensTable['purpose'];
type Deps = Pick<Services, 'db' | 'clock'>;

export const invalidLink = () =>
  new AppError('INVALID_TOKEN', 'This link is invalid, already used, or expired: ask for a new one');

/**
 * Makes the token (by its hash) the one link of `purpose` that works for the user: earlier
 * unused ones stop working. Idempotent: a token already recorded (a retried email) stays as it
 * was, expiry included.
 */
export async function ensureUserToken(
  deps: Deps,
  { userId, purpose, tokenHash, ttlMs }: { userId: string; purpose: LinkPurpose; tokenHash: string; ttlMs: number },
): Promise<void> {
  const now = deps.clock.now();
  await deps.db.transaction().execute(async (trx) => {
    const known = await trx
      .selectFrom('user_tokens')
      .select('id')
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst();
    if (known) return;
    await trx
      .deleteFrom('user_tokens')
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .execute();
    await trx
      .insertInto('user_tokens')
      .values({ user_id: userId, purpose, token_hash: tokenHash, expires_at: new Date(now + ttlMs) })
      .onConflict((oc) => oc.column('token_hash').doNothing())
      .execute();
  });
}

/** Uses the token up and returns its user; an unknown, used or expired token is INVALID_TOKEN. */
export async function consumeUserToken(
  deps: Deps,
  { token, purpose }: { token: string; purpose: LinkPurpose },
): Promise<string> {
  const now = new Date(deps.clock.now());
  const row = await deps.db
    .updateTable('user_tokens')
    .set({ used_at: now })
    .where('token_hash', '=', hashOpaqueToken(token))
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .returning('user_id')
    .executeTakeFirst();
  if (!row) throw invalidLink();
  return row.user_id;
}

/**
 * Every unused link of the account stops working (someone else proved the address), or
 * those of one `purpose` (a changed password: a reset link sent before must not undo it).
 */
export async function dropUserTokens(deps: Pick<Services, 'db'>, userId: string, purpose?: LinkPurpose): Promise<void> {
  await deps.db
    .deleteFrom('user_tokens')
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .$if(purpose !== undefined, (query) => query.where('purpose', '=', purpose as LinkPurpose))
    .execute();
}

/** Maintenance: links used or expired (they can never work again). */
export async function purgeSpentUserTokens(deps: Pick<Services, 'db' | 'clock'>): Promise<number> {
  const result = await deps.db
    .deleteFrom('user_tokens')
    .where((eb) => eb.or([eb('expires_at', '<', new Date(deps.clock.now())), eb('used_at', 'is not', null)]))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
