/**
 * The one error body of API.md, on every transport: REST and plain routes send it as it is,
 * tRPC carries the same facts in `error.data` (see trpc/error-formatter.ts).
 */
import { getTRPCErrorFromUnknown, type TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { type AppErrorCode, defaultAppCode, trpcCodeForStatus } from './app-error-codes.ts';
import { recognizeError } from './recognize-error.ts';

/** One field-level validation problem: where (`path`) and what (`message`). */
export interface ValidationIssue {
  path: (string | number)[];
  message: string;
  code: string;
}

export interface ErrorBody {
  code: TRPC_ERROR_CODE_KEY;
  appCode: AppErrorCode;
  message: string;
  requestId: string | undefined;
  issues?: ValidationIssue[];
  details?: Record<string, unknown>;
  stack?: string;
}

/** An error as clients receive it: the HTTP status and the body. */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
}

/** What an internal error says outside development. */
const INTERNAL_ERROR_MESSAGE = 'Internal server error';

function validationIssues(error: TRPCError): ValidationIssue[] | undefined {
  const cause = error.cause as { name?: string; issues?: unknown } | undefined;
  if (error.code !== 'BAD_REQUEST' || cause?.name !== 'ZodError' || !Array.isArray(cause.issues)) return undefined;
  return cause.issues.map((issue: { path?: PropertyKey[]; message?: string; code?: string }) => ({
    path: (issue.path ?? []).map((segment) => (typeof segment === 'number' ? segment : String(segment))),
    message: issue.message ?? 'Invalid value',
    code: issue.code ?? 'invalid',
  }));
}

/**
 * The answer to what a procedure or a route threw. An unexpected error that means something
 * to clients (a dependency down, a race) is answered as that. Internal errors lose their
 * message, and every error its stack, unless `exposeDetails` (development): a pg error can
 * carry SQL and data.
 */
export function errorAnswer(thrown: unknown, requestId: string | undefined, exposeDetails: boolean): ErrorAnswer {
  const error = getTRPCErrorFromUnknown(thrown);
  const appError = recognizeError(error);
  const answered = appError ?? error;
  const issues = validationIssues(answered);
  const isInternal = answered.code === 'INTERNAL_SERVER_ERROR' && !appError;
  const message = issues
    ? 'Input validation failed'
    : isInternal && !exposeDetails
      ? INTERNAL_ERROR_MESSAGE
      : answered.message;
  return {
    status: appError ? appError.httpStatus : getHTTPStatusCodeFromError(error),
    body: {
      code: answered.code,
      appCode: appError?.appCode ?? (issues ? 'VALIDATION_FAILED' : defaultAppCode(answered.code)),
      message,
      requestId,
      ...(issues && { issues }),
      ...(appError?.details && { details: appError.details }),
      ...(exposeDetails && error.stack && { stack: error.stack }),
    },
  };
}

/** The body of a refusal that no procedure made: no route, a body Fastify could not read, a malformed URL. */
export function httpErrorBody(status: number, message: string, requestId: string, appCode?: AppErrorCode): ErrorBody {
  const code = trpcCodeForStatus(status);
  return { code, appCode: appCode ?? defaultAppCode(code), message, requestId };
}
