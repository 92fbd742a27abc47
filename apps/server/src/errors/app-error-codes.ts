/**
 * The app codes clients can receive, the one table saying which tRPC code (hence which HTTP
 * status) each travels as, and what each means. Every transport answers from this table.
 */
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';

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
  ACCOUNT_ARCHIVED: 'FORBIDDEN',
  TOKEN_EXPIRED: 'UNAUTHORIZED',
  INVALID_REFRESH_TOKEN: 'UNAUTHORIZED',
  SESSION_REVOKED: 'UNAUTHORIZED',
  PERMISSION_DENIED: 'FORBIDDEN',
  ROLE_NAME_TAKEN: 'CONFLICT',
  BUILT_IN_ROLE: 'FORBIDDEN',
  UNKNOWN_PERMISSION: 'BAD_REQUEST',
  LAST_ADMIN: 'CONFLICT',
  // Email and one-time codes
  INVALID_TOKEN: 'BAD_REQUEST',
  INVALID_CODE: 'UNAUTHORIZED',
  EMAIL_DELIVERY_FAILED: 'SERVICE_UNAVAILABLE',
  // Sign-in with outside providers
  OAUTH_STATE_INVALID: 'BAD_REQUEST',
  OAUTH_DENIED: 'FORBIDDEN',
  OAUTH_PROVIDER_ERROR: 'BAD_GATEWAY',
  OAUTH_EMAIL_MISSING: 'BAD_REQUEST',
  INVALID_ID_TOKEN: 'UNAUTHORIZED',
  LAST_SIGN_IN_METHOD: 'CONFLICT',
  // Files
  FILE_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  QUOTA_EXCEEDED: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_FILE_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  DIRECT_UPLOADS_UNAVAILABLE: 'BAD_REQUEST',
  UPLOAD_REJECTED: 'BAD_REQUEST',
  NOT_AN_IMAGE: 'BAD_REQUEST',
  // Batches (only ever an item's error, never a call's)
  BATCH_ABORTED: 'CONFLICT',
} as const satisfies Record<string, TRPC_ERROR_CODE_KEY>;

/** The stable code of every error the API answers (`error.data.appCode`); docs/api.md says what each means. */
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
  UNSUPPORTED_MEDIA_TYPE:
    'the body is not of the type the route takes: `application/json` (`multipart/form-data` for an upload)',
  RATE_LIMITED: 'too many calls: wait `Retry-After` seconds',
  TIMEOUT: 'the request took too long to arrive',
  CLIENT_CLOSED_REQUEST: 'the client went away before the answer',
  SERVICE_UNAVAILABLE:
    'not available right now: try again later (after `Retry-After` seconds when it says: a server too busy to check a password)',
  DEPENDENCY_DOWN:
    'the database, Redis or the file storage is unreachable (`details.dependency`): retry after `Retry-After` seconds',
  INTERNAL_ERROR: 'a bug on the server',
  EMAIL_TAKEN: 'an account already uses this email',
  INVALID_CREDENTIALS: 'wrong email or password',
  ACCOUNT_DISABLED: 'an administrator disabled the account',
  ACCOUNT_ARCHIVED: 'the account is archived (by its owner or an administrator); an administrator can restore it',
  TOKEN_EXPIRED: 'the access token has expired: refresh it (`POST /api/auth/refresh`)',
  INVALID_REFRESH_TOKEN: 'the refresh token is unknown or its session has expired: sign in again',
  SESSION_REVOKED: 'the session has ended (signed out, revoked, password changed, account gone): sign in again',
  PERMISSION_DENIED: 'the caller lacks the permission `details.permission` names',
  ROLE_NAME_TAKEN: 'a role already has this name',
  BUILT_IN_ROLE: 'a built-in role cannot be changed or deleted this way',
  UNKNOWN_PERMISSION: 'a permission named is not declared (`details.unknown`)',
  INVALID_TOKEN:
    'the emailed link is invalid, already used or expired, or (verification) was sent to another account than the one signed in',
  INVALID_CODE: 'the code is wrong or has expired',
  EMAIL_DELIVERY_FAILED: 'the email provider refused or did not answer',
  OAUTH_STATE_INVALID: 'the sign-in is unknown, already finished or older than 10 minutes: start it again',
  OAUTH_DENIED: "the person declined on the provider's page",
  OAUTH_PROVIDER_ERROR: 'the sign-in provider failed, did not answer, or answered something that does not check out',
  OAUTH_EMAIL_MISSING: 'the provider shared no email address, and an account needs one',
  INVALID_ID_TOKEN: 'the ID token is not valid (signature, issuer, audience, expiry or nonce)',
  FILE_TOO_LARGE: 'the file is larger than `FILES_MAX_BYTES` (`details.maxBytes`); nothing was kept',
  QUOTA_EXCEEDED: 'the file would take the account over its storage quota (`details.quotaBytes`); nothing was kept',
  UNSUPPORTED_FILE_TYPE:
    'the file is not of an accepted type (`details.contentType`: what its bytes are, or for a direct upload the type declared; `details.allowed`)',
  DIRECT_UPLOADS_UNAVAILABLE: 'direct uploads need the S3 storage driver: upload through `POST /api/files`',
  UPLOAD_REJECTED:
    'the uploaded object is not the declared size or an accepted type (`details.reason`: `size`, `type`), and was removed; or is not there yet (`missing`), and the upload is kept to complete once it is',
  NOT_AN_IMAGE: 'a profile picture must be an image you uploaded',
  BATCH_ABORTED: 'the item was valid, but the batch was atomic and another item failed: nothing was written',
  LAST_ADMIN:
    'the change would leave no administrator who can sign in (an enabled, unarchived holder of the `admin` role): make another account an admin first',
  LAST_SIGN_IN_METHOD:
    'the account would have no way left to sign in: set a password (the `auth.forgotPassword` email) or link another provider first',
};

/** The HTTP status an app code is answered with, on every transport. */
export function httpStatusOf(appCode: AppErrorCode): number {
  return getHTTPStatusCodeFromError(new TRPCError({ code: APP_ERROR_CODES[appCode] }));
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

const STATUS_TO_TRPC_CODE: Record<number, TRPC_ERROR_CODE_KEY> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_SUPPORTED',
  408: 'TIMEOUT',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
  499: 'CLIENT_CLOSED_REQUEST',
  503: 'SERVICE_UNAVAILABLE',
};

/** Refusals that keep their status without a code of their own: a static file's precondition and range. */
const KEPT_STATUSES = new Set([412, 416]);

/**
 * The status an HTTP refusal that no procedure made is answered with: its own when the API
 * has a code for it (or it is a static file's 412 or 416), else 400 (a 406 or a 414 would
 * carry `BAD_REQUEST`, whose status is 400).
 */
export function refusalStatus(status: number | undefined): number {
  if (status === undefined || status >= 500) return 400;
  return STATUS_TO_TRPC_CODE[status] !== undefined || KEPT_STATUSES.has(status) ? status : 400;
}

/** The tRPC code of an HTTP refusal that no procedure made (no route, a body Fastify refused). */
export function trpcCodeForStatus(status: number): TRPC_ERROR_CODE_KEY {
  return STATUS_TO_TRPC_CODE[status] ?? (status < 500 ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR');
}
