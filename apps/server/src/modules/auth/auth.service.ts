import { hashPassword } from '@app/db';
import { AppError } from '../../errors.ts';
import { checkPassword } from '../../infra/passwords.ts';
import { isUniqueViolation } from '../../infra/postgres-errors.ts';
import type { Services } from '../../services.ts';
import { assignDefaultRole } from '../rbac/rbac.service.ts';
import {
  activeSessions,
  type ClientInfo,
  createSession,
  type IssuedRefreshToken,
  revokeSessions,
  rotateRefreshToken,
} from '../sessions/sessions.service.ts';
import { callerRow, findUserRow, findUserRowByEmail, getUser } from '../users/users.service.ts';
import type { AuthResult } from './auth.schemas.ts';
import { sendVerificationEmail } from './email-flows.service.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'tokens' | 'mailer' | 'clock' | 'log'>;

export interface Caller {
  userId: string;
  sessionId: string;
}

const INVALID_CREDENTIALS = 'Email or password is incorrect';

async function authResult(deps: Deps, issued: IssuedRefreshToken): Promise<AuthResult> {
  const access = await deps.tokens.issueAccessToken({ userId: issued.userId, sessionId: issued.sessionId });
  return {
    accessToken: access.token,
    refreshToken: issued.refreshToken,
    tokenType: 'Bearer',
    accessTokenExpiresAt: access.expiresAt.toISOString(),
    refreshTokenExpiresAt: issued.refreshTokenExpiresAt.toISOString(),
    user: await getUser(deps.db, issued.userId),
  };
}

/** Signs in an account that exists and is not disabled (used by every way of signing in). */
export async function startSession(deps: Deps, userId: string, client: ClientInfo): Promise<AuthResult> {
  return authResult(deps, await createSession(deps, userId, client));
}

export async function register(
  deps: Deps,
  input: { email: string; password: string; name?: string | undefined },
  client: ClientInfo,
): Promise<AuthResult> {
  const passwordHash = await hashPassword(input.password);
  let userId: string;
  try {
    userId = await deps.db.transaction().execute(async (trx) => {
      const user = await trx
        .insertInto('users')
        .values({ email: input.email, name: input.name ?? null, password_hash: passwordHash })
        .returning('id')
        .executeTakeFirstOrThrow();
      await assignDefaultRole(trx, user.id);
      return user.id;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new AppError('EMAIL_TAKEN', 'An account with this email already exists');
    throw error;
  }
  sendVerificationEmail(deps, userId, client.requestId);
  return startSession(deps, userId, client);
}

/**
 * Unknown email and wrong password answer alike, after the same work (a dummy hash is
 * verified for unknown emails). A disabled account is named only to its password holder.
 */
export async function login(
  deps: Deps,
  input: { email: string; password: string },
  client: ClientInfo,
): Promise<AuthResult> {
  const user = await findUserRowByEmail(deps.db, input.email);
  const { valid, needsRehash } = await checkPassword(user?.password_hash, input.password);
  if (!user || !valid) throw new AppError('INVALID_CREDENTIALS', INVALID_CREDENTIALS);
  if (user.disabled_at) throw new AppError('ACCOUNT_DISABLED', 'This account is disabled');
  if (needsRehash) {
    await deps.db
      .updateTable('users')
      .set({ password_hash: await hashPassword(input.password) })
      .where('id', '=', user.id)
      .execute();
  }
  return startSession(deps, user.id, client);
}

export async function refresh(deps: Deps, refreshToken: string, client: ClientInfo): Promise<AuthResult> {
  const issued = await rotateRefreshToken(deps, refreshToken, client);
  const user = await findUserRow(deps.db, issued.userId);
  if (!user || user.disabled_at) {
    await revokeSessions(deps, { userId: issued.userId });
    throw new AppError('ACCOUNT_DISABLED', 'This account is disabled');
  }
  return authResult(deps, issued);
}

export async function logout(deps: Deps, caller: Caller): Promise<void> {
  await revokeSessions(deps, { userId: caller.userId, sessionIds: [caller.sessionId] });
}

export async function logoutAll(deps: Deps, caller: Caller): Promise<void> {
  await revokeSessions(deps, { userId: caller.userId });
}

export async function listSessions(deps: Deps, caller: Caller) {
  const sessions = await activeSessions(deps.db, caller.userId);
  return sessions.map((session) => ({
    id: session.id,
    createdAt: session.created_at.toISOString(),
    lastUsedAt: session.last_used_at.toISOString(),
    userAgent: session.user_agent,
    ip: session.ip,
    current: session.id === caller.sessionId,
  }));
}

/** Ends one of the caller's own active sessions; any other id is "not found". */
export async function revokeSession(deps: Deps, caller: Caller, sessionId: string): Promise<void> {
  const ended = await revokeSessions(deps, { userId: caller.userId, sessionIds: [sessionId] });
  if (ended.length === 0) throw new AppError('NOT_FOUND', 'No such session');
}

/** Changes the password and ends every other session of the user. */
export async function changePassword(
  deps: Deps,
  caller: Caller,
  input: { currentPassword: string; newPassword: string },
): Promise<void> {
  const user = await callerRow(deps.db, caller.userId);
  const { valid } = await checkPassword(user.password_hash, input.currentPassword);
  if (!valid) throw new AppError('INVALID_CREDENTIALS', 'The current password is incorrect');
  if (input.newPassword.toLowerCase() === user.email) {
    throw new AppError('VALIDATION_FAILED', 'The new password must not be the email address', {
      details: { field: 'newPassword' },
    });
  }
  await deps.db
    .updateTable('users')
    .set({ password_hash: await hashPassword(input.newPassword) })
    .where('id', '=', user.id)
    .execute();
  await revokeSessions(deps, { userId: user.id, exceptSessionId: caller.sessionId });
}
