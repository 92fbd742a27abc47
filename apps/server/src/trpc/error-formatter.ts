import type { TRPCError } from '@trpc/server';
import { type TRPC_ERROR_CODE_NUMBER, TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import type { DefaultErrorData } from '@trpc/server/unstable-core-do-not-import';
import { type AppErrorCode, errorAnswer, type ValidationIssue } from '../errors/index.ts';
import type { Context } from './context.ts';

/** `error.data` of a tRPC error: the same facts as the REST error body (`appCode`, `requestId`, `issues`, `details`). */
export interface AppErrorData extends DefaultErrorData {
  appCode: AppErrorCode;
  requestId: string | undefined;
  issues?: ValidationIssue[];
  details?: Record<string, unknown>;
}

/** tRPC's error shape for this API (what `TRPCClientError#shape` holds). */
export interface AppErrorShape {
  message: string;
  code: TRPC_ERROR_CODE_NUMBER;
  data: AppErrorData;
}

/** tRPC's errorFormatter: the error answered as on every transport, in tRPC's error shape. */
export function formatError(opts: {
  shape: { message: string; code: TRPC_ERROR_CODE_NUMBER; data: DefaultErrorData };
  error: TRPCError;
  ctx: Context | undefined;
}): AppErrorShape {
  const { shape, error, ctx } = opts;
  const { status, body } = errorAnswer(error, ctx?.requestId, ctx?.exposeErrorDetails ?? false, ctx?.locale);
  const { code, message, ...facts } = body;
  const { stack: _stack, ...data } = shape.data;
  return { message, code: TRPC_ERROR_CODES_BY_KEY[code], data: { ...data, code, httpStatus: status, ...facts } };
}
