import { AppError } from '../errors.ts';
import type { RateLimiter, RateLimitState } from '../infra/rate-limiter.ts';
import { AccessTokenError } from '../infra/tokens.ts';
import type { Caller } from '../modules/auth/auth.service.ts';
import type { Permission } from '../modules/rbac/permissions.ts';
import { permissionsOfUser } from '../modules/rbac/rbac.service.ts';
import { isSessionRevoked } from '../modules/sessions/sessions.service.ts';
import type { Context } from './context.ts';
import { t } from './init.ts';

/**
 * Without a rate limit: only for infrastructure probes (health), which orchestrators poll.
 * (AppError is a TRPCError, so errors need no converting middleware.)
 */
export const unlimitedProcedure = t.procedure;

function setRateLimitHeaders(ctx: Context, state: RateLimitState): void {
  const resetSeconds = Math.max(1, Math.ceil(state.resetMs / 1000));
  ctx.setHeader('ratelimit-limit', String(state.limit));
  ctx.setHeader('ratelimit-remaining', String(state.remaining));
  ctx.setHeader('ratelimit-reset', String(resetSeconds));
  if (!state.allowed) ctx.setHeader('retry-after', String(resetSeconds));
}

/** Consumes one call from each key; the tightest answer wins. Per procedure call, so a batch cannot slip past. */
async function enforce(ctx: Context, limiter: RateLimiter, keys: string[]): Promise<void> {
  const states = await Promise.all(keys.map((key) => limiter.consume(key)));
  const denied = states.find((state) => !state.allowed);
  const tightest = denied ?? states.reduce((a, b) => (b.remaining < a.remaining ? b : a));
  setRateLimitHeaders(ctx, tightest);
  if (denied) {
    const retryAfterSeconds = Math.max(1, Math.ceil(denied.resetMs / 1000));
    throw new AppError('RATE_LIMITED', `Too many requests: try again in ${retryAfterSeconds} s`, {
      details: { retryAfterSeconds },
    });
  }
}

/** Every procedure: RATE_LIMIT_DEFAULT_PER_MINUTE calls per client IP. */
export const publicProcedure = unlimitedProcedure.use(async ({ ctx, next }) => {
  await enforce(ctx, ctx.services.rateLimits.default, [`ip:${ctx.ip}`]);
  return next();
});

/**
 * Credential endpoints: RATE_LIMIT_AUTH_PER_MINUTE per IP, and per target email when the
 * input names one (so one account cannot be hammered from many addresses).
 */
export const credentialProcedure = publicProcedure.use(async ({ ctx, getRawInput, next }) => {
  const raw = (await getRawInput()) as { email?: unknown } | undefined;
  const email = typeof raw?.email === 'string' && raw.email.trim() ? [`email:${raw.email.trim().toLowerCase()}`] : [];
  await consumeCredentialLimit(ctx, email);
  return next();
});

/** One call against the credential limit, for the client IP and the given extra keys. */
export function consumeCredentialLimit(ctx: Context, keys: string[]): Promise<void> {
  return enforce(ctx, ctx.services.rateLimits.auth, [`ip:${ctx.ip}`, ...keys]);
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header ? /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim()) : null;
  return match?.[1];
}

/**
 * A valid access token whose session has not been revoked: a signature check and one
 * key-value lookup, no database query. Adds `caller` to the context.
 */
export const authedProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const token = bearerToken(ctx.authorization);
  if (!token) throw new AppError('UNAUTHORIZED', 'Sign in first: send Authorization: Bearer <accessToken>');
  let caller: Caller;
  try {
    const claims = await ctx.services.tokens.verifyAccessToken(token);
    caller = { userId: claims.sub, sessionId: claims.sid };
  } catch (error) {
    if (error instanceof AccessTokenError && error.reason === 'expired') {
      throw new AppError('TOKEN_EXPIRED', 'The access token has expired: refresh it');
    }
    throw new AppError('UNAUTHORIZED', 'The access token is not valid');
  }
  let revoked: boolean;
  try {
    revoked = await isSessionRevoked(ctx.services.kv, caller.sessionId);
  } catch (error) {
    // Fail closed: without the revocation store nobody is let in, and the client learns why.
    ctx.log.error({ err: error }, 'session store unavailable');
    throw new AppError('SERVICE_UNAVAILABLE', 'The session store is unavailable: try again shortly');
  }
  if (revoked) throw new AppError('SESSION_REVOKED', 'This session has ended: sign in again');
  return next({ ctx: { caller } });
});

/** The caller must hold `permission` (through any role; admin holds all), checked on every call. */
export function requirePermission(permission: Permission) {
  return authedProcedure.use(async ({ ctx, next }) => {
    const granted = await permissionsOfUser(ctx.services.db, ctx.caller.userId);
    if (!granted.has(permission)) {
      throw new AppError('PERMISSION_DENIED', `Missing permission: ${permission}`, { details: { permission } });
    }
    return next({ ctx: { permissions: granted } });
  });
}
