/**
 * The `user_identities` table's owner: which account each provider identity signs in to.
 * An identity is found by (provider, subject); a new one links to the account with the same
 * email only when the provider vouches for that email, otherwise it creates an account.
 */
import { AppError } from '../../errors/index.ts';
import type { Identity, ProviderId } from '../../infra/oauth/provider.ts';
import type { Services } from '../../services.ts';
import {
  callerAccountGone,
  createUser,
  findUserRow,
  findUserRowByEmail,
  reclaimUnverifiedAccount,
} from '../users/users.service.ts';
import { sendVerificationEmail } from './email-flows.service.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'tokens' | 'mailer' | 'clock' | 'log'>;

const disabled = () => new AppError('ACCOUNT_DISABLED', 'This account is disabled');

/** The account `identity` signs in to, linked or created on the way. */
export async function accountForIdentity(
  deps: Deps,
  input: { provider: ProviderId; identity: Identity; requestId?: string | undefined },
): Promise<{ userId: string; created: boolean }> {
  const { provider, identity } = input;
  const now = new Date(deps.clock.now());
  const known = await deps.db
    .updateTable('user_identities')
    .set({ last_used_at: now, email: identity.email })
    .where('provider', '=', provider)
    .where('subject', '=', identity.subject)
    .returning('user_id')
    .executeTakeFirst();
  if (known) {
    const user = await findUserRow(deps, known.user_id);
    if (!user) throw new AppError('NOT_FOUND', 'This account no longer exists');
    if (user.disabled_at) throw disabled();
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
    if (existing.disabled_at) throw disabled();
    if (!existing.email_verified_at) {
      await reclaimUnverifiedAccount(deps, existing.id);
      deps.log.warn(
        { userId: existing.id, provider },
        'an unverified account was claimed through a provider: its password was removed and its sessions ended',
      );
    }
    await link(deps, { userId: existing.id, provider, identity });
    return { userId: existing.id, created: false };
  }

  let userId: string;
  try {
    userId = await createUser(deps, {
      email: identity.email,
      name: identity.name ?? undefined,
      emailVerified: identity.emailVerified,
    });
  } catch (error) {
    // The same person signing in twice at once: the other request created it; try again.
    if (error instanceof AppError && error.appCode === 'EMAIL_TAKEN' && identity.emailVerified) {
      return accountForIdentity(deps, input);
    }
    throw error;
  }
  await link(deps, { userId, provider, identity });
  if (!identity.emailVerified) sendVerificationEmail(deps, { userId, requestId: input.requestId });
  return { userId, created: true };
}

async function link(deps: Deps, input: { userId: string; provider: ProviderId; identity: Identity }): Promise<void> {
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
    createdAt: row.created_at.toISOString(),
    lastUsedAt: row.last_used_at.toISOString(),
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
      throw new AppError('NOT_FOUND', `No ${input.provider} sign-in is linked to this account`);
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
