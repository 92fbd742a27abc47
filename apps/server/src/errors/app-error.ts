/**
 * Services throw `AppError(appCode, message)`. It is a TRPCError carrying the tRPC code (hence
 * the HTTP status) its app code travels as, so tRPC passes it through untouched: no middleware
 * converts errors on every call, and an error is one object, not an Error wrapped in a
 * TRPCError (bench/README.md has the measurements). Each transport answers it with
 * `errorAnswer` (error-body.ts).
 */
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { interpolate } from '../i18n/locale.ts';
import type { Dependency } from '../infra/dependency-errors.ts';
import { APP_ERROR_CODES, type AppErrorCode } from './app-error-codes.ts';

export class AppError extends TRPCError {
  readonly appCode: AppErrorCode;
  /** Extra, client-safe facts about the failure (e.g. which health check failed). */
  readonly details: Record<string, unknown> | undefined;
  /** The HTTP status it is answered with, on every transport. */
  readonly httpStatus: number;
  /** The English message as written, `{name}` placeholders unfilled: the key of its translations. */
  readonly template: string;
  /** The values of the template's placeholders. */
  readonly params: Record<string, string | number> | undefined;

  /**
   * `message` is English, with `{name}` placeholders filled from `params`; it is also the key
   * of its translations (src/i18n/locales/<locale>/errors.json), so keep the variable parts in
   * `params`, never in the string.
   */
  constructor(
    appCode: AppErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown; params?: Record<string, string | number> } = {},
  ) {
    super({ code: APP_ERROR_CODES[appCode], message: interpolate(message, options.params), cause: options.cause });
    this.name = 'AppError';
    this.appCode = appCode;
    this.details = options.details;
    this.template = message;
    this.params = options.params;
    this.httpStatus = getHTTPStatusCodeFromError(this);
  }
}

/** How long clients are told to wait before retrying while a dependency is down. */
export const DEPENDENCY_RETRY_AFTER_SECONDS = 2;

/** How long clients are told to wait when the server is too busy to take the call (a sign-in storm). */
export const BUSY_RETRY_AFTER_SECONDS = 1;

export function dependencyDown(dependency: Dependency, cause?: unknown): AppError {
  const options = { details: { dependency, retryAfterSeconds: DEPENDENCY_RETRY_AFTER_SECONDS }, cause };
  switch (dependency) {
    case 'database':
      return new AppError('DEPENDENCY_DOWN', 'The database is unavailable: try again shortly', options);
    case 'storage':
      return new AppError('DEPENDENCY_DOWN', 'The file storage is unavailable: try again shortly', options);
    default:
      return new AppError(
        'DEPENDENCY_DOWN',
        'The session and rate-limit store is unavailable: try again shortly',
        options,
      );
  }
}

/** Too many calls: the client waits until the limit's window resets (`Retry-After`). */
export function rateLimited(resetMs: number): AppError {
  const retryAfterSeconds = Math.max(1, Math.ceil(resetMs / 1000));
  return new AppError('RATE_LIMITED', 'Too many requests: try again in {retryAfterSeconds} s', {
    details: { retryAfterSeconds },
    params: { retryAfterSeconds },
  });
}
