/**
 * The app codes a procedure can answer, from one declaration per piece that can fail: each
 * procedure builder declares what its middleware throws (`declareErrors`), each procedure
 * what its resolver and services throw (`meta.errors`), and a procedure with input can
 * answer VALIDATION_FAILED. The OpenAPI document lists exactly these; a test checks them
 * against what the tests observe.
 *
 * Relies on tRPC v11's `procedure._def.middlewares` (the builder's middleware functions, in
 * order, shared by every procedure built on it) and `_def.inputs`.
 */
import type { AnyTRPCProcedure } from '@trpc/server';
import type { AppErrorCode } from '../errors/index.ts';
import type { AppMeta } from './init.ts';
import { takesNoInput } from './procedure-input.ts';

interface BuilderLike {
  _def: { middlewares: readonly unknown[] };
}

const middlewareErrors = new WeakMap<object, readonly AppErrorCode[]>();

/** Declares the app codes the middleware just added to `builder` (its last one) can answer. */
export function declareErrors(builder: BuilderLike, codes: readonly AppErrorCode[]): void {
  const middleware = builder._def.middlewares.at(-1);
  if (typeof middleware !== 'function') throw new Error('declareErrors: the builder has no middleware');
  middlewareErrors.set(middleware, codes);
}

/** Every app code the procedure can answer, whatever the transport. */
export function procedureErrors(procedure: AnyTRPCProcedure): Set<AppErrorCode> {
  const def = procedure._def as unknown as { middlewares: unknown[]; inputs: unknown[]; meta?: AppMeta };
  const codes = new Set<AppErrorCode>();
  for (const middleware of def.middlewares) {
    for (const code of middlewareErrors.get(middleware as object) ?? []) codes.add(code);
  }
  if (!takesNoInput(def.inputs)) codes.add('VALIDATION_FAILED');
  for (const code of def.meta?.errors ?? []) codes.add(code);
  return codes;
}
