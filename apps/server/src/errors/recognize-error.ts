import { isForeignKeyViolation, isTransactionConflict, isUniqueViolation } from '@app/db';
import { TRPCError } from '@trpc/server';
import { unavailableDependency } from '../infra/dependency-errors.ts';
import { PasswordCheckAbandonedError, PasswordHashingBusyError } from '../infra/passwords.ts';
import { AppError, BUSY_RETRY_AFTER_SECONDS, dependencyDown } from './app-error.ts';

/**
 * The AppError a failure stands for: itself, or what an unexpected error means to a client.
 * A dependency that is down is a 503; a row that a concurrent request deleted (23503) or
 * created (23505), or a transaction Postgres ended to settle a conflict with another (a
 * deadlock: 40P01, 40001), is a 404 or 409, not a 500; too many password hashes waiting
 * is a 503 with Retry-After, a password check its client left before its turn a 499.
 * Undefined for everything else (a bug: 500).
 */
export function recognizeError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  const cause = error instanceof TRPCError ? error.cause : error;
  if (error instanceof TRPCError && error.code !== 'INTERNAL_SERVER_ERROR') return undefined;
  const dependency = unavailableDependency(cause);
  if (dependency) return dependencyDown(dependency, cause);
  if (cause instanceof PasswordCheckAbandonedError) {
    return new AppError('CLIENT_CLOSED_REQUEST', 'The client went away before the answer', { cause });
  }
  if (cause instanceof PasswordHashingBusyError) {
    return new AppError('SERVICE_UNAVAILABLE', 'The server is busy: try again in a moment', {
      details: { retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS },
      cause,
    });
  }
  if (isForeignKeyViolation(cause)) {
    return new AppError('NOT_FOUND', 'Something this request refers to was deleted meanwhile', { cause });
  }
  if (isUniqueViolation(cause) || isTransactionConflict(cause)) {
    return new AppError('CONFLICT', 'This conflicts with a change made at the same time: try again', { cause });
  }
  return undefined;
}

/**
 * Whether Postgres ended the transaction to settle a deadlock (or a serialization conflict):
 * answered 409 for a retry, and logged as a warning, since a deadlock that recurs names a lock
 * order to fix.
 */
export const isSettledConflict = (recognized: AppError | undefined): boolean =>
  recognized?.appCode === 'CONFLICT' && isTransactionConflict(recognized.cause);
