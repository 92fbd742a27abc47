import type { UserRow } from '@app/db';
import { AppError } from '../../errors/index.ts';
import { isoTime } from '../../infra/iso-time.ts';
import { checkPassword, hashPassword, hashPasswordIfIdle } from '../../infra/passwords.ts';
import type { Services } from '../../services.ts';
import {
  activeSessions,
  type ClientInfo,
  createSession,
  endSessions,
  type IssuedRefreshToken,
  publishCappedSessions,
  publishRevocations,
  revocationLifetimeMs,
  revokeSessions,
  rotateRefreshToken,
} from '../sessions/sessions.service.ts';
import type { UserDto } from '../users/users.schemas.ts';
import {
  assertMaySignIn,
  callerRow,
  findUserRow,
  findUserRowByEmail,
  getUser,
  insertUser,
  maySignIn,
  setPasswordHash,
  storeRehash,
} from '../users/users.service.ts';
import type { AuthResult } from './auth.schemas.ts';
import type { Caller } from './authenticate.ts';
import { sendVerificationEmail } from './email-flows.service.ts';
import { assertNewPasswordAllowed } from './password-policy.ts';
import { dropUserTokens } from './user-tokens.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'tokens' | 'mailer' | 'clock' | 'log' | 'jobs'>;

/** The answer of a sign-in: tokens for the session `issued` started, and the account (read here unless given). */
export async function authResult(deps: Deps, issued: IssuedRefreshToken, user?: UserDto): Promise<AuthResult> {
  await publishCappedSessions(deps, issued);
  const access = await deps.tokens.issueAccessToken({ userId: issued.userId, sessionId: issued.sessionId });
  return {
    accessToken: access.token,
    refreshToken: issued.refreshToken,
    tokenType: 'Bearer',
    accessTokenExpiresAt: isoTime(access.expiresAt),
    refreshTokenExpiresAt: isoTime(issued.refreshTokenExpiresAt),
    user: user ?? (await getUser(deps, issued.userId)),
  };
}

/** Signs in an account that exists and is not disabled (used by every way of signing in). */
export async function startSession(
  deps: Deps,
  input: { userId: string; client: ClientInfo; passwordHash?: string },
): Promise<AuthResult> {
  return authResult(deps, await createSession(deps, input));
}

export async function register(
  deps: Deps,
  input: { email: string; password: string; name?: string | undefined; client: ClientInfo; signal?: AbortSignal },
): Promise<AuthResult> {
  const passwordHash = await hashPassword(input.password, input.signal);
  // The account and its verification email: both or neither.
  const userId = await deps.db.transaction().execute(async (trx) => {
    const id = await insertUser({ ...deps, db: trx }, { email: input.email, name: input.name, passwordHash });
    await sendVerificationEmail(deps, {
      userId: id,
      requestId: input.client.requestId,
      locale: input.client.locale,
      db: trx,
    });
    return id;
  });
  return startSession(deps, { userId, client: input.client });
}

/**
 * Unknown email and wrong password answer alike, after the same work (a dummy hash is
 * verified for unknown emails). A disabled account is named only to its password holder.
 */
export async function login(
  deps: Deps,
  input: { email: string; password: string; client: ClientInfo; signal?: AbortSignal },
): Promise<AuthResult> {
  const user = await findUserRowByEmail(deps, input.email);
  const { valid, needsRehash } = await checkPassword(user?.password_hash, input.password, input.signal);
  if (!user?.password_hash || !valid) throw new AppError('INVALID_CREDENTIALS', 'Email or password is incorrect');
  assertMaySignIn(user);
  let passwordHash = user.password_hash;
  // Hashed with parameters older than today's: upgraded, when a hashing turn is free at once
  // (a busy server signs in with the hash as it is, and upgrades it at a later sign-in).
  const rehashed = needsRehash ? await hashPasswordIfIdle(input.password) : undefined;
  if (rehashed && (await storeRehash(deps, { userId: user.id, passwordHash: rehashed, replacing: passwordHash }))) {
    passwordHash = rehashed;
  }
  // The session starts only while the password checked is still the account's: one changed
  // or reset during the check (its other sessions ended) leaves this sign-in refused.
  try {
    return await startSession(deps, { userId: user.id, client: input.client, passwordHash });
  } catch (error) {
    if (!(error instanceof AppError && error.appCode === 'INVALID_CREDENTIALS')) throw error;
    // The hash was replaced meanwhile: by a concurrent sign-in's upgrade of it (the same
    // password, which must not read as a wrong one), or by a change or a reset. Checked once
    // more against the account's hash now.
    const current = (await findUserRow(deps, user.id))?.password_hash;
    if (!current || current === passwordHash || !(await checkPassword(current, input.password)).valid) throw error;
    return startSession(deps, { userId: user.id, client: input.client, passwordHash: current });
  }
}

/** The account is read before the token rotates (`rotateRefreshToken`): once it has, nothing is left to fail. */
export async function refresh(deps: Deps, input: { refreshToken: string; client: ClientInfo }): Promise<AuthResult> {
  const issued = await rotateRefreshToken(deps, input, async (userId) => {
    const user = await findUserRow(deps, userId);
    if (!user || !maySignIn(user)) {
      await revokeSessions(deps, { userId });
      if (user) assertMaySignIn(user);
      throw new AppError('ACCOUNT_DISABLED', 'This account is disabled');
    }
    return getUser(deps, userId);
  });
  return authResult(deps, issued, issued.admitted);
}

export async function logout(deps: Deps, caller: Caller): Promise<void> {
  await revokeSessions(deps, { userId: caller.userId, sessionIds: [caller.sessionId] });
}

export async function logoutAll(deps: Deps, caller: Caller): Promise<void> {
  await revokeSessions(deps, { userId: caller.userId });
}

export async function listSessions(deps: Deps, caller: Caller) {
  const sessions = await activeSessions(deps, caller.userId);
  return sessions.map((session) => ({
    id: session.id,
    createdAt: isoTime(session.created_at),
    lastUsedAt: isoTime(session.last_used_at),
    userAgent: session.user_agent,
    ip: session.ip,
    current: session.id === caller.sessionId,
  }));
}

/**
 * Ends one of the caller's own sessions; any other id is "not found". One already ended is
 * done (a retry after a 503 that came once the session had ended).
 */
export async function revokeSession(deps: Deps, input: { caller: Caller; sessionId: string }): Promise<void> {
  const ended = await revokeSessions(deps, { userId: input.caller.userId, sessionIds: [input.sessionId] });
  if (ended.length > 0) return;
  const own = await deps.db
    .selectFrom('sessions')
    .select('id')
    .where('id', '=', input.sessionId)
    .where('user_id', '=', input.caller.userId)
    .executeTakeFirst();
  if (!own) throw new AppError('NOT_FOUND', 'No such session');
}

/** Changes the password, ends every other session of the user and voids any reset link sent before. */
export async function changePassword(
  deps: Deps,
  input: { caller: Caller; currentPassword: string; newPassword: string },
): Promise<void> {
  const user = await callerRow(deps, input.caller.userId);
  const { valid } = await checkPassword(user.password_hash, input.currentPassword);
  if (!valid) {
    if (!(await changedAlreadyTo(deps, { user, sessionId: input.caller.sessionId, newPassword: input.newPassword }))) {
      throw new AppError('INVALID_CREDENTIALS', 'The current password is incorrect');
    }
    // The retry of a change that committed and answered 503 (its revocations unpublished):
    // the current password is the new one by now. It finishes the publishing, or 503 again.
    await publishRevocations(deps, user.id);
    return;
  }
  assertNewPasswordAllowed(input.newPassword, user.email);
  const passwordHash = await hashPassword(input.newPassword);
  // Together: once the password is replaced, a retry (with the old one) could not end the sessions.
  await deps.db.transaction().execute(async (trx) => {
    // Still the password checked, and the caller still signed in: a reset, a reclaim or a sign-out
    // everywhere committed while the new hash was made is not undone by a change it has shut out.
    // (The session is read, not locked: a sign-out everywhere locks sessions in its own order.)
    const replaced = await setPasswordHash(
      { ...deps, db: trx },
      { userId: user.id, passwordHash, replacing: user.password_hash },
    );
    if (!replaced) throw new AppError('INVALID_CREDENTIALS', 'The current password is incorrect');
    const session = await trx
      .selectFrom('sessions')
      .select('id')
      .where('id', '=', input.caller.sessionId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!session) throw new AppError('SESSION_REVOKED', 'This session has ended: sign in again');
    await dropUserTokens({ db: trx }, user.id, 'reset-password');
    await endSessions({ ...deps, db: trx }, { userId: user.id, exceptSessionId: input.caller.sessionId });
  });
  await publishRevocations(deps, user.id);
}

/**
 * Whether this is the caller's own change sent again (after a 503): the password was set to
 * `newPassword`, by this session, while its revocations may still matter. A change ends every
 * other session, and a reset every one, so a session not younger than the password made it. Only
 * then is a second password hashed: another caller's wrong guess is one guess.
 */
async function changedAlreadyTo(
  deps: Deps,
  input: { user: UserRow; sessionId: string; newPassword: string },
): Promise<boolean> {
  const changedAt = input.user.password_changed_at?.getTime();
  if (changedAt === undefined || deps.clock.now() - changedAt > revocationLifetimeMs(deps)) return false;
  const session = await deps.db
    .selectFrom('sessions')
    .select('created_at')
    .where('id', '=', input.sessionId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (!session || session.created_at.getTime() > changedAt) return false;
  return (await checkPassword(input.user.password_hash, input.newPassword)).valid;
}
