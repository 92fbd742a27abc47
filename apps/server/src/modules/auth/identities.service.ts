/**
 * The `user_identities` table's owner: which account each provider identity signs in to.
 * An identity is found by (provider, subject); a new one links to the account with the same
 * email only when the provider vouches for that email, otherwise it creates an account.
 *
 * An account whose email is unverified holds only identities that did not prove the address
 * (a vouching provider verifies it). So whenever the address is proven another way (a
 * vouching provider, the emailed link, a one-time code, a password reset), those identities
 * are dropped: whoever linked them may not own the address. Proven by someone signing in (a
 * vouching provider, a one-time code), the account is taken back whole (`reclaim`).
 */
import { AppError } from '../../errors/index.ts';
import { isoTime } from '../../infra/iso-time.ts';
import type { ProviderId, ProviderIdentity } from '../../infra/oauth/provider.ts';
import type { Services } from '../../services.ts';
import { endSessions, publishRevocations } from '../sessions/sessions.service.ts';
import {
  assertMaySignIn,
  callerAccountGone,
  findUserRow,
  findUserRowByEmail,
  insertUser,
  markEmailVerified,
  removePassword,
  setNameIfMissing,
} from '../users/users.service.ts';
import { dropCodesOf } from './oauth-flows.ts';
import { dropUserTokens } from './user-tokens.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'clock' | 'log' | 'jobs'>;

/**
 * The address is proven to belong to whoever holds this account now: it counts as
 * verified, and the identities linked while it was not are dropped. Call it wherever an
 * address gets proven (it may run inside the caller's transaction).
 */
export async function confirmEmailOwner(
  deps: Pick<Services, 'db' | 'clock'>,
  userId: string,
): Promise<{ newly: boolean }> {
  const { newly } = await markEmailVerified(deps, userId);
  if (newly) await deps.db.deleteFrom('user_identities').where('user_id', '=', userId).execute();
  return { newly };
}

/**
 * Someone signing in proved the address of an account nobody had verified (a vouching
 * provider, an emailed one-time code): whoever registered it may be a stranger (a
 * pre-hijacked account). Its password, its unproven identities, its pending links and
 * sign-in codes go, and every session ends, before the prover's own session starts.
 */
export async function reclaim(deps: Deps, userId: string): Promise<void> {
  const reclaimed = await deps.db.transaction().execute(async (trx) => {
    const inTransaction = { ...deps, db: trx };
    // Marking the address proven locks the row first: of two sign-ins proving it at once,
    // the second finds it proven and leaves alone what the first started (its session, its
    // sign-in code), as it would a moment later.
    const { newly } = await confirmEmailOwner(inTransaction, userId);
    if (!newly) return false;
    await removePassword(inTransaction, userId);
    await dropUserTokens(inTransaction, userId);
    await dropCodesOf(inTransaction, userId);
    await endSessions(inTransaction, { userId });
    return true;
  });
  if (!reclaimed) return;
  await publishRevocations(deps, userId);
  deps.log.warn(
    { userId },
    'an unverified account was claimed by proving its address at sign-in: its password, links and sessions were removed',
  );
}

/** The account `identity` signs in to, linked or created on the way. */
export async function accountForIdentity(
  deps: Deps,
  input: { provider: ProviderId; identity: ProviderIdentity },
): Promise<{ userId: string; created: boolean }> {
  const { provider, identity } = input;
  const known = await deps.db
    .updateTable('user_identities')
    // The address the provider gave last: none this time (its userinfo or emails endpoint
    // failing, as a returning user still signs in) keeps the one it gave before.
    .set((eb) => ({ last_used_at: new Date(deps.clock.now()), email: identity.email ?? eb.ref('email') }))
    .where('provider', '=', provider)
    .where('subject', '=', identity.subject)
    .returning('user_id')
    .executeTakeFirst();
  if (known) {
    const user = await findUserRow(deps, known.user_id);
    if (!user) throw new AppError('NOT_FOUND', 'This account no longer exists');
    assertMaySignIn(user);
    return { userId: user.id, created: false };
  }
  if (!identity.email) {
    throw new AppError('OAUTH_EMAIL_MISSING', 'The provider shared no email address: allow it, or sign up with email');
  }

  const existing = await findUserRowByEmail(deps, identity.email);
  if (existing) {
    if (!identity.emailVerified) {
      throw new AppError(
        'EMAIL_TAKEN',
        'An account already uses this email: sign in to it another way (the provider does not vouch for the address)',
      );
    }
    assertMaySignIn(existing);
    if (!existing.email_verified_at) await reclaim(deps, existing.id);
    if (identity.name) await setNameIfMissing(deps, { userId: existing.id, name: identity.name });
    return { userId: await link(deps, { userId: existing.id, provider, identity }), created: false };
  }

  try {
    // The account and its identity together, or neither.
    const userId = await deps.db.transaction().execute(async (trx) => {
      const inTransaction = { ...deps, db: trx };
      const id = await insertUser(inTransaction, {
        email: identity.email ?? '',
        name: identity.name ?? undefined,
        // No verification email for an address the provider does not vouch for: proving it
        // later (a reset link, a code) would drop this identity, locking its owner out.
        emailVerified: identity.emailVerified,
      });
      return link(inTransaction, { userId: id, provider, identity });
    });
    return { userId, created: true };
  } catch (error) {
    // The same person signing in twice at once: the other request created it; try again.
    if (error instanceof AppError && error.appCode === 'EMAIL_TAKEN') return accountForIdentity(deps, input);
    throw error;
  }
}

/** Links the identity (once), and answers the account it is linked to (a concurrent link may have won). */
async function link(
  deps: Pick<Services, 'db'>,
  input: { userId: string; provider: ProviderId; identity: ProviderIdentity },
): Promise<string> {
  await deps.db
    .insertInto('user_identities')
    .values({
      user_id: input.userId,
      provider: input.provider,
      subject: input.identity.subject,
      email: input.identity.email,
    })
    .onConflict((oc) => oc.columns(['provider', 'subject']).doNothing())
    .execute();
  const linked = await deps.db
    .selectFrom('user_identities')
    .select('user_id')
    .where('provider', '=', input.provider)
    .where('subject', '=', input.identity.subject)
    .executeTakeFirstOrThrow();
  return linked.user_id;
}

export interface IdentityDto {
  provider: ProviderId;
  email: string | null;
  createdAt: string;
  lastUsedAt: string;
}

export async function listIdentities(deps: Pick<Services, 'db'>, userId: string): Promise<IdentityDto[]> {
  const rows = await deps.db
    .selectFrom('user_identities')
    .select(['provider', 'email', 'created_at', 'last_used_at'])
    .where('user_id', '=', userId)
    .orderBy('created_at')
    .execute();
  return rows.map((row) => ({
    // Written only from a ProviderId (accountForIdentity).
    provider: row.provider as ProviderId,
    email: row.email,
    createdAt: isoTime(row.created_at),
    lastUsedAt: isoTime(row.last_used_at),
  }));
}

/**
 * Unlinks the caller's identities with `provider`. Refused when the account would be left
 * without a way to sign in: no password and no other provider.
 */
export async function unlinkIdentity(
  deps: Pick<Services, 'db'>,
  input: { userId: string; provider: string },
): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    // The account row is locked so that two unlinks at once cannot both pass the check.
    const user = await trx
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', input.userId)
      .forUpdate()
      .executeTakeFirst();
    if (!user) throw callerAccountGone();
    const identities = await trx
      .selectFrom('user_identities')
      .select('provider')
      .where('user_id', '=', input.userId)
      .execute();
    if (!identities.some((row) => row.provider === input.provider)) {
      throw new AppError('NOT_FOUND', 'No {provider} sign-in is linked to this account', {
        params: { provider: input.provider },
      });
    }
    const others = identities.filter((row) => row.provider !== input.provider);
    if (user.password_hash === null && others.length === 0) {
      throw new AppError(
        'LAST_SIGN_IN_METHOD',
        'This is the only way to sign in to this account: set a password or link another provider first',
      );
    }
    await trx
      .deleteFrom('user_identities')
      .where('user_id', '=', input.userId)
      .where('provider', '=', input.provider)
      .execute();
  });
}
