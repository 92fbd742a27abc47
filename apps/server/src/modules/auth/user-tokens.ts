/** Single-use tokens of email links (verify the address, reset the password): the `user_tokens` table's owner. */
import type { UserTokensTable } from '@app/db';
import { sql } from 'kysely';
import { AppError } from '../../errors/index.ts';
import { hashOpaqueToken } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';

export type LinkPurpose = UserTokensTable['purpose'];
type Deps = Pick<Services, 'db' | 'clock'>;

export const invalidLink = () =>
  new AppError('INVALID_TOKEN', 'This link is invalid, already used, or expired: ask for a new one');

/**
 * Records the token (by its hash) of a link about to be sent. Idempotent: a token already
 * recorded (a retried email) stays as it was, expiry included. Earlier links keep working
 * until this one is sent (`retireOlderLinks`): one that is never sent must not take away the
 * link an earlier email delivered. False when the link is not made (`unlessPasswordSetSince`, or
 * the account gone).
 */
export async function ensureUserToken(
  deps: Deps,
  {
    userId,
    purpose,
    tokenHash,
    ttlMs,
    unlessPasswordSetSince,
  }: {
    userId: string;
    purpose: LinkPurpose;
    tokenHash: string;
    ttlMs: number;
    /**
     * A reset link asked for at this time (ms) is not made once a password was set or removed
     * since: checked in the insert, under the account's row lock, so a change committing
     * meanwhile (which drops the links it finds) is waited for and seen.
     */
    unlessPasswordSetSince?: number;
  },
): Promise<boolean> {
  const expiresAt = new Date(deps.clock.now() + ttlMs);
  await deps.db
    .insertInto('user_tokens')
    .columns(['user_id', 'purpose', 'token_hash', 'expires_at'])
    .expression((eb) =>
      eb
        .selectFrom('users')
        .select([
          'users.id',
          sql<LinkPurpose>`${purpose}::text`.as('purpose'),
          sql<string>`${tokenHash}::text`.as('token_hash'),
          sql<Date>`${expiresAt}::timestamptz`.as('expires_at'),
        ])
        .where('users.id', '=', userId)
        .$if(unlessPasswordSetSince !== undefined, (query) =>
          query.where((w) =>
            w.or([
              w('users.password_changed_at', 'is', null),
              w('users.password_changed_at', '<', new Date(unlessPasswordSetSince as number)),
            ]),
          ),
        )
        .forShare(),
    )
    .onConflict((oc) => oc.column('token_hash').doNothing())
    .execute();
  // Made now or by an earlier try of the same email (a retry): the link is live, unless a link
  // sent since retired it (this try's email would carry a dead link).
  const made = await deps.db
    .selectFrom('user_tokens')
    .select('id')
    .where('token_hash', '=', tokenHash)
    .where('retired_at', 'is', null)
    .executeTakeFirst();
  return made !== undefined;
}

/**
 * Once the link of `tokenHash` was sent: it is marked sent, and the unused links of its user
 * and purpose sent before it and made before it are retired (they work no more; kept until
 * they expire, so a try of their email run again sends nothing rather than make them anew).
 * Not one whose email is still on its way (two sent at once, the later made may answer
 * first), nor one made after it (a try of this email sent again after its answer was lost,
 * when a newer one was sent meanwhile): the email that arrives last carries a link that works.
 */
export async function retireOlderLinks(deps: Pick<Services, 'db'>, tokenHash: string): Promise<void> {
  await deps.db
    .with('sent', (db) =>
      db
        .updateTable('user_tokens')
        .set({ sent_at: sql`coalesce(sent_at, clock_timestamp())` })
        .where('token_hash', '=', tokenHash)
        .returning(['id', 'user_id', 'purpose', 'created_at', 'sent_at']),
    )
    .updateTable('user_tokens as older')
    .from('sent')
    .set({ retired_at: sql`clock_timestamp()` })
    .whereRef('older.user_id', '=', 'sent.user_id')
    .whereRef('older.purpose', '=', 'sent.purpose')
    .whereRef('older.id', '<>', 'sent.id')
    .where('older.used_at', 'is', null)
    .where('older.retired_at', 'is', null)
    .whereRef('older.sent_at', '<', 'sent.sent_at')
    .whereRef('older.created_at', '<', 'sent.created_at')
    .execute();
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
    .where('retired_at', 'is', null)
    .where('expires_at', '>', now)
    .returning('user_id')
    .executeTakeFirst();
  if (!row) throw invalidLink();
  return row.user_id;
}

/**
 * The account whose link `token` (of `purpose`) was used at `since` (ms) or after: the same
 * request sent again, its first answer lost or a failure after its commit. Undefined otherwise.
 */
export async function usedSince(
  deps: Pick<Services, 'db'>,
  { token, purpose, since }: { token: string; purpose: LinkPurpose; since: number },
): Promise<string | undefined> {
  const row = await deps.db
    .selectFrom('user_tokens')
    .select('user_id')
    .where('token_hash', '=', hashOpaqueToken(token))
    .where('purpose', '=', purpose)
    .where('used_at', '>=', new Date(since))
    .executeTakeFirst();
  return row?.user_id;
}

/** The link of `token` (of `purpose`) is gone, used or not. */
export async function discardUserToken(
  deps: Pick<Services, 'db'>,
  { token, purpose }: { token: string; purpose: LinkPurpose },
): Promise<void> {
  await deps.db
    .deleteFrom('user_tokens')
    .where('token_hash', '=', hashOpaqueToken(token))
    .where('purpose', '=', purpose)
    .execute();
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

/**
 * Maintenance: links expired unused, or used over `keepUsedMs` ago (they can never work again;
 * one used since, expired or not, is kept for `usedSince`: a request sent again to finish it).
 */
export async function purgeSpentUserTokens(
  deps: Pick<Services, 'db' | 'clock'>,
  { keepUsedMs }: { keepUsedMs: number },
): Promise<number> {
  const now = deps.clock.now();
  const result = await deps.db
    .deleteFrom('user_tokens')
    .where((eb) =>
      eb.or([
        eb.and([eb('used_at', 'is', null), eb('expires_at', '<', new Date(now))]),
        eb('used_at', '<', new Date(now - keepUsedMs)),
      ]),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
