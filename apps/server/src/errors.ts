/**
 * Application errors: services throw `AppError(appCode, message)`. It is a TRPCError
 * carrying the tRPC code (hence the HTTP status) its app code travels as, so tRPC passes
 * it through untouched (no extra middleware on every call); the one errorFormatter adds
 * the stable `appCode` clients see on both transports.
 */
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { type Dependency, unavailableDependency } from './infra/dependency-errors.ts';
import { isForeignKeyViolation, isUniqueViolation } from './infra/postgres-errors.ts';

/** Every app code a client can receive, and the tRPC code (hence HTTP status) it travels as. */
export const APP_ERROR_CODES = {
  VALIDATION_FAILED: 'BAD_REQUEST',
  BAD_REQUEST: 'BAD_REQUEST',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  ROUTE_NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_SUPPORTED: 'METHOD_NOT_SUPPORTED',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  RATE_LIMITED: 'TOO_MANY_REQUESTS',
  TIMEOUT: 'TIMEOUT',
  CLIENT_CLOSED_REQUEST: 'CLIENT_CLOSED_REQUEST',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  DEPENDENCY_DOWN: 'SERVICE_UNAVAILABLE',
  INTERNAL_ERROR: 'INTERNAL_SERVER_ERROR',
  // Accounts
  EMAIL_TAKEN: 'CONFLICT',
  INVALID_CREDENTIALS: 'UNAUTHORIZED',
  ACCOUNT_DISABLED: 'FORBIDDEN',
  TOKEN_EXPIRED: 'UNAUTHORIZED',
  INVALID_REFRESH_TOKEN: 'UNAUTHORIZED',
  SESSION_REVOKED: 'UNAUTHORIZED',
  PERMISSION_DENIED: 'FORBIDDEN',
  ROLE_NAME_TAKEN: 'CONFLICT',
  BUILT_IN_ROLE: 'FORBIDDEN',
  UNKNOWN_PERMISSION: 'BAD_REQUEST',
  // Email and one-time codes
  INVALID_TOKEN: 'BAD_REQUEST',
  INVALID_CODE: 'UNAUTHORIZED',
  EMAIL_DELIVERY_FAILED: 'SERVICE_UNAVAILABLE',
} as const satisfies Record<string, TRPC_ERROR_CODE_KEY>;

export type AppErrorCode = keyof typeof APP_ERROR_CODES;

/** What each app code means to a client: the OpenAPI document lists them per operation and status. */
export const APP_ERROR_MEANINGS: Record<AppErrorCode, string> = {
  VALIDATION_FAILED: 'the input is invalid; `issues` says where and why',
  BAD_REQUEST: 'the request cannot be read (malformed JSON or URL)',
  UNAUTHORIZED: 'no access token, or not a valid one: send `Authorization: Bearer <accessToken>`',
  FORBIDDEN: 'not allowed',
  NOT_FOUND: 'no such thing, or not one the caller may see',
  ROUTE_NOT_FOUND: 'no route for this method and path',
  METHOD_NOT_SUPPORTED: 'this procedure is not served with this HTTP method',
  CONFLICT: 'conflicts with a change made at the same time: try again',
  PAYLOAD_TOO_LARGE: 'the body is larger than the server accepts',
  UNSUPPORTED_MEDIA_TYPE: 'the body is not `application/json`',
  RATE_LIMITED: 'too many calls: wait `Retry-After` seconds',
  TIMEOUT: 'the request took too long to arrive',
  CLIENT_CLOSED_REQUEST: 'the client went away before the answer',
  SERVICE_UNAVAILABLE: 'not available right now: try again later',
  DEPENDENCY_DOWN: 'the database or Redis is unreachable (`details.dependency`): retry after `Retry-After` seconds',
  INTERNAL_ERROR: 'a bug on the server',
  EMAIL_TAKEN: 'an account already uses this email',
  INVALID_CREDENTIALS: 'wrong email or password',
  ACCOUNT_DISABLED: 'the account is disabled',
  TOKEN_EXPIRED: 'the access token has expired: refresh it (`POST /api/auth/refresh`)',
  INVALID_REFRESH_TOKEN: 'the refresh token is unknown or its session has expired: sign in again',
  SESSION_REVOKED: 'the session has ended (signed out, revoked, password changed, account gone): sign in again',
  PERMISSION_DENIED: 'the caller lacks the permission `details.permission` names',
  ROLE_NAME_TAKEN: 'a role already has this name',
  BUILT_IN_ROLE: 'a built-in role cannot be changed or deleted this way',
  UNKNOWN_PERMISSION: 'a permission named is not declared (`details.unknown`)',
  INVALID_TOKEN: 'the emailed link is invalid, already used or expired',
  INVALID_CODE: 'the code is wrong or has expired',
  EMAIL_DELIVERY_FAILED: 'the email provider refused or did not answer',
};

/** The HTTP status an app code is answered with, on every transport. */
export function httpStatusOf(appCode: AppErrorCode): number {
  return getHTTPStatusCodeFromError(new TRPCError({ code: APP_ERROR_CODES[appCode] }));
}

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

/** The app code for an error that did not come from an AppError. */
export function defaultAppCode(trpcCode: TRPC_ERROR_CODE_KEY): AppErrorCode {
  switch (trpcCode) {
    case 'PARSE_ERROR':
    case 'BAD_REQUEST':
      return 'BAD_REQUEST';
    case 'TOO_MANY_REQUESTS':
      return 'RATE_LIMITED';
    case 'INTERNAL_SERVER_ERROR':
    case 'NOT_IMPLEMENTED':
    case 'BAD_GATEWAY':
      return 'INTERNAL_ERROR';
    case 'GATEWAY_TIMEOUT':
      return 'TIMEOUT';
    case 'PRECONDITION_FAILED':
    case 'UNPROCESSABLE_CONTENT':
      return 'BAD_REQUEST';
    case 'PAYMENT_REQUIRED':
      return 'FORBIDDEN';
    default:
      return trpcCode in APP_ERROR_CODES ? (trpcCode as AppErrorCode) : 'INTERNAL_ERROR';
  }
}

/** How long clients are told to wait before retrying while a dependency is down. */
export const DEPENDENCY_RETRY_AFTER_SECONDS = 2;

export function dependencyDown(dependency: Dependency, cause?: unknown): AppError {
  const name = dependency === 'database' ? 'The database' : 'The session and rate-limit store';
  return new AppError('DEPENDENCY_DOWN', `${name} is unavailable: try again shortly`, {
    details: { dependency, retryAfterSeconds: DEPENDENCY_RETRY_AFTER_SECONDS },
    cause,
  });
}

/**
 * The AppError a failure stands for: itself, or what an unexpected error means to a client.
 * A dependency that is down is a 503; a row that a concurrent request deleted (23503) or
 * created (23505) is a 404 or 409, not a 500. Undefined for everything else (a bug: 500).
 */
export function recognizeError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  const cause = error instanceof TRPCError ? error.cause : error;
  if (error instanceof TRPCError && error.code !== 'INTERNAL_SERVER_ERROR') return undefined;
  const dependency = unavailableDependency(cause);
  if (dependency) return dependencyDown(dependency, cause);
  if (isForeignKeyViolation(cause)) {
    return new AppError('NOT_FOUND', 'Something this request refers to was deleted meanwhile', { cause });
  }
  if (isUniqueViolation(cause)) {
    return new AppError('CONFLICT', 'This conflicts with a change made at the same time: try again', { cause });
  }
  return undefined;
}
