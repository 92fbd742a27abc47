/** Email verification and password reset: single-use links sent by email. */
import { hashPassword } from '@app/db';
import { AppError } from '../../errors.ts';
import type { Services } from '../../services.ts';
import { revokeSessions } from '../sessions/sessions.service.ts';
import { findUserRow, findUserRowByEmail } from '../users/users.service.ts';
import { composeEmail, greeting } from './emails.ts';
import { consumeUserToken, issueUserToken } from './user-tokens.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'mailer' | 'clock' | 'log'>;

const VERIFY_EMAIL_TTL_MS = 24 * 60 * 60 * 1000;
const RESET_PASSWORD_TTL_MS = 60 * 60 * 1000;

/** Emails a verification link (in the background: the caller never waits for delivery). */
export function sendVerificationEmail(deps: Deps, userId: string, requestId?: string): void {
  deps.mailer.dispatch(
    async () => {
      const user = await findUserRow(deps.db, userId);
      if (!user || user.email_verified_at) return undefined;
      const token = await issueUserToken(deps, user.id, 'verify-email', VERIFY_EMAIL_TTL_MS);
      return composeEmail(deps, 'verify-email', user.email, {
        greeting: greeting(user.name),
        link: `${deps.config.appUrl}/verify-email?token=${token}`,
      });
    },
    { requestId },
  );
}

export async function verifyEmail(deps: Deps, token: string): Promise<void> {
  const userId = await consumeUserToken(deps, token, 'verify-email');
  await deps.db
    .updateTable('users')
    .set({ email_verified_at: new Date(deps.clock.now()) })
    .where('id', '=', userId)
    .where('email_verified_at', 'is', null)
    .execute();
}

/**
 * Always the same answer, in the same time: whether the account exists is decided, and
 * the link made and sent, after the caller has its answer.
 */
export function forgotPassword(deps: Deps, email: string, requestId?: string): void {
  deps.mailer.dispatch(
    async () => {
      const user = await findUserRowByEmail(deps.db, email);
      if (!user || user.disabled_at) return undefined;
      const token = await issueUserToken(deps, user.id, 'reset-password', RESET_PASSWORD_TTL_MS);
      return composeEmail(deps, 'reset-password', user.email, {
        greeting: greeting(user.name),
        link: `${deps.config.appUrl}/reset-password?token=${token}`,
        minutes: String(RESET_PASSWORD_TTL_MS / 60_000),
      });
    },
    { requestId },
  );
}

/** Sets the new password, confirms the email (the link proved the inbox) and ends every session. */
export async function resetPassword(deps: Deps, token: string, newPassword: string): Promise<void> {
  const passwordHash = await hashPassword(newPassword);
  // One transaction: a refused new password leaves the link unused.
  const userId = await deps.db.transaction().execute(async (trx) => {
    const id = await consumeUserToken({ ...deps, db: trx }, token, 'reset-password');
    const user = await findUserRow(trx, id);
    if (!user) throw new AppError('INVALID_TOKEN', 'This link is invalid, already used, or expired: ask for a new one');
    if (newPassword.toLowerCase() === user.email) {
      throw new AppError('VALIDATION_FAILED', 'The new password must not be the email address', {
        details: { field: 'newPassword' },
      });
    }
    await trx
      .updateTable('users')
      .set({ password_hash: passwordHash, email_verified_at: user.email_verified_at ?? new Date(deps.clock.now()) })
      .where('id', '=', id)
      .execute();
    return id;
  });
  await revokeSessions(deps, { userId });
}
