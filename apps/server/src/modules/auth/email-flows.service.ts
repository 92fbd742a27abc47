/** Email verification and password reset: single-use links sent by email. */
import type { Db } from '@app/db';
import { AppError } from '../../errors/index.ts';
import type { Locale } from '../../i18n/locale.ts';
import { checkPassword, hashPassword } from '../../infra/passwords.ts';
import type { Services } from '../../services.ts';
import { endSessions, publishRevocations, revocationLifetimeMs } from '../sessions/sessions.service.ts';
import { findUserRow, setPasswordHash } from '../users/users.service.ts';
import { enqueueEmail } from './email-jobs.ts';
import { confirmEmailOwner } from './identities.service.ts';
import { dropCodesOf } from './oauth-flows.ts';
import { codeKey } from './otp-codes.ts';
import { assertNewPasswordAllowed } from './password-policy.ts';
import { consumeUserToken, discardUserToken, dropUserTokens, invalidLink, usedSince } from './user-tokens.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'clock' | 'log' | 'jobs'>;

/** Queues the verification email (nothing is sent to an address already verified). */
export async function sendVerificationEmail(
  deps: Deps,
  input: { userId: string; requestId?: string | undefined; locale?: Locale | undefined; db?: Db },
): Promise<void> {
  await enqueueEmail(
    deps,
    { kind: 'verify-email', userId: input.userId, locale: input.locale, requestId: input.requestId },
    { db: input.db },
  );
}

/**
 * Spends the link and confirms the address together (a failure between them leaves the link
 * usable), signed in as the account it was sent to. Opened by anyone else, it would confirm
 * an account whose password and sessions belong to whoever registered it, and the address's
 * owner, signing in later by email code or provider, would land in it (a pre-hijacked
 * account). That owner signs in by email code instead, which reclaims it.
 */
export async function verifyEmail(deps: Deps, input: { token: string; userId: string }): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    const inTransaction = { ...deps, db: trx };
    const owner = await consumeUserToken(inTransaction, { token: input.token, purpose: 'verify-email' });
    // Thrown inside the transaction: the link stays unused, for its own account.
    if (owner !== input.userId) {
      throw new AppError(
        'INVALID_TOKEN',
        'This link was sent to another account: sign in to that one and open it again',
        {
          details: { reason: 'other-account' },
        },
      );
    }
    await confirmEmailOwner(inTransaction, owner);
  });
}

/**
 * Always the same answer, in the same time: whether the account exists is decided, and
 * the link made and sent, by the email job, after the caller has its answer.
 */
export async function forgotPassword(
  deps: Deps,
  input: { email: string; requestId?: string | undefined; locale?: Locale | undefined },
): Promise<void> {
  await enqueueEmail(deps, {
    kind: 'reset-password',
    email: input.email,
    requestedAt: deps.clock.now(),
    locale: input.locale,
    requestId: input.requestId,
  });
}

/**
 * Sets the new password, confirms the email (the link proved the inbox) and ends every
 * session, every provider sign-in not yet exchanged for one and the email sign-in code not
 * yet used (either would start a session the reset did not end). The account's other reset
 * links stop working, as after a change of password (one sent by a request whose answer was
 * lost would undo this reset).
 */
export async function resetPassword(deps: Deps, input: { token: string; newPassword: string }): Promise<void> {
  const passwordHash = await hashPassword(input.newPassword);
  // One transaction: a refused new password, or a failure before the sessions end, leaves the
  // link unused for a retry (once spent, nothing could end the sessions it was used to end).
  const made = await deps.db
    .transaction()
    .execute(async (trx) => {
      const inTransaction = { ...deps, db: trx };
      const id = await consumeUserToken(inTransaction, { token: input.token, purpose: 'reset-password' });
      const user = await findUserRow(inTransaction, id);
      if (!user) throw invalidLink();
      assertNewPasswordAllowed(input.newPassword, user.email);
      await setPasswordHash(inTransaction, { userId: id, passwordHash });
      await dropUserTokens(inTransaction, id, 'reset-password');
      await confirmEmailOwner(inTransaction, id);
      await dropCodesOf(inTransaction, id);
      await endSessions(inTransaction, { userId: id });
      return { userId: id, email: user.email };
    })
    .catch(async (error: unknown) => {
      // The link spent already: by this same reset, sent again after a 503 that came once it
      // had committed (Redis not told of the ended sessions), finished here; else refused.
      if (!(error instanceof AppError && error.appCode === 'INVALID_TOKEN')) throw error;
      const done = await resetAlreadyMade(deps, input);
      if (!done) throw error;
      return done;
    });
  // After the commit (a reset rolled back leaves the code); never a failure of the reset: a
  // store out of reach cannot check the code either, and it expires within minutes.
  await deps.kv.delete(codeKey(made.email)).catch((error: unknown) => {
    deps.log.warn({ err: error }, 'email sign-in code not discarded after a password reset: it expires on its own');
  });
  await publishRevocations(deps, made.userId);
}

/**
 * The account a reset with this link and this new password has been made to, while its
 * revocations may still matter (`revocationLifetimeMs`); undefined if not (a link used by
 * another reset, or long ago, or another password: the new one is the one in force). A
 * spent link answers one other password only, then is gone: it cannot be used to try
 * passwords against the account.
 */
async function resetAlreadyMade(
  deps: Deps,
  input: { token: string; newPassword: string },
): Promise<{ userId: string; email: string } | undefined> {
  const since = deps.clock.now() - revocationLifetimeMs(deps);
  const userId = await usedSince(deps, { token: input.token, purpose: 'reset-password', since });
  const user = userId === undefined ? undefined : await findUserRow(deps, userId);
  if (!user?.password_changed_at || user.password_changed_at.getTime() < since) return undefined;
  if (!(await checkPassword(user.password_hash, input.newPassword)).valid) {
    await discardUserToken(deps, { token: input.token, purpose: 'reset-password' });
    return undefined;
  }
  return { userId: user.id, email: user.email };
}
