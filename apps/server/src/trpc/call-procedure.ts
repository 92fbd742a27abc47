/**
 * Calls a procedure as `procedure(opts)` does, without the cost of tRPC's own caller: its
 * `callRecursive` copies the call's options (twice, with a transpiled object-spread helper)
 * at every middleware level, which was a tenth of a query's CPU. Here each level gets one
 * small object of a fixed shape, and the context is copied only when a middleware adds to it.
 * Every transport calls procedures through this (the fast tRPC path and the REST routes).
 *
 * Mirrors @trpc/server 11.25.2's `callRecursive` and `createProcedureCaller`: it relies on
 * `procedure._def.middlewares` (input and output parsers, our middlewares, the resolver last)
 * and `_def.meta`, and on the middleware protocol: `opts.next(nextOpts)` merges
 * `nextOpts.ctx` into the context and may replace `input` and `getRawInput`; a middleware
 * answers `{ ok, data | error }`; a throw becomes `{ ok: false, error }`. The conformance
 * suite (test/trpc-conformance.test.ts) compares every transport with tRPC's own adapter.
 */
import { type AnyTRPCProcedure, getTRPCErrorFromUnknown, TRPCError } from '@trpc/server';
import { middlewareMarker } from '@trpc/server/unstable-core-do-not-import';

export interface ProcedureCall<Ctx> {
  path: string;
  type: 'query' | 'mutation';
  ctx: Ctx;
  getRawInput(): Promise<unknown>;
  /** The request's signal, made when a middleware or resolver first reads `opts.signal`. */
  signal(): AbortSignal | undefined;
  batchIndex: number;
}

type MiddlewareResult = { ok: true; data: unknown } | { ok: false; error: TRPCError };
interface NextOptions {
  ctx?: Record<string, unknown>;
  input?: unknown;
  getRawInput?: () => Promise<unknown>;
}
type Middleware = (opts: Record<string, unknown>) => Promise<MiddlewareResult>;

/** The procedure's answer, or its TRPCError thrown. */
export async function callProcedure<Ctx extends object>(
  procedure: AnyTRPCProcedure,
  call: ProcedureCall<Ctx>,
): Promise<unknown> {
  const def = procedure._def as unknown as { middlewares: Middleware[]; meta: unknown };
  const { middlewares, meta } = def;
  const step = async (
    index: number,
    ctx: object,
    input: unknown,
    getRawInput: () => Promise<unknown>,
  ): Promise<MiddlewareResult> => {
    const middleware = middlewares[index];
    if (!middleware) return undefined as unknown as MiddlewareResult;
    try {
      return await middleware({
        ctx,
        type: call.type,
        path: call.path,
        input,
        getRawInput,
        meta,
        get signal() {
          return call.signal();
        },
        batchIndex: call.batchIndex,
        next: (next?: NextOptions) =>
          step(
            index + 1,
            next?.ctx ? { ...ctx, ...next.ctx } : ctx,
            next && 'input' in next ? next.input : input,
            next?.getRawInput ?? getRawInput,
          ),
      });
    } catch (cause) {
      return { ok: false, error: getTRPCErrorFromUnknown(cause), marker: middlewareMarker } as MiddlewareResult;
    }
  };
  const result = await step(0, call.ctx, undefined, call.getRawInput);
  if (!result) {
    throw new TRPCError({
      code: 'INTERNAL_SERVER_ERROR',
      message: 'No result from middlewares - did you forget to `return next()`?',
    });
  }
  if (!result.ok) throw result.error;
  return result.data;
}
