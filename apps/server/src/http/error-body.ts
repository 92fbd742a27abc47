import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { type AppErrorCode, defaultAppCode } from '../errors.ts';
import type { AppErrorShape, ValidationIssue } from '../trpc/error-formatter.ts';

/** The REST error body of API.md; tRPC carries the same facts in `error.data`. */
export interface RestErrorBody {
  code: TRPC_ERROR_CODE_KEY;
  appCode: AppErrorCode;
  message: string;
  requestId: string | undefined;
  issues?: ValidationIssue[];
  details?: Record<string, unknown>;
  stack?: string;
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

export function trpcCodeForStatus(status: number): TRPC_ERROR_CODE_KEY {
  return STATUS_TO_TRPC_CODE[status] ?? (status < 500 ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR');
}

export function errorBody(status: number, message: string, requestId: string, appCode?: AppErrorCode): RestErrorBody {
  const code = trpcCodeForStatus(status);
  return { code, appCode: appCode ?? defaultAppCode(code), message, requestId };
}

/** The REST body for an error our formatter shaped (the same facts tRPC carries in `error.data`). */
export function restErrorBody(shape: AppErrorShape, requestId: string): RestErrorBody {
  const { data } = shape;
  return {
    code: data.code,
    appCode: data.appCode,
    message: shape.message,
    requestId: data.requestId ?? requestId,
    ...(data.issues && { issues: data.issues }),
    ...(data.details && { details: data.details }),
    ...(data.stack && { stack: data.stack }),
  };
}
