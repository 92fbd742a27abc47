/**
 * Refresh sessions: one row per sign-in, the refresh token rotated on every use, a reused
 * (already rotated) token revoking the whole session, except within a short grace window
 * in which concurrent refreshes of one token (two tabs, a retrying client) all get the
 * same successor.
 *
 * Revocation is durable: ending a session records it in `session_revocations` (Postgres,
 * the truth), in the same statement, until no access token of it can still be valid. The
 * key-value store caches that list as one marker per session, so `authenticate` checks
 * a session with one round trip and no SQL. A lost cache (Redis restarted or flushed) is
 * detected by a missing "cache ready" key: callers then ask Postgres while the cache is
 * rebuilt from the list. A store that may have lost only some markers (a failover, a restart
 * from a snapshot) is not trusted either: each process rebuilds the cache on its first
 * connection and on every reconnection, asking Postgres meanwhile. A revocation counts as done only once it is effective: its marker
 * is written, or the cache is marked as lost so every process asks Postgres.
 */

import type { Db, SessionRow } from '@app/db';
import { sql } from 'kysely';
import { AppError } from '../../errors/index.ts';
import type { Locale } from '../../i18n/locale.ts';
import { DependencyUnavailableError, unavailableDependency } from '../../infra/dependency-errors.ts';
import { isoTime } from '../../infra/iso-time.ts';
import type { QueueDefinition } from '../../infra/jobs.ts';
import type { KeyValueStore } from '../../infra/kv/index.ts';
import { addressKey } from '../../infra/rate-limiter.ts';
import { hashOpaqueToken, newOpaqueToken } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';
import { assertMaySignIn, findUserRow } from '../users/users.service.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'tokens' | 'clock' | 'jobs'>;
/** What the revocation cache needs; publishing a revocation may also queue a job. */
type CacheDeps = Pick<Services, 'db' | 'kv' | 'config' | 'log' | 'clock'>;
type RevocationDeps = CacheDeps & Pick<Services, 'jobs'>;

export interface ClientInfo {
  ip: string;
  userAgent: string | undefined;
  /** For logs of work that outlives the request (emails). */
  requestId?: string;
  /** The language the request asked for (emails to an account without its own). */
  locale?: Locale;
}

export interface IssuedRefreshToken {
  sessionId: string;
  userId: string;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
  /** A sign-in ended sessions over MAX_SESSIONS_PER_USER: they are published once it commits. */
  endedSessions?: boolean;
}

const revokedMarker = (sessionId: string) => `revoked-session:${sessionId}`;
/** Present while the markers mirror `session_revocations`; gone after a restart or flush of the store. */
const CACHE_READY = 'revoked-sessions:cached';
/** Access tokens are refused a little longer than they live, so no clock skew lets one through. */
const CLOCK_SKEW_SECONDS = 60;

/**
 * How long a revocation matters (ms): as long as an access token issued just before it lives,
 * clock skew included. After that, Postgres's refusal of the session's refresh token is enough.
 */
export const revocationLifetimeMs = (deps: { config: RevocationDeps['config'] }): number =>
  (deps.config.jwt.accessTokenTtlSeconds + CLOCK_SKEW_SECONDS) * 1000;
/** After a failed rebuild, callers keep asking Postgres for this long before the next attempt. */
const REBUILD_RETRY_MS = 1_000;

function expiresAt(deps: Pick<Deps, 'config' | 'clock'>): Date {
  return new Date(deps.clock.now() + deps.config.jwt.refreshTokenTtlSeconds * 1000);
}

/**
 * A new session for the user. With `passwordHash` (a password sign-in), only while that is
 * still the account's password: one replaced meanwhile refuses it (INVALID_CREDENTIALS).
 * Past MAX_SESSIONS_PER_USER active sessions, the least recently used end (`endSessions`,
 * in the caller's transaction if any); the caller publishes them once that commits
 * (`publishCappedSessions`).
 */
export async function createSession(
  deps: Deps,
  { userId, client, passwordHash }: { userId: string; client: ClientInfo; passwordHash?: string },
): Promise<IssuedRefreshToken> {
  const refreshToken = newOpaqueToken();
  const refreshTokenExpiresAt = expiresAt(deps);
  const now = new Date(deps.clock.now());
  // Only while the account may sign in, its row share-locked: an administrator disabling or
  // archiving it meanwhile (during the password check) either comes first, and no session
  // starts, or waits for this one, which its revocation then ends. One statement.
  const row = await deps.db
    .insertInto('sessions')
    .columns(['user_id', 'refresh_token_hash', 'user_agent', 'ip', 'created_at', 'last_used_at', 'expires_at'])
    .expression((eb) =>
      eb
        .selectFrom('users')
        .select([
          'users.id',
          sql<string>`${hashOpaqueToken(refreshToken)}::text`.as('refresh_token_hash'),
          sql<string | null>`${client.userAgent?.slice(0, 500) ?? null}::text`.as('user_agent'),
          sql<string>`${client.ip}::text`.as('ip'),
          sql<Date>`${now}::timestamptz`.as('created_at'),
          sql<Date>`${now}::timestamptz`.as('last_used_at'),
          sql<Date>`${refreshTokenExpiresAt}::timestamptz`.as('expires_at'),
        ])
        .where('users.id', '=', userId)
        .where('users.disabled_at', 'is', null)
        .where('users.archived_at', 'is', null)
        .$if(passwordHash !== undefined, (query) => query.where('users.password_hash', '=', passwordHash as string))
        .forShare(),
    )
    // The account's other active sessions, counted in the same statement (its snapshot does
    // not hold the new row): a sign-in under the cap costs no query more.
    .returning([
      'id',
      sql<number>`(select count(*)::int from sessions as other
        where other.user_id = sessions.user_id and other.revoked_at is null and other.expires_at > ${now})`.as(
        'others',
      ),
    ])
    .executeTakeFirst();
  if (!row) {
    // Disabled, archived or deleted since it was read (or its password replaced): say which, as the sign-in would have.
    const user = await findUserRow(deps, userId);
    if (user) assertMaySignIn(user);
    throw new AppError('INVALID_CREDENTIALS', 'Email or password is incorrect');
  }
  const issued: IssuedRefreshToken = { sessionId: row.id, userId, refreshToken, refreshTokenExpiresAt };
  if (row.others < deps.config.jwt.maxSessionsPerUser) return issued;
  // The account keeps its most recently used sessions, this one among them. Sign-ins at once
  // each keep the same newest ones, whatever each of them saw: the account ends with the cap,
  // not under it (with many more sign-ins at once than the cap, the oldest of them end too).
  const leastRecentlyUsed = await deps.db
    .selectFrom('sessions')
    .select('id')
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .orderBy('last_used_at', 'desc')
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .offset(deps.config.jwt.maxSessionsPerUser)
    .execute();
  const ended = await endSessions(deps, { userId, sessionIds: leastRecentlyUsed.map((session) => session.id) });
  return { ...issued, endedSessions: ended.length > 0 };
}

/**
 * After the sign-in that ended them commits: the sessions `createSession` ended over the cap
 * are published. The sign-in stands if that fails: their refresh tokens are already refused
 * (Postgres), and a store out of reach has been handed a job that publishes them.
 */
export async function publishCappedSessions(deps: RevocationDeps, issued: IssuedRefreshToken): Promise<void> {
  if (!issued.endedSessions) return;
  await publishRevocations(deps, issued.userId).catch((error: unknown) => {
    if (!unavailableDependency(error)) throw error;
    deps.log.warn({ err: error, userId: issued.userId }, 'sessions ended over the cap not published yet');
  });
}

/**
 * The token that replaces `refreshToken`: derived from it with the server's key, so every
 * concurrent refresh of one token can be handed the same successor without storing it.
 */
function successorOf(deps: Pick<Deps, 'tokens'>, refreshToken: string): string {
  return deps.tokens.keyedHash(`refresh-successor:${refreshToken}`);
}

/** The session was rotated within REFRESH_REUSE_GRACE_SECONDS (never, with 0). */
function withinGrace(deps: Pick<Deps, 'config' | 'clock'>, session: SessionRow): boolean {
  const graceMs = deps.config.jwt.refreshReuseGraceSeconds * 1000;
  return graceMs > 0 && deps.clock.now() - session.last_used_at.getTime() <= graceMs;
}

/**
 * The already-issued successor, when `refreshToken` was rotated moments ago (within
 * REFRESH_REUSE_GRACE_SECONDS) and that successor is still the session's current token.
 */
function graceSuccessor(deps: Deps, session: SessionRow, refreshToken: string): IssuedRefreshToken | undefined {
  const successor = successorOf(deps, refreshToken);
  if (!withinGrace(deps, session) || session.revoked_at) return undefined;
  if (session.previous_refresh_token_hash !== hashOpaqueToken(refreshToken)) return undefined;
  if (session.refresh_token_hash !== hashOpaqueToken(successor)) return undefined;
  return {
    sessionId: session.id,
    userId: session.user_id,
    refreshToken: successor,
    refreshTokenExpiresAt: session.expires_at,
  };
}

/** The session whose current token this is, or that rotated it away (at any step before). */
async function findSessionByToken(db: Db, tokenHash: string): Promise<SessionRow | undefined> {
  return db
    .selectFrom('sessions')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('refresh_token_hash', '=', tokenHash),
        eb('previous_refresh_token_hash', '=', tokenHash),
        eb('id', '=', eb.selectFrom('spent_refresh_tokens').select('session_id').where('token_hash', '=', tokenHash)),
      ]),
    )
    .executeTakeFirst();
}

/**
 * Swaps a refresh token for a new one. An unknown or expired token: INVALID_REFRESH_TOKEN.
 * A token that was already swapped, however many rotations ago (stolen, or replayed), and
 * outside the grace window: the session is revoked and the answer is SESSION_REVOKED, for
 * the thief and the owner alike.
 *
 * `admit` reads what the answer needs about the session's user (and may refuse it) before
 * anything rotates: a failure to read it leaves the presented token as it was. Were the token
 * rotated first, a client answered with an error would keep it, and present it again once
 * the grace window had passed: taken for reuse, the session would end.
 */
export async function rotateRefreshToken<Admitted>(
  deps: Deps & Pick<Services, 'log'>,
  { refreshToken, client }: { refreshToken: string; client: ClientInfo },
  admit: (userId: string) => Promise<Admitted>,
): Promise<IssuedRefreshToken & { admitted: Admitted }> {
  const presented = hashOpaqueToken(refreshToken);
  const session = await findSessionByToken(deps.db, presented);
  if (!session) throw new AppError('INVALID_REFRESH_TOKEN', 'The refresh token is not valid');
  if (session.revoked_at) throw new AppError('SESSION_REVOKED', 'This session has ended');
  const now = deps.clock.now();
  const isCurrent = session.refresh_token_hash === presented;
  if (isCurrent && session.expires_at.getTime() <= now) {
    throw new AppError('INVALID_REFRESH_TOKEN', 'The session has expired');
  }
  const admitted = await admit(session.user_id);
  /** The session has rotated the token away: its successor again, a late refresh refused, or reuse. */
  const rotatedAway = async (current: SessionRow): Promise<IssuedRefreshToken & { admitted: Admitted }> => {
    if (current.revoked_at) throw new AppError('SESSION_REVOKED', 'This session has ended');
    const again = graceSuccessor(deps, current, refreshToken);
    if (again) return { ...again, admitted };
    // Tabs that woke together: one read the token before two others rotated it twice. Within
    // the grace window that is a late refresh, not a theft: refused, the session left alone.
    const olderThanPrevious = current.previous_refresh_token_hash !== presented;
    if (olderThanPrevious && withinGrace(deps, current)) {
      throw new AppError('INVALID_REFRESH_TOKEN', 'The refresh token is not valid');
    }
    await revokeSessions(deps, { userId: current.user_id, sessionIds: [current.id] });
    throw new AppError('SESSION_REVOKED', 'This refresh token was already used: the session has been ended');
  };
  if (!isCurrent) return rotatedAway(session);

  const next = successorOf(deps, refreshToken);
  const refreshTokenExpiresAt = expiresAt(deps);
  // One statement: the rotation, and the presented token kept as spent (reuse, at any later time).
  const rotated = await deps.db
    .with('rotated', (db) =>
      db
        .updateTable('sessions')
        .set({
          refresh_token_hash: hashOpaqueToken(next),
          previous_refresh_token_hash: presented,
          // Also the rotation time the grace window counts from: taken after `admit`, whose
          // reads may have waited (a slow database), or a tab refreshing at once would miss it.
          last_used_at: new Date(deps.clock.now()),
          expires_at: refreshTokenExpiresAt,
          ip: client.ip,
          user_agent: client.userAgent?.slice(0, 500) ?? session.user_agent,
        })
        .where('id', '=', session.id)
        .where('refresh_token_hash', '=', presented)
        .where('revoked_at', 'is', null)
        .returning('id'),
    )
    .insertInto('spent_refresh_tokens')
    .columns(['token_hash', 'session_id'])
    .expression((eb) => eb.selectFrom('rotated').select((select) => [select.val(presented).as('token_hash'), 'id']))
    .returning('session_id')
    .executeTakeFirst();
  if (rotated) {
    return { sessionId: session.id, userId: session.user_id, refreshToken: next, refreshTokenExpiresAt, admitted };
  }
  // Concurrent refreshes won the race (of this token: within the grace window, its successor
  // is shared; or, since this one read the session, of this token and then of its successor).
  const current = await findSessionByToken(deps.db, presented);
  if (!current) throw new AppError('INVALID_REFRESH_TOKEN', 'The refresh token is not valid');
  return rotatedAway(current);
}

type RevocationScope = { userId: string; sessionIds?: string[]; exceptSessionId?: string };

/**
 * Ends the user's sessions (all, the listed ones, or all but one) and records them in the
 * revocation list in the same statement. Returns the ended ids. Answers only once the
 * revocation is effective everywhere (see the header); otherwise throws (a 503), and a
 * retry finishes the job. A change that must end them with it (a reset spends its link, a
 * change replaces the password its retry would give) ends the sessions in its own
 * transaction instead: `endSessions`, then `publishRevocations` once it commits (sent again
 * after a 503 there, each recognizes itself and publishes again).
 */
export async function revokeSessions(deps: RevocationDeps, scope: RevocationScope): Promise<string[]> {
  const ended = await endSessions(deps, scope);
  await publishRevocations(deps, scope.userId);
  return ended;
}

/**
 * The durable half of `revokeSessions`, which may run in the caller's transaction (`deps.db`):
 * the sessions end with the change that ends them, or neither happens. Once that commits, the
 * revocation holds in Postgres; `publishRevocations` makes it effective without waiting for it.
 */
export async function endSessions(
  deps: Pick<RevocationDeps, 'db' | 'config' | 'clock'>,
  scope: RevocationScope,
): Promise<string[]> {
  if (scope.sessionIds?.length === 0) return [];
  const now = new Date(deps.clock.now());
  const revocationExpiresAt = new Date(now.getTime() + revocationLifetimeMs(deps));
  const ended = await deps.db
    .with('ended', (db) => {
      let query = db
        .updateTable('sessions')
        .set({ revoked_at: now })
        .where('user_id', '=', scope.userId)
        .where('revoked_at', 'is', null);
      if (scope.sessionIds) query = query.where('id', 'in', scope.sessionIds);
      if (scope.exceptSessionId) query = query.where('id', '!=', scope.exceptSessionId);
      return query.returning(['id', 'user_id', 'revoked_at']);
    })
    .insertInto('session_revocations')
    .columns(['session_id', 'user_id', 'revoked_at', 'expires_at'])
    .expression((eb) =>
      eb
        .selectFrom('ended')
        .select([
          'ended.id',
          'ended.user_id',
          'ended.revoked_at',
          sql<Date>`${revocationExpiresAt}::timestamptz`.as('expires_at'),
        ]),
    )
    .onConflict((oc) => oc.column('session_id').doNothing())
    .returning('session_id')
    .execute();
  return ended.map((row) => row.session_id);
}

/** After `endSessions` committed: the user's revocations reach the cache (or the cache is dropped), spent ones go. */
export async function publishRevocations(deps: RevocationDeps, userId: string): Promise<void> {
  await cacheRevocationsOf(deps, userId);
  // Housekeeping, not the change: a failure here must not answer 503 for a change that took effect.
  await deps.db
    .deleteFrom('session_revocations')
    .where('expires_at', '<', new Date(deps.clock.now()))
    .execute()
    .catch((error: unknown) => {
      if (!unavailableDependency(error)) throw error;
      deps.log.warn({ err: error }, 'spent revocations not swept: the next revocation sweeps them');
    });
}

/**
 * `publishRevocations` for each of several users, every one tried (a store out of reach hands
 * each to a job) before the first failure is thrown: a batch's change made for all of them.
 */
export async function publishRevocationsOf(deps: RevocationDeps, userIds: string[]): Promise<void> {
  let failed: { error: unknown } | undefined;
  for (const userId of userIds) {
    await publishRevocations(deps, userId).catch((error: unknown) => {
      failed ??= { error };
    });
  }
  if (failed) throw failed.error;
}

/** Markers for the user's revocations still in force (so a retry after a failed write completes it). */
async function cacheRevocationsOf(
  deps: RevocationDeps,
  userId: string,
  whenUnreachable: (deps: RevocationDeps, userId: string) => Promise<void> = publishLater,
): Promise<void> {
  try {
    await deps.kv.setMany(await revocationMarkers(deps, userId));
  } catch (error) {
    if (!unavailableDependency(error)) throw error;
    // Postgres did not answer the markers' read (after the change committed), or the store
    // answers but refuses writes (full), or is away. If the "cache ready" key
    // can still be removed, every process asks Postgres from now on: effective. If not,
    // the store is away (for every process, or for this one alone): a job publishes the
    // markers once it answers again, and the caller learns it failed.
    try {
      await deps.kv.delete(CACHE_READY);
    } catch (unreachable) {
      await whenUnreachable(deps, userId);
      throw unreachable;
    }
    deps.log.warn(
      { err: error },
      'revocation markers not written: sessions are checked in Postgres until the cache is rebuilt',
    );
  }
}

/** Publishing a user's revocations that could not reach the store when they were made. */
export const PUBLISH_REVOCATIONS_QUEUE: QueueDefinition = {
  name: 'publish-revocations',
  // Every few seconds (1 s doubling, at most 5 s apart); each job is given tries for as long
  // as the access tokens it covers live (`publishLater`), whatever ACCESS_TOKEN_TTL says.
  retryLimit: 300,
  retryDelaySeconds: 1,
  retryDelayMaxSeconds: 5,
  expireInSeconds: 60,
};

export interface PublishRevocationsJob {
  userId: string;
  /** When the last access token the revocations cover has expired (epoch ms): no need to publish after. */
  until: number;
}

/**
 * Neither the markers nor the drop of the cache reached the store: it is away, for every
 * process or for this one alone (a partition). The others may still trust a cache without
 * the markers, and a change whose caller never sends it again would never publish
 * them again; nor would this process, were it to stop. So the publishing is a durable job:
 * any worker of any host tries it every few seconds until the store takes the markers or
 * the access tokens have expired.
 */
async function publishLater(deps: RevocationDeps, userId: string): Promise<void> {
  const lifetimeMs = revocationLifetimeMs(deps);
  const job: PublishRevocationsJob = { userId, until: deps.clock.now() + lifetimeMs };
  try {
    // At least a second between tries: one try a second of the tokens' lifetime outlasts them.
    await deps.jobs.send(PUBLISH_REVOCATIONS_QUEUE.name, job, { retryLimit: Math.ceil(lifetimeMs / 1000) });
  } catch (error) {
    deps.log.error(
      { err: error, userId },
      'revocations neither published nor queued: processes that trust their cache accept them until they expire',
    );
  }
}

/** One try of a `publish-revocations` job: throws while the store stays away, so it is tried again. */
export async function runPublishRevocationsJob(deps: RevocationDeps, job: { data: PublishRevocationsJob }) {
  if (deps.clock.now() > job.data.until) return;
  await cacheRevocationsOf(deps, job.data.userId, async () => {});
  deps.log.info(
    { userId: job.data.userId },
    'revocations published (or the cache dropped) once the key-value store answered',
  );
}

async function revocationMarkers(deps: Pick<RevocationDeps, 'db' | 'clock'>, userId?: string) {
  const now = deps.clock.now();
  let query = deps.db
    .selectFrom('session_revocations')
    .select(['session_id', 'expires_at'])
    .where('expires_at', '>', new Date(now));
  if (userId) query = query.where('user_id', '=', userId);
  const rows = await query.execute();
  return rows.map((row) => ({
    key: revokedMarker(row.session_id),
    value: '1',
    ttlMs: Math.max(1, row.expires_at.getTime() - now),
  }));
}

/**
 * Per store (so per process): the rebuild in progress, when a failed one may be retried, and
 * the store's connection on which this process rebuilt the markers from Postgres (`trusted`;
 * none at first). The store behind a new connection may lack markers that were written (a
 * failover to a replica, a restart from a snapshot) and still read as complete: until its
 * own rebuild on that connection, a process asks Postgres, whatever the store says.
 */
interface CacheState {
  running?: Promise<void>;
  notBefore: number;
  trusted: number;
}
const caches = new WeakMap<KeyValueStore, CacheState>();

function cacheStateOf(kv: KeyValueStore): CacheState {
  let state = caches.get(kv);
  if (state === undefined) {
    state = { notBefore: 0, trusted: 0 };
    caches.set(kv, state);
  }
  return state;
}

function rebuildCache(deps: CacheDeps): void {
  const state = cacheStateOf(deps.kv);
  if (state.running || deps.clock.now() < state.notBefore) return;
  const connection = deps.kv.connections;
  state.running = (async () => {
    const markers = await revocationMarkers(deps);
    await deps.kv.setMany([...markers, { key: CACHE_READY, value: isoTime(new Date(deps.clock.now())) }]);
    // Complete for every process from here (the key says so), so for this one too.
    state.trusted = connection;
    // A revocation committed while the first pass ran, whose own marker a second flush took:
    // the second pass restores it.
    await deps.kv.setMany(await revocationMarkers(deps));
    deps.log.info(`revocation cache rebuilt from Postgres (${markers.length} ended sessions in force)`);
  })()
    .catch((error: unknown) => {
      state.notBefore = deps.clock.now() + REBUILD_RETRY_MS;
      deps.log.warn({ err: error }, 'revocation cache rebuild failed: sessions are checked in Postgres meanwhile');
    })
    .finally(() => {
      state.running = undefined;
    });
}

/** The keys whose values say whether a session was ended (read with another call: `isSessionRevoked`'s `read`). */
export const revocationKeys = (sessionId: string) => [revokedMarker(sessionId), CACHE_READY];

/**
 * Whether the session was ended: one key-value round trip normally (none when `read` holds
 * the values of `revocationKeys`, read along with something else, or the store's failure to
 * read them); Postgres, the truth, while the store cannot answer, and while the cache is lost
 * or not yet rebuilt by this process on this connection. Throws (a 503) when neither can
 * answer: fail closed.
 */
export async function isSessionRevoked(
  deps: CacheDeps,
  sessionId: string,
  read?: (string | null)[] | DependencyUnavailableError,
): Promise<boolean> {
  const values =
    read ??
    (await deps.kv.getMany(revocationKeys(sessionId)).catch((error: unknown) => {
      if (error instanceof DependencyUnavailableError) return error;
      throw error;
    }));
  if (!(values instanceof DependencyUnavailableError)) {
    const [marker, cached] = values;
    if (marker !== null) return true;
    if (cached !== null && deps.kv.connections === cacheStateOf(deps.kv).trusted) return false;
    rebuildCache(deps);
  }
  const entry = await deps.db
    .selectFrom('session_revocations')
    .select('session_id')
    .where('session_id', '=', sessionId)
    .executeTakeFirst();
  return entry !== undefined;
}

/** The live sessions of an account that `hasLiveSessionFrom` looks at, most recently used first. */
const SESSIONS_LOOKED_AT = 50;

/**
 * Whether the account of `email` has a live session (signed in, not signed out, not expired)
 * last used from `ip`'s network (the address's rate-limit key: an IPv6 client's /64). The
 * per-account failure limit does not hold such an address back (trpc/procedures.ts): strangers
 * spread over many addresses cannot keep the owner out where the owner is signed in, and a
 * session ended (signing out everywhere, a password changed or reset, the account disabled
 * or deleted) no longer counts.
 */
export async function hasLiveSessionFrom(
  deps: Pick<Services, 'db' | 'clock'>,
  { email, ip }: { email: string; ip: string },
): Promise<boolean> {
  const network = addressKey(ip);
  const sessions = await deps.db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select('sessions.ip')
    .where('users.email', '=', email)
    .where('sessions.revoked_at', 'is', null)
    .where('sessions.expires_at', '>', new Date(deps.clock.now()))
    .where('sessions.ip', 'is not', null)
    .orderBy('sessions.last_used_at', 'desc')
    .limit(SESSIONS_LOOKED_AT)
    .execute();
  return sessions.some((session) => session.ip !== null && addressKey(session.ip) === network);
}

export async function activeSessions(deps: Pick<Services, 'db' | 'clock'>, userId: string): Promise<SessionRow[]> {
  return deps.db
    .selectFrom('sessions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', new Date(deps.clock.now()))
    .orderBy('last_used_at', 'desc')
    .execute();
}

/**
 * Maintenance: sessions that ended (expired, or revoked) more than a day ago, refresh tokens
 * rotated away more than a day ago, and revocation markers past their access tokens'
 * lifetime. A day of ended sessions and spent tokens stays, so a refresh token presented
 * again within a day still gets "revoked" (and its session ended), not "unknown".
 */
export async function purgeEndedSessions(deps: Pick<Services, 'db' | 'clock'>): Promise<number> {
  const now = new Date(deps.clock.now());
  const dayAgo = new Date(now.getTime() - 86_400_000);
  const sessions = await deps.db
    .deleteFrom('sessions')
    .where((eb) => eb.or([eb('expires_at', '<', dayAgo), eb('revoked_at', '<', dayAgo)]))
    .executeTakeFirst();
  await deps.db.deleteFrom('spent_refresh_tokens').where('spent_at', '<', dayAgo).execute();
  await deps.db.deleteFrom('session_revocations').where('expires_at', '<', now).execute();
  return Number(sessions.numDeletedRows);
}
