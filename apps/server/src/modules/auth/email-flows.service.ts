/** Email verification and password reset: single-use links sent by email. */
import type { UserRow } from '@app/db';
import { type Locale, preferredLocale } from '../../i18n/locale.ts';
import type { EmailMessage } from '../../infra/mail/mailer.ts';
import { hashPassword } from '../../infra/passwords.ts';
import type { Services } from '../../services.ts';
import { revokeSessions } from '../sessions/sessions.service.ts';
import { findUserRow, findUserRowByEmail, maySignIn, setPasswordHash } from '../users/users.service.ts';
import { composeEmail, greeting } from './emails.ts';
import { confirmEmailOwner } from './identities.service.ts';
import { assertNewPasswordAllowed } from './password-policy.ts';
import { consumeUserToken, invalidLink, issueUserToken, type LinkPurpose } from './user-tokens.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'mailer' | 'clock' | 'log'>;

const VERIFY_EMAIL_TTL_MS = 24 * 60 * 60 * 1000;
const RESET_PASSWORD_TTL_MS = 60 * 60 * 1000;

/** The email carrying a new single-use link for `purpose`: the template and the app's page share its name. */
async function linkEmail(
  deps: Deps,
  {
    user,
    purpose,
    ttlMs,
    vars = {},
    locale,
  }: { user: UserRow; purpose: LinkPurpose; ttlMs: number; vars?: Record<string, string>; locale: Locale | undefined },
): Promise<EmailMessage> {
  const token = await issueUserToken(deps, { userId: user.id, purpose, ttlMs });
  return composeEmail(deps, {
    template: purpose,
    to: user.email,
    locale: preferredLocale(user.locale, locale),
    vars: { greeting: greeting(user.name), link: `${deps.config.appUrl}/${purpose}?token=${token}`, ...vars },
  });
}

/** Emails a verification link (in the background: the caller never waits for delivery). */
export function sendVerificationEmail(
  deps: Deps,
  input: { userId: string; requestId?: string | undefined; locale?: Locale | undefined },
): void {
  deps.mailer.dispatch(
    async () => {
      const user = await findUserRow(deps, input.userId);
      if (!user || user.email_verified_at) return undefined;
      return linkEmail(deps, { user, purpose: 'verify-email', ttlMs: VERIFY_EMAIL_TTL_MS, locale: input.locale });
    },
    { requestId: input.requestId },
  );
}

export async function verifyEmail(deps: Deps, token: string): Promise<void> {
  const userId = await consumeUserToken(deps, { token, purpose: 'verify-email' });
  await confirmEmailOwner(deps, userId);
}

/**
 * Always the same answer, in the same time: whether the account exists is decided, and
 * the link made and sent, after the caller has its answer.
 */
export function forgotPassword(
  deps: Deps,
  input: { email: string; requestId?: string | undefined; locale?: Locale | undefined },
): void {
  deps.mailer.dispatch(
    async () => {
      const user = await findUserRowByEmail(deps, input.email);
      if (!user || !maySignIn(user)) return undefined;
      return linkEmail(deps, {
        user,
        purpose: 'reset-password',
        ttlMs: RESET_PASSWORD_TTL_MS,
        vars: { minutes: String(RESET_PASSWORD_TTL_MS / 60_000) },
        locale: input.locale,
      });
    },
    { requestId: input.requestId },
  );
}

/** Sets the new password, confirms the email (the link proved the inbox) and ends every session. */
export async function resetPassword(deps: Deps, input: { token: string; newPassword: string }): Promise<void> {
  const passwordHash = await hashPassword(input.newPassword);
  // One transaction: a refused new password leaves the link unused.
  const userId = await deps.db.transaction().execute(async (trx) => {
    const inTransaction = { ...deps, db: trx };
    const id = await consumeUserToken(inTransaction, { token: input.token, purpose: 'reset-password' });
    const user = await findUserRow(inTransaction, id);
    if (!user) throw invalidLink();
    assertNewPasswordAllowed(input.newPassword, user.email);
    await setPasswordHash(inTransaction, { userId: id, passwordHash });
    await confirmEmailOwner(inTransaction, id);
    return id;
  });
  await revokeSessions(deps, { userId });
}
