/**
 * Services throw `AppError(appCode, message)`. It is a TRPCError carrying the tRPC code (hence
 * the HTTP status) its app code travels as, so tRPC passes it through untouched: no middleware
 * converts errors on every call, and an error is one object, not an Error wrapped in a
 * TRPCError (bench/README.md has the measurements). Each transport answers it with
 * `errorAnswer` (error-body.ts).
 */
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { Dependency } from '../infra/dependency-errors.ts';
import { APP_ERROR_CODES, type AppErrorCode } from './app-error-codes.ts';

export class AppError extends TRPCError {
  readonly appCode: AppErrorCode;
  /** Extra, client-safe facts about the failure (e.g. which health check failed). */
  readonly details: Record<string, unknown> | undefined;
  /** The HTTP status it is answered with, on every transport. */
  readonly httpStatus: number;

  constructor(
    appCode: AppErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super({ code: APP_ERROR_CODES[appCode], message, cause: options.cause });
    this.name = 'AppError';
    this.appCode = appCode;
    this.details = options.details;
    this.httpStatus = getHTTPStatusCodeFromError(this);
  }
}

/** How long clients are told to wait before retrying while a dependency is down. */
export const DEPENDENCY_RETRY_AFTER_SECONDS = 2;

export function dependencyDown(dependency: Dependency, cause?: unknown): AppError {
  const name =
    dependency === 'database'
      ? 'The database'
      : dependency === 'storage'
        ? 'The file storage'
        : 'The session and rate-limit store';
  return new AppError('DEPENDENCY_DOWN', `${name} is unavailable: try again shortly`, {
    details: { dependency, retryAfterSeconds: DEPENDENCY_RETRY_AFTER_SECONDS },
    cause,
  });
}

/** Too many calls: the client waits until the limit's window resets (`Retry-After`). */
export function rateLimited(resetMs: number): AppError {
  const retryAfterSeconds = Math.max(1, Math.ceil(resetMs / 1000));
  return new AppError('RATE_LIMITED', `Too many requests: try again in ${retryAfterSeconds} s`, {
    details: { retryAfterSeconds },
  });
}
