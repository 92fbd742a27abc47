/**
 * Where services hash and check passwords; the hash format lives in @app/db, which the seeds
 * share. Each hash is memory-hard (19 MiB, tens of milliseconds) and runs on one of libuv's
 * threads (4 by default), which JWT signing, file reads and DNS lookups share: so only a
 * few run at once, and a storm of sign-ins (many addresses, each within its rate limit) is
 * answered a fast 503 with Retry-After instead of queueing every call for seconds.
 */
import { hashPassword as hashWithArgon2, verifyPassword } from '@app/db';

/** Hashes at once: the other libuv threads stay free for the rest of the server's work. */
const HASHES_AT_ONCE = 2;
/** Hashes allowed to wait for a turn (about a second's worth); more are refused. */
const HASHES_WAITING_MAX = 64;

let hashing = 0;
/** Callers waiting for a turn, first come first served. */
const waiting: (() => void)[] = [];

/** Too many hashes wait already: answered 503 SERVICE_UNAVAILABLE with Retry-After (errors/recognize-error.ts). */
export class PasswordHashingBusyError extends Error {
  constructor() {
    super('too many password hashes are waiting');
    this.name = 'PasswordHashingBusyError';
  }
}

/** The caller went away while it waited (its request's signal): no hash is made for a caller that is gone. */
export class PasswordCheckAbandonedError extends Error {
  constructor() {
    super('the client went away before its password was checked');
    this.name = 'PasswordCheckAbandonedError';
  }
}

/**
 * Runs `hash` in its turn; throws PasswordHashingBusyError when too many already wait, and
 * PasswordCheckAbandonedError when `signal` aborts first (a client that gave up, often in a
 * storm, leaves the line instead of holding a place in it and a hash nobody reads).
 */
async function inTurn<T>(hash: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal?.aborted) throw new PasswordCheckAbandonedError();
  if (hashing < HASHES_AT_ONCE) hashing += 1;
  else if (waiting.length < HASHES_WAITING_MAX) await turnFor(signal);
  else throw new PasswordHashingBusyError();
  try {
    return await hash();
  } finally {
    endTurn();
  }
}

/** The turn passes to the next in line, or is given back. */
function endTurn(): void {
  const next = waiting.shift();
  if (next) next();
  else hashing -= 1;
}

/** Hashes running and waiting for a turn, in this process (for tests and metrics). */
export function passwordHashingLine(): { running: number; waiting: number } {
  return { running: hashing, waiting: waiting.length };
}

/** Waits in line for a turn, handed over by the caller whose turn ends; leaves the line if `signal` aborts. */
function turnFor(signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const leave = () => {
      const place = waiting.indexOf(take);
      if (place !== -1) waiting.splice(place, 1);
      reject(new PasswordCheckAbandonedError());
    };
    const take = () => {
      signal?.removeEventListener('abort', leave);
      resolve();
    };
    waiting.push(take);
    signal?.addEventListener('abort', leave, { once: true });
  });
}

/** `signal`: the request's, so a caller gone while it waits for its turn makes no hash. */
export function hashPassword(password: string, signal?: AbortSignal): Promise<string> {
  return inTurn(() => hashWithArgon2(password), signal);
}

/**
 * Hashes `password` if a turn is free at once, else gives up (undefined): for housekeeping
 * such as upgrading a stored hash, which neither waits behind the line (its sign-in would)
 * nor takes a turn anyone waits for, and is done at a later sign-in instead.
 */
export async function hashPasswordIfIdle(password: string): Promise<string | undefined> {
  if (hashing >= HASHES_AT_ONCE) return undefined;
  hashing += 1;
  try {
    return await hashWithArgon2(password);
  } finally {
    endTurn();
  }
}

let dummyHash: Promise<string> | undefined;

/**
 * Verifies `password` against `storedHash`, or against a dummy hash when there is none
 * (unknown email, account without a password), so both cases cost the same time and an
 * attacker cannot tell which emails have accounts.
 */
export async function checkPassword(
  storedHash: string | null | undefined,
  password: string,
  signal?: AbortSignal,
): Promise<{ valid: boolean; needsRehash: boolean }> {
  dummyHash ??= hashWithArgon2('dummy-password-for-constant-time-checks');
  const against = storedHash ?? (await dummyHash);
  const result = await inTurn(() => verifyPassword(against, password), signal);
  return storedHash ? result : { valid: false, needsRehash: false };
}
