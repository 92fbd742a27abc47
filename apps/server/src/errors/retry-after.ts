import type { AppError } from './app-error.ts';
import type { AppErrorCode } from './app-error-codes.ts';

/** The app codes whose answer says when to try again: a rate limit's window, an outage's usual length, a busy server's moment. */
export const RETRY_AFTER_CODES: ReadonlySet<AppErrorCode> = new Set([
  'RATE_LIMITED',
  'DEPENDENCY_DOWN',
  'SERVICE_UNAVAILABLE',
]);

/**
 * The one place `Retry-After` is set, on every transport: an error that says how long to wait
 * (`details.retryAfterSeconds`) tells the client in the header too. Each transport calls it once
 * per failed call, before it answers (tRPC and REST through the app's `onError`).
 */
export function setRetryAfter(error: AppError | undefined, setHeader: (name: string, value: string) => void): void {
  const seconds = error?.details?.retryAfterSeconds;
  if (typeof seconds === 'number') setHeader('retry-after', String(seconds));
}
