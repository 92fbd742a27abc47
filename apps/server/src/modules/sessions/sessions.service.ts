/**
 * Refresh sessions: one row per sign-in, the refresh token rotated on every use, a reused
 * (already rotated) token revoking the whole session. Revoking also writes a marker per
 * session in the key-value store that outlives every access token of that session, so
 * `authedProcedure` rejects them on the very next request, in every process.
 */
import type { Db, SessionRow } from '@app/db';
import { sql } from 'kysely';
import { AppError } from '../../errors.ts';
import type { KeyValueStore } from '../../infra/kv/index.ts';
import { hashRefreshToken, newRefreshToken } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config'>;

export interface ClientInfo {
  ip: string;
  userAgent: string | undefined;
  /** For logs of work that outlives the request (emails). */
  requestId?: string;
}

export interface IssuedRefreshToken {
  sessionId: string;
  userId: string;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
}

const revokedMarker = (sessionId: string) => `revoked-session:${sessionId}`;

function expiresAt(deps: Deps): Date {
  return new Date(Date.now() + deps.config.jwt.refreshTokenTtlSeconds * 1000);
}

export async function createSession(deps: Deps, userId: string, client: ClientInfo): Promise<IssuedRefreshToken> {
  const refreshToken = newRefreshToken();
  const refreshTokenExpiresAt = expiresAt(deps);
  const row = await deps.db
    .insertInto('sessions')
    .values({
      user_id: userId,
      refresh_token_hash: hashRefreshToken(refreshToken),
      user_agent: client.userAgent?.slice(0, 500) ?? null,
      ip: client.ip,
      expires_at: refreshTokenExpiresAt,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { sessionId: row.id, userId, refreshToken, refreshTokenExpiresAt };
}

/**
 * Swaps a refresh token for a new one. An unknown or expired token: INVALID_REFRESH_TOKEN.
 * A token that was already swapped (stolen, or replayed): the session is revoked and the
 * answer is SESSION_REVOKED, for the thief and the owner alike.
 */
export async function rotateRefreshToken(
  deps: Deps,
  refreshToken: string,
  client: ClientInfo,
): Promise<IssuedRefreshToken> {
  const presented = hashRefreshToken(refreshToken);
  const session = await deps.db
    .selectFrom('sessions')
    .selectAll()
    .where((eb) => eb.or([eb('refresh_token_hash', '=', presented), eb('previous_refresh_token_hash', '=', presented)]))
    .executeTakeFirst();
  if (!session) throw new AppError('INVALID_REFRESH_TOKEN', 'The refresh token is not valid');
  if (session.revoked_at) throw new AppError('SESSION_REVOKED', 'This session has ended');
  if (session.refresh_token_hash !== presented) {
    await revokeSessions(deps, { userId: session.user_id, sessionIds: [session.id] });
    throw new AppError('SESSION_REVOKED', 'This refresh token was already used: the session has been ended');
  }
  if (session.expires_at.getTime() <= Date.now())
    throw new AppError('INVALID_REFRESH_TOKEN', 'The session has expired');

  const next = newRefreshToken();
  const refreshTokenExpiresAt = expiresAt(deps);
  const rotated = await deps.db
    .updateTable('sessions')
    .set({
      refresh_token_hash: hashRefreshToken(next),
      previous_refresh_token_hash: presented,
      last_used_at: sql`now()`,
      expires_at: refreshTokenExpiresAt,
      ip: client.ip,
      user_agent: client.userAgent?.slice(0, 500) ?? session.user_agent,
    })
    .where('id', '=', session.id)
    .where('refresh_token_hash', '=', presented) // lost a race with a concurrent refresh: that is reuse too
    .where('revoked_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  if (!rotated) {
    await revokeSessions(deps, { userId: session.user_id, sessionIds: [session.id] });
    throw new AppError('SESSION_REVOKED', 'This refresh token was already used: the session has been ended');
  }
  return { sessionId: session.id, userId: session.user_id, refreshToken: next, refreshTokenExpiresAt };
}

/**
 * Ends the user's sessions (all, the listed ones, or all but one) and marks them revoked
 * for as long as any access token of theirs could still be valid. Returns the ended ids.
 */
export async function revokeSessions(
  deps: Deps,
  scope: { userId: string; sessionIds?: string[]; exceptSessionId?: string },
): Promise<string[]> {
  if (scope.sessionIds?.length === 0) return [];
  let query = deps.db
    .updateTable('sessions')
    .set({ revoked_at: sql`now()` })
    .where('user_id', '=', scope.userId)
    .where('revoked_at', 'is', null);
  if (scope.sessionIds) query = query.where('id', 'in', scope.sessionIds);
  if (scope.exceptSessionId) query = query.where('id', '!=', scope.exceptSessionId);
  const ended = await query.returning('id').execute();
  await markRevoked(
    deps,
    ended.map((row) => row.id),
  );
  return ended.map((row) => row.id);
}

async function markRevoked(deps: Deps, sessionIds: string[]): Promise<void> {
  // A little longer than the access-token lifetime, so no clock skew lets one through.
  const ttlMs = (deps.config.jwt.accessTokenTtlSeconds + 60) * 1000;
  await Promise.all(sessionIds.map((id) => deps.kv.set(revokedMarker(id), '1', { ttlMs })));
}

export async function isSessionRevoked(kv: KeyValueStore, sessionId: string): Promise<boolean> {
  return (await kv.get(revokedMarker(sessionId))) !== null;
}

export async function activeSessions(db: Db, userId: string): Promise<SessionRow[]> {
  return db
    .selectFrom('sessions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', new Date())
    .orderBy('last_used_at', 'desc')
    .execute();
}
