import type { AnyTRPCProcedure } from '@trpc/server';
import type { AppErrorCode } from '../errors/index.ts';
import type { AppMeta } from '../trpc/init.ts';
import { procedureErrors } from '../trpc/procedure-errors.ts';
import { BODY_METHODS } from './rest-input.ts';

/**
 * Every app code a procedure's REST operation can answer: the procedure's own, and what
 * the REST route refuses before calling it: a JSON body that is malformed (400
 * BAD_REQUEST), too large (413) or not JSON at all (415). (A URL the router cannot decode
 * never reaches an operation: like an unknown path, it is no operation's answer.)
 */
export function restOperationErrors(procedure: AnyTRPCProcedure): Set<AppErrorCode> {
  const codes = procedureErrors(procedure);
  const openapi = (procedure._def.meta as AppMeta | undefined)?.openapi;
  if (!openapi) return codes;
  if (BODY_METHODS.has(openapi.method)) {
    for (const code of ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'] as const) codes.add(code);
  }
  return codes;
}
