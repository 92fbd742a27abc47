import type { TRPCError } from '@trpc/server';
import { type TRPC_ERROR_CODE_KEY, type TRPC_ERROR_CODE_NUMBER, TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import type { DefaultErrorData } from '@trpc/server/unstable-core-do-not-import';
import { type AppErrorCode, defaultAppCode, recognizeError } from '../errors.ts';
import type { Context } from './context.ts';

/** One field-level validation problem: where (`path`) and what (`message`). */
export interface ValidationIssue {
  path: (string | number)[];
  message: string;
  code: string;
}

export interface AppErrorData extends DefaultErrorData {
  appCode: AppErrorCode;
  requestId: string | undefined;
  issues?: ValidationIssue[];
  details?: Record<string, unknown>;
}

export interface AppErrorShape {
  message: string;
  code: TRPC_ERROR_CODE_NUMBER;
  data: AppErrorData;
}

const GENERIC_INTERNAL_MESSAGE = 'Internal server error';

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
 * The one error formatter (tRPC, and REST through the route table). Internal errors lose
 * their message and stack outside development: a pg error can carry SQL and data.
 */
export function formatError(opts: {
  shape: { message: string; code: TRPC_ERROR_CODE_NUMBER; data: DefaultErrorData };
  error: TRPCError;
  ctx: Context | undefined;
}): AppErrorShape {
  const { shape, error: thrown, ctx } = opts;
  // An unexpected error that means something to clients (a dependency down, a race) is shown as that.
  const appError = recognizeError(thrown);
  const error = appError ?? thrown;
  const issues = validationIssues(error);
  const expose = ctx?.exposeErrorDetails ?? false;
  const isInternal = error.code === 'INTERNAL_SERVER_ERROR' && !appError;
  const message = issues ? 'Input validation failed' : isInternal && !expose ? GENERIC_INTERNAL_MESSAGE : error.message;
  const { stack: _stack, ...data } = shape.data;
  // Every transport takes the HTTP status from data.httpStatus.
  if (appError && appError !== thrown) {
    data.code = appError.code;
    data.httpStatus = appError.httpStatus;
  }
  // The one place every error passes: a "try again in N s" error tells clients when, in a header.
  const retryAfter = appError?.details?.retryAfterSeconds;
  if (typeof retryAfter === 'number') ctx?.setHeader('retry-after', String(retryAfter));
  return {
    message,
    code: appError ? TRPC_ERROR_CODES_BY_KEY[appError.code] : shape.code,
    data: {
      ...data,
      appCode: appError?.appCode ?? (issues ? 'VALIDATION_FAILED' : defaultAppCode(error.code as TRPC_ERROR_CODE_KEY)),
      requestId: ctx?.requestId,
      ...(issues && { issues }),
      ...(appError?.details && { details: appError.details }),
      ...(expose && thrown.stack && { stack: thrown.stack }),
    },
  };
}
