/**
 * Who is calling: the sign-in check every transport shares (tRPC and REST through
 * `authedProcedure`, plain Fastify routes through `admitSignedIn` or `authenticate`). A
 * signature check and one key-value round trip (shared with the call's rate limit), no
 * database query while the revocation cache is intact.
 */
import { AppError, type AppErrorCode, rateLimited } from '../../errors/index.ts';
import { addressKey, type RateLimitState } from '../../infra/rate-limiter.ts';
import { AccessTokenError } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';
import { isSessionRevoked, revocationKeys } from '../sessions/sessions.service.ts';

/** A signed-in caller: the account and the session its access token belongs to. */
export interface Caller {
  userId: string;
  sessionId: string;
}

type Deps = Pick<Services, 'tokens' | 'db' | 'kv' | 'config' | 'log' | 'clock'>;

/**
 * Every app code `authenticate` throws. DEPENDENCY_DOWN: the revocation check fails closed
 * when neither the store nor Postgres answers (with the store away, Postgres answers it).
 */
export const AUTHENTICATION_ERRORS = [
  'UNAUTHORIZED',
  'TOKEN_EXPIRED',
  'SESSION_REVOKED',
  'DEPENDENCY_DOWN',
] as const satisfies readonly AppErrorCode[];

function bearerToken(header: string | undefined): string | undefined {
  const match = header ? /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim()) : null;
  return match?.[1];
}

const sessionEnded = () => new AppError('SESSION_REVOKED', 'This session has ended: sign in again');

/** The caller an `Authorization: Bearer <accessToken>` header stands for, or the AppError saying why not. */
export async function authenticate(deps: Deps, authorization: string | undefined): Promise<Caller> {
  const caller = await verifiedCaller(deps, authorization);
  // Fails closed: when neither the store nor Postgres can answer, the error is a 503.
  if (await isSessionRevoked(deps, caller.sessionId)) throw sessionEnded();
  return caller;
}

/**
 * A signed-in call's admission: one call against the per-address limit
 * (RATE_LIMIT_DEFAULT_PER_MINUTE) and `authenticate`, with one key-value round trip for
 * both (the counter and the session's revocation keys travel together). `onLimit` sees the
 * limit's state (for the RateLimit headers). Over the limit the call is RATE_LIMITED, even
 * with a bad token; a limit that holds lets the token's own error through.
 */
export async function admitSignedIn(
  deps: Deps & Pick<Services, 'rateLimits'>,
  request: { authorization: string | undefined; ip: string },
  onLimit?: (state: RateLimitState) => void,
): Promise<Caller> {
  const verified = await verifiedCaller(deps, request.authorization).then(
    (caller) => ({ caller }),
    (error: unknown) => ({ error }),
  );
  const keys = 'caller' in verified ? revocationKeys(verified.caller.sessionId) : [];
  const { state, values } = await deps.rateLimits.default.consumeAndGet(addressKey(request.ip), keys);
  onLimit?.(state);
  if (!state.allowed) throw rateLimited(state.resetMs);
  if ('error' in verified) throw verified.error;
  // (The store could not answer: Postgres is asked.)
  if (await isSessionRevoked(deps, verified.caller.sessionId, values)) throw sessionEnded();
  return verified.caller;
}

/** The token's own checks (signature, lifetime), without the revocation check. */
async function verifiedCaller(deps: Pick<Deps, 'tokens'>, authorization: string | undefined): Promise<Caller> {
  const token = bearerToken(authorization);
  if (!token) throw new AppError('UNAUTHORIZED', 'Sign in first: send Authorization: Bearer <accessToken>');
  let caller: Caller;
  try {
    const claims = await deps.tokens.verifyAccessToken(token);
    caller = { userId: claims.sub, sessionId: claims.sid };
  } catch (error) {
    if (error instanceof AccessTokenError && error.reason === 'expired') {
      throw new AppError('TOKEN_EXPIRED', 'The access token has expired: refresh it');
    }
    throw new AppError('UNAUTHORIZED', 'The access token is not valid');
  }
  return caller;
}
