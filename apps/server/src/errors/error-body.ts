/**
 * The one error body of API.md, on every transport: REST and plain routes send it as it is,
 * tRPC carries the same facts in `error.data` (see trpc/error-formatter.ts).
 */
import { getTRPCErrorFromUnknown, type TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { type TRPC_ERROR_CODE_KEY, TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import type { z } from 'zod';
import { codeMessage, errorMessage, issueMessage } from '../i18n/errors.ts';
import { DEFAULT_LOCALE, type Locale } from '../i18n/locale.ts';
import type { AppError } from './app-error.ts';
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

const VALIDATION_FAILED = 'Input validation failed';

function validationIssues(error: TRPCError, locale: Locale): ValidationIssue[] | undefined {
  const cause = error.cause as { name?: string; issues?: unknown } | undefined;
  if (error.code !== 'BAD_REQUEST' || cause?.name !== 'ZodError' || !Array.isArray(cause.issues)) return undefined;
  return cause.issues.map((issue: z.core.$ZodIssue) => ({
    path: (issue.path ?? []).map((segment) => (typeof segment === 'number' ? segment : String(segment))),
    message: issue.message ? issueMessage(locale, issue) : 'Invalid value',
    code: issue.code ?? 'invalid',
  }));
}

/** What the error says in `locale`: its own message, translated, or its app code's. */
function messageOf(
  locale: Locale,
  answered: TRPCError,
  appError: AppError | undefined,
  appCode: AppErrorCode,
  { hasIssues, exposeDetails }: { hasIssues: boolean; exposeDetails: boolean },
): string {
  if (hasIssues) return errorMessage(locale, { appCode, message: VALIDATION_FAILED, template: VALIDATION_FAILED });
  if (appError) return errorMessage(locale, appError);
  if (answered.code === 'INTERNAL_SERVER_ERROR' && !exposeDetails) return codeMessage(locale, 'INTERNAL_ERROR');
  return locale === DEFAULT_LOCALE ? answered.message : codeMessage(locale, appCode);
}

/**
 * The answer to what a procedure or a route threw. An unexpected error that means something
 * to clients (a dependency down, a race) is answered as that. Internal errors lose their
 * message, and every error its stack, unless `exposeDetails` (development): a pg error can
 * carry SQL and data.
 */
export function errorAnswer(
  thrown: unknown,
  requestId: string | undefined,
  exposeDetails: boolean,
  locale: Locale = DEFAULT_LOCALE,
): ErrorAnswer {
  const error = getTRPCErrorFromUnknown(thrown);
  const appError = recognizeError(error);
  const answered = appError ?? error;
  const issues = validationIssues(answered, locale);
  const appCode = appError?.appCode ?? (issues ? 'VALIDATION_FAILED' : defaultAppCode(answered.code));
  return {
    status: appError ? appError.httpStatus : getHTTPStatusCodeFromError(error),
    body: {
      code: answered.code,
      appCode,
      message: messageOf(locale, answered, appError, appCode, { hasIssues: issues !== undefined, exposeDetails }),
      requestId,
      ...(issues && { issues }),
      ...(appError?.details && { details: appError.details }),
      ...(exposeDetails && error.stack && { stack: error.stack }),
    },
  };
}

/**
 * The body of a refusal that no procedure made: no route, a body Fastify could not read, a
 * malformed URL. Its (English) message gives way to the app code's in another language.
 */
export function httpErrorBody(
  status: number,
  message: string,
  requestId: string,
  { appCode, locale = DEFAULT_LOCALE }: { appCode?: AppErrorCode; locale?: Locale } = {},
): ErrorBody {
  const code = trpcCodeForStatus(status);
  const answered = appCode ?? defaultAppCode(code);
  return {
    code,
    appCode: answered,
    message: locale === DEFAULT_LOCALE ? message : codeMessage(locale, answered),
    requestId,
  };
}

/**
 * A refusal made before any procedure ran (a body Fastify refused, a malformed URL), on a
 * tRPC path: in tRPC's error shape, the facts in `error.data` as a procedure's error has them
 * (trpc/error-formatter.ts). tRPC's client cannot read the REST body ("Unable to transform
 * response from server").
 */
export function trpcRefusal(status: number, body: ErrorBody) {
  const { code, message, ...facts } = body;
  return { error: { message, code: TRPC_ERROR_CODES_BY_KEY[code], data: { code, httpStatus: status, ...facts } } };
}

/** An item of a batch that was not written: its error as the call's would be, without the call's facts. */
export function itemError(
  error: AppError,
  locale: Locale,
): { appCode: AppErrorCode; message: string; issues?: ValidationIssue[] } {
  const { body } = errorAnswer(error, undefined, false, locale);
  return { appCode: body.appCode, message: body.message, ...(body.issues && { issues: body.issues }) };
}
