/**
 * Email one-time codes: unified sign-in and sign-up. A 6-digit code from a CSPRNG is
 * stored as an HMAC in the key-value store for 10 minutes, one live code per email; 5
 * wrong tries burn it; 30 s must pass between requests for one email, twice as long after
 * each code past the third in a day, up to 15 minutes (`codeCooldownMs`). A valid code signs
 * in the account, or creates it (email verified); an invalid code never creates anything.
 * The app-store review account's code is reusable and lives for days: it is kept in
 * Postgres (`review_codes`), where a Redis restart cannot take it; its failures are counted
 * in the key-value store.
 */

import { randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import type { UserRow } from '@app/db';
import { AppError, recognizeError } from '../../errors/index.ts';
import type { Locale } from '../../i18n/locale.ts';
import { isoTime } from '../../infra/iso-time.ts';
import type { Services } from '../../services.ts';
import { type ClientInfo, endSessions, publishRevocations } from '../sessions/sessions.service.ts';
import { assertMaySignIn, findUserRowByEmail, insertUser } from '../users/users.service.ts';
import type { AuthResult } from './auth.schemas.ts';
import { startSession } from './auth.service.ts';
import { codeOf, enqueueEmail, OTP_TTL_MS } from './email-jobs.ts';
import { reclaim } from './identities.service.ts';
import { codeKey, readCode, restoreCode, type StoredCode, writeCode } from './otp-codes.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'mailer' | 'clock' | 'tokens' | 'log' | 'jobs'>;

const OTP_COOLDOWN_MS = 30 * 1000;
const OTP_MAX_ATTEMPTS = 5;
/** Codes for one email within a day before the wait between them starts to double. */
const OTP_CODES_AT_FULL_PACE = 3;
const OTP_MAX_COOLDOWN_MS = 15 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The wait after the `issued`th code of an email in a day: 30 s for the first three, then
 * twice as long for each (1, 2, 4, 8 min), up to 15 minutes. Each code allows OTP_MAX_ATTEMPTS
 * guesses, so with a fixed 30 s a stranger could make 14,400 guesses a day at one account's
 * email (a 1.4 % chance a day of its 6-digit code); this way about 500 (0.05 %). The wait is
 * the email's, whoever asks: a stranger asking for codes can make its owner wait up to 15
 * minutes for one (a password sign-in is not held back).
 */
export function codeCooldownMs(issued: number): number {
  const doublings = Math.max(0, issued - OTP_CODES_AT_FULL_PACE);
  return Math.min(OTP_MAX_COOLDOWN_MS, OTP_COOLDOWN_MS * 2 ** Math.min(doublings, 16));
}
/** Wrong review codes allowed per hour: the review code is reusable, so guessing is capped. */
const REVIEW_FAILURES_PER_HOUR = 20;

/** Tries at one code: its own counter, so a new code starts from zero. */
const attemptsKey = (email: string, code: StoredCode) => `otp-attempts:${email}:${code.issuedAt}`;
/** The codes issued for an email in the day since its first; until when (epoch ms) the next one must wait. */
const issuedKey = (email: string) => `otp-issued:${email}`;
const waitKey = (email: string) => `otp-wait:${email}`;
const REVIEW_FAILURES_KEY = 'otp-review-failures';

const sixDigits = () => String(randomInt(0, 1_000_000)).padStart(6, '0');

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** `devCode` only outside production, and only when no provider delivers email. */
export async function requestCode(
  deps: Deps,
  { email, requestId, locale }: { email: string; requestId?: string | undefined; locale?: Locale | undefined },
): Promise<{ ok: true; devCode?: string }> {
  // The review account signs in with its own code only: same answer, nothing sent.
  if (email === deps.config.otp.appleReviewEmail) return { ok: true };
  const now = deps.clock.now();
  // (Kept apart from the code, which expires after 10 minutes: a longer wait outlives it.)
  const waitUntil = Number((await deps.kv.get(waitKey(email))) ?? 0);
  if (waitUntil > now) {
    const retryAfterSeconds = Math.ceil((waitUntil - now) / 1000);
    throw new AppError('RATE_LIMITED', 'Wait {retryAfterSeconds} s before asking for another code', {
      details: { retryAfterSeconds },
      params: { retryAfterSeconds },
    });
  }
  // The email job carries the code by its id: the code is derived from it, never stored.
  const jobId = randomUUID();
  const code = codeOf(deps, jobId);
  const issued = await deps.kv.increment(issuedKey(email), { ttlMs: DAY_MS });
  const waitMs = codeCooldownMs(issued.value);
  let replacing = false;
  try {
    await deps.kv.set(waitKey(email), String(now + waitMs), { ttlMs: waitMs });
    replacing = true; // the last code, already sent, is replaced from here
    await writeCode(deps, codeKey(email), {
      hash: deps.tokens.keyedHash(`${email}:${code}`),
      issuedAt: now,
      expiresAt: now + OTP_TTL_MS,
    });
    await enqueueEmail(deps, { kind: 'one-time-code', email, locale, requestId }, { id: jobId });
  } catch (error) {
    // No email will carry this code (not stored, or not queued): a retry must not wait out
    // the cooldown of a code never sent. The last code stays, unless this one replaced it.
    if (replacing) await deps.kv.delete(codeKey(email)).catch(() => undefined);
    await deps.kv.delete(waitKey(email)).catch(() => undefined);
    await deps.kv.increment(issuedKey(email), { by: -1 }).catch(() => undefined);
    throw error;
  }
  const exposeCode = !deps.config.isProduction && !deps.mailer.transport.delivers;
  return exposeCode ? { ok: true, devCode: code } : { ok: true };
}

const invalidCode = () => new AppError('INVALID_CODE', 'The code is wrong or has expired');

/**
 * Checks the code and uses it up. Every try is counted atomically before the comparison,
 * so concurrent guesses cannot slip past the limit: after OTP_MAX_ATTEMPTS tries the code
 * is burnt, even for the right one.
 */
async function claimCode(deps: Deps, email: string, code: string): Promise<StoredCode> {
  const key = codeKey(email);
  const stored = await readCode(deps, key);
  if (!stored) throw invalidCode();
  const remainingMs = Math.max(1, stored.expiresAt - deps.clock.now());
  const tries = await deps.kv.increment(attemptsKey(email, stored), { ttlMs: remainingMs });
  const matches = sameHash(stored.hash, deps.tokens.keyedHash(`${email}:${code}`));
  // A burnt code stays stored until it expires or is replaced, every guess at it refused.
  if (!matches || tries.value > OTP_MAX_ATTEMPTS) throw invalidCode();
  // Whoever deletes it first used it: a code works once, even for concurrent calls.
  if (!(await deps.kv.delete(key))) throw invalidCode();
  return stored;
}

/**
 * The review code is reusable, so wrong guesses are capped per hour. Each try is counted
 * before the comparison (atomically, so a burst cannot exceed the cap) and taken back when
 * it was right.
 */
async function claimReviewCode(deps: Deps, userId: string | undefined, code: string): Promise<void> {
  const tries = await deps.kv.increment(REVIEW_FAILURES_KEY, { ttlMs: 60 * 60 * 1000 });
  const stored =
    userId === undefined
      ? undefined
      : await deps.db
          .selectFrom('review_codes')
          .select('code_hash')
          .where('user_id', '=', userId)
          .where('expires_at', '>', new Date(deps.clock.now()))
          .executeTakeFirst();
  const matches =
    stored && sameHash(stored.code_hash, deps.tokens.keyedHash(`${deps.config.otp.appleReviewEmail}:${code}`));
  if (!matches || tries.value > REVIEW_FAILURES_PER_HOUR) throw invalidCode();
  await deps.kv.increment(REVIEW_FAILURES_KEY, { by: -1 });
}

export async function verifyCode(
  deps: Deps,
  { email, code, client }: { email: string; code: string; client: ClientInfo },
): Promise<AuthResult & { created: boolean }> {
  const existing = await findUserRowByEmail(deps, email);
  const devCode = deps.config.isProduction ? undefined : deps.config.otp.devCode;
  // The development code signs in existing accounts only (it never creates one), and proves no address.
  const byDevCode = Boolean(
    devCode && existing && email !== deps.config.otp.appleReviewEmail && sameHash(code, devCode),
  );

  const reviewing = email === deps.config.otp.appleReviewEmail;
  if (reviewing) await claimReviewCode(deps, existing?.id, code);
  // The one-time code this sign-in spends (the review code and the development code are reusable).
  const claimed = reviewing || byDevCode ? undefined : await claimCode(deps, email, code);
  try {
    return await signInByCode(deps, { email, existing, byDevCode, client });
  } catch (error) {
    // A dependency failed before anyone was signed in: the code works for the retry the 503
    // asks for (unless a newer code replaced it meanwhile), instead of being spent for nothing.
    // (The store away too: the code stays spent, and a new one can be asked for.)
    if (claimed && recognizeError(error)?.appCode === 'DEPENDENCY_DOWN') {
      await restoreCode(deps, codeKey(email), claimed).catch(() => undefined);
    }
    throw error;
  }
}

/** After the code was checked: the account of the address (created when new), signed in. */
async function signInByCode(
  deps: Deps,
  {
    email,
    existing,
    byDevCode,
    client,
  }: { email: string; existing: UserRow | undefined; byDevCode: boolean; client: ClientInfo },
): Promise<AuthResult & { created: boolean }> {
  // (An account registered meanwhile, after the lookup above, is signed in to as one found by it.)
  const account = existing
    ? { existing }
    : await createVerifiedUser(deps, email, { welcome: { locale: client.locale, requestId: client.requestId } });
  if ('existing' in account) {
    const user = account.existing;
    assertMaySignIn(user);
    // A code sent to the address proved it: whoever registered the account may not own it.
    if (!user.email_verified_at && !byDevCode) await reclaim(deps, user.id);
    return { ...(await startSession(deps, { userId: user.id, client })), created: false };
  }
  return { ...(await startSession(deps, { userId: account.userId, client })), created: true };
}

/**
 * The account of a proven address; with `welcome`, its welcome email is queued with it (both
 * or neither). An account created meanwhile for the address (a concurrent sign-up) is
 * answered as `existing`, for the caller to treat as one it found.
 */
async function createVerifiedUser(
  deps: Deps,
  email: string,
  options: { welcome?: { locale?: Locale | undefined; requestId?: string | undefined } } = {},
): Promise<{ userId: string } | { existing: UserRow }> {
  try {
    return await deps.db.transaction().execute(async (trx) => {
      const userId = await insertUser({ ...deps, db: trx }, { email, emailVerified: true });
      if (options.welcome) await enqueueEmail(deps, { kind: 'welcome', email, ...options.welcome }, { db: trx });
      return { userId };
    });
  } catch (error) {
    if (!(error instanceof AppError && error.appCode === 'EMAIL_TAKEN')) throw error;
    const user = await findUserRowByEmail(deps, email);
    if (!user) throw error;
    return { existing: user };
  }
}

/** The reusable review code (created with the review account when missing). */
export async function generateReviewCode(deps: Deps): Promise<{ email: string; code: string; expiresAt: string }> {
  const email = deps.config.otp.appleReviewEmail;
  let userId = (await findUserRowByEmail(deps, email))?.id;
  if (userId === undefined) {
    const account = await createVerifiedUser(deps, email);
    userId = 'userId' in account ? account.userId : account.existing.id;
  }
  const code = sixDigits();
  const expiresAt = new Date(deps.clock.now() + deps.config.otp.appleReviewDays * 86_400_000);
  const codeHash = deps.tokens.keyedHash(`${email}:${code}`);
  // One code per account: a new one replaces the last.
  await deps.db
    .insertInto('review_codes')
    .values({ user_id: userId, code_hash: codeHash, expires_at: expiresAt })
    .onConflict((oc) =>
      oc
        .column('user_id')
        .doUpdateSet({ code_hash: codeHash, expires_at: expiresAt, created_at: new Date(deps.clock.now()) }),
    )
    .execute();
  // A new code starts with the whole hour's tries.
  await deps.kv.delete(REVIEW_FAILURES_KEY);
  return { email, code, expiresAt: isoTime(expiresAt) };
}

/**
 * Ends the review access: the code, and with it every session of the review account (a code
 * that leaked would otherwise leave its sessions alive, each refresh extending them); both or
 * neither. An expired code is removed too, ending the sessions it started. NOT_FOUND when
 * there is no code at all.
 */
export async function revokeReviewCode(deps: Deps): Promise<void> {
  const user = await findUserRowByEmail(deps, deps.config.otp.appleReviewEmail);
  const revoked =
    user &&
    (await deps.db.transaction().execute(async (trx) => {
      const deleted = await trx.deleteFrom('review_codes').where('user_id', '=', user.id).executeTakeFirst();
      if (deleted.numDeletedRows === 0n) return false;
      await endSessions({ ...deps, db: trx }, { userId: user.id });
      return true;
    }));
  if (!user || !revoked) throw new AppError('NOT_FOUND', 'There is no review code to revoke');
  await publishRevocations(deps, user.id);
}
