import { createHash } from 'node:crypto';
import { AppError, type AppErrorCode, rateLimited } from '../errors/index.ts';
import { addressKey, type RateLimiter, type RateLimitState, writeRateLimitHeaders } from '../infra/rate-limiter.ts';
import { assertPermission, PERMISSION_ERRORS } from '../modules/auth/assert-permission.ts';
import { AUTHENTICATION_ERRORS, admitSignedIn } from '../modules/auth/authenticate.ts';
import type { Permission } from '../modules/rbac/permissions.ts';
import { hasLiveSessionFrom } from '../modules/sessions/sessions.service.ts';
import type { Context } from './context.ts';
import { t } from './init.ts';
import { declareErrors } from './procedure-errors.ts';

/**
 * Without a rate limit: only for infrastructure probes (health), which orchestrators poll.
 * (AppError is a TRPCError, so errors need no converting middleware.)
 */
export const unlimitedProcedure = t.procedure;

function setRateLimitHeaders(ctx: Context, state: RateLimitState): void {
  writeRateLimitHeaders(state, ctx.setHeader);
}

/** Consumes `calls` from each key; the tightest answer wins. Per procedure call, so a batch cannot slip past. */
async function enforce(ctx: Context, limiter: RateLimiter, keys: string[], calls = 1): Promise<void> {
  const states = await Promise.all(keys.map((key) => limiter.consume(key, calls)));
  const denied = states.find((state) => !state.allowed);
  const tightest = denied ?? states.reduce((a, b) => (b.remaining < a.remaining ? b : a));
  setRateLimitHeaders(ctx, tightest);
  if (denied) throw rateLimited(denied.resetMs);
}

/** Every procedure: RATE_LIMIT_DEFAULT_PER_MINUTE calls per client IP. */
export const publicProcedure = unlimitedProcedure.use(async ({ ctx, next }) => {
  await enforce(ctx, ctx.services.rateLimits.default, [addressKey(ctx.ip)]);
  return next();
});
declareErrors(publicProcedure, ['RATE_LIMITED']);

/**
 * A call that does the work of several (a batch of `items`) counts as that many against
 * the default limit: the one every procedure counted, plus `items - 1` here.
 */
export async function countBatchItems(ctx: Context, items: number): Promise<void> {
  if (items > 1) await enforce(ctx, ctx.services.rateLimits.default, [addressKey(ctx.ip)], items - 1);
}

/**
 * The email a call names (in `field` of its raw input: limits run before validation), as its
 * schema will read it (trimmed, lower-cased): only a plausible, bounded address.
 */
export function emailOf(raw: unknown, field: 'email' | 'to' = 'email'): string | undefined {
  const email = (raw as Record<string, unknown> | undefined)?.[field];
  if (typeof email !== 'string') return undefined;
  const normalized = email.trim().toLowerCase();
  if (normalized.length === 0 || normalized.length > 320 || !normalized.includes('@')) return undefined;
  return normalized;
}

/** The rate-limit key of an email (or of its inbox), hashed: the store never holds the address. */
function emailKey(email: string, { byMailbox = false } = {}): string {
  const key = byMailbox ? mailboxOf(email) : email;
  return `${byMailbox ? 'mailbox' : 'email'}:${createHash('sha256').update(key).digest('base64url')}`;
}

/** Domains whose mailboxes ignore dots in the local part. */
const DOTLESS_DOMAINS = new Map([
  ['gmail.com', 'gmail.com'],
  ['googlemail.com', 'gmail.com'],
]);

/**
 * The inbox an address delivers to, as far as its form tells: without a `+tag` (most
 * providers deliver `me+anything@` to `me@`), and without dots at Gmail. Emails sent to
 * `me+1@`, `me+2@`… all count against one inbox's limit.
 */
export function mailboxOf(email: string): string {
  const at = email.lastIndexOf('@');
  let local = email.slice(0, at);
  let domain = email.slice(at + 1);
  const plus = local.indexOf('+');
  if (plus > 0) local = local.slice(0, plus);
  const dotless = DOTLESS_DOMAINS.get(domain);
  if (dotless) {
    local = local.replaceAll('.', '');
    domain = dotless;
  }
  return `${local}@${domain}`;
}

/** App codes that mean "a wrong secret was presented": what the per-account failure limit counts. */
const CREDENTIAL_FAILURES = new Set<AppErrorCode>(['INVALID_CREDENTIALS', 'INVALID_CODE']);

/**
 * Limits guessing at one account from every address together, counting failures only:
 * the owner's successes never count (a stranger's own address is throttled by the per-IP
 * credential limit first). Each check is counted atomically before the secret is checked,
 * and given back unless the secret was wrong: guesses sent together cannot all pass a
 * count that only their failures, arriving later, would raise.
 *
 * `exempt`, asked only once the count is used up, says whether this caller is let through
 * all the same (its own per-address limit still holds it).
 */
async function limitFailures<Result extends { ok: boolean; error?: unknown }>(
  ctx: Context,
  account: string | undefined,
  next: () => Promise<Result>,
  exempt?: () => Promise<boolean>,
): Promise<Result> {
  if (!account) return next();
  const limiter = ctx.services.rateLimits.failures;
  const state = await limiter.consume(account);
  let wrongSecret = false;
  try {
    if (!state.allowed && !(exempt && (await exempt().catch(() => false)))) {
      setRateLimitHeaders(ctx, state);
      throw rateLimited(state.resetMs);
    }
    const result = await next();
    wrongSecret = !result.ok && result.error instanceof AppError && CREDENTIAL_FAILURES.has(result.error.appCode);
    return result;
  } finally {
    // Not given back when the store fails: the count stays higher, on the safe side.
    if (!wrongSecret) await limiter.giveBack(account).catch(() => undefined);
  }
}

/** One call against the credential limit (RATE_LIMIT_AUTH_PER_MINUTE), for the client IP and the given extra keys. */
export function consumeCredentialLimit(ctx: Context, keys: string[] = []): Promise<void> {
  return enforce(ctx, ctx.services.rateLimits.auth, [addressKey(ctx.ip), ...keys]);
}

/**
 * Endpoints that check a secret (sign-in, sign-up, codes, reset): RATE_LIMIT_AUTH_PER_MINUTE
 * calls per IP, and RATE_LIMIT_EMAIL_FAILURES_PER_MINUTE wrong secrets per email the input
 * names. Once strangers spread over many addresses have used that up, an address where the
 * account is signed in (a live session last used from its network) still gets in
 * (`hasLiveSessionFrom`): they cannot keep the owner out there.
 */
export const credentialProcedure = publicProcedure.use(async ({ ctx, getRawInput, next }) => {
  await consumeCredentialLimit(ctx);
  const email = emailOf(await getRawInput());
  return limitFailures(ctx, email && emailKey(email), next, () =>
    email ? hasLiveSessionFrom(ctx.services, { email, ip: ctx.ip }) : Promise.resolve(false),
  );
});
declareErrors(credentialProcedure, ['RATE_LIMITED']);

/**
 * Endpoints that email the address in their input (password reset link, sign-in code):
 * RATE_LIMIT_AUTH_PER_MINUTE calls per IP and per target inbox (`mailboxOf`: the address's
 * `+tag` variants count as one), successes included, so nobody's inbox can be flooded from
 * many addresses.
 */
export const emailSendingProcedure = publicProcedure.use(async ({ ctx, getRawInput, next }) => {
  await consumeEmailSendingLimit(ctx, emailOf(await getRawInput()));
  return next();
});

/** An email about to go to `email`'s inbox: the credential limit for the client IP, that inbox and the `keys` given. */
export function consumeEmailSendingLimit(ctx: Context, email: string | undefined, keys: string[] = []): Promise<void> {
  return consumeCredentialLimit(ctx, email ? [...keys, emailKey(email, { byMailbox: true })] : keys);
}
declareErrors(emailSendingProcedure, ['RATE_LIMITED']);

/**
 * A valid access token whose session has not been revoked, within the per-address limit
 * every procedure has (see `admitSignedIn`: one key-value round trip for both). Adds
 * `caller` to the context.
 */
export const authedProcedure = unlimitedProcedure.use(async ({ ctx, next }) => {
  const caller = await admitSignedIn(ctx.services, { authorization: ctx.authorization, ip: ctx.ip }, (state) =>
    setRateLimitHeaders(ctx, state),
  );
  return next({ ctx: { caller } });
});
declareErrors(authedProcedure, ['RATE_LIMITED', ...AUTHENTICATION_ERRORS]);

/**
 * Signed-in endpoints that check the caller's password (change it, delete the account):
 * the credential limit per IP, and wrong passwords per account.
 */
export const passwordCheckingProcedure = authedProcedure.use(async ({ ctx, next }) => {
  await consumeCredentialLimit(ctx);
  return limitFailures(ctx, `user:${ctx.caller.userId}`, next);
});
declareErrors(passwordCheckingProcedure, ['RATE_LIMITED']);

/** The caller must hold `permission` (see `assertPermission`), checked on every call. */
export function requirePermission(permission: Permission) {
  const procedure = authedProcedure.use(async ({ ctx, next }) =>
    next({ ctx: { permissions: await assertPermission(ctx.services, ctx.caller, permission) } }),
  );
  declareErrors(procedure, PERMISSION_ERRORS);
  return procedure;
}
