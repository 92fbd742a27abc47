/**
 * Calls a procedure as `procedure(opts)` does, without the cost of tRPC's own caller: its
 * `callRecursive` copies the call's options (twice, with a transpiled object-spread helper)
 * at every middleware level, and its input and output parsers copy their results the same
 * way; together a tenth of a query's CPU. Here each level gets one small object of a fixed
 * shape, the context is copied only when a middleware adds to it, the input and output
 * parsers run in place, not as middleware levels, the answer is checked without zod's copy
 * when it needs none (./output-check.ts), and the resolver is called without its wrapper
 * (same parse functions, same errors, same answers).
 * Every transport calls procedures through this (the fast tRPC path and the REST routes).
 *
 * Mirrors @trpc/server 11.25.2's `callRecursive`, `createProcedureCaller`,
 * `createInputMiddleware`, `createOutputMiddleware` and `createResolver`. It relies on
 * `procedure._def`: `middlewares` (the parsers, marked by `_type` 'input' / 'output', our
 * middlewares, the resolver last, wrapped in a function named `resolveMiddleware`), `inputs`
 * (one per input middleware, in order), `output`, `resolver` and `meta`; and on
 * the middleware protocol: `opts.next(nextOpts)` merges `nextOpts.ctx` into the context and
 * may replace `input` and `getRawInput`; a middleware answers `{ ok, data | error }`; a throw
 * becomes `{ ok: false, error }`. The conformance suite (test/trpc-conformance.test.ts)
 * compares every transport with tRPC's own adapter.
 */
import { type AnyTRPCProcedure, getTRPCErrorFromUnknown, TRPCError } from '@trpc/server';
import { getParseFn, middlewareMarker } from '@trpc/server/unstable-core-do-not-import';
import { outputParser } from './output-check.ts';
import { isPromiseLike, isRecord } from './procedure-input.ts';

export interface ProcedureCall<Ctx> {
  path: string;
  type: 'query' | 'mutation';
  ctx: Ctx;
  getRawInput(): Promise<unknown>;
  /** The request's signal, made when a middleware or resolver first reads `opts.signal`. */
  signal(): AbortSignal | undefined;
  batchIndex: number;
}

type MiddlewareResult = { ok: true; data: unknown; ctx?: unknown } | { ok: false; error: TRPCError };
interface NextOptions {
  ctx?: Record<string, unknown>;
  input?: unknown;
  getRawInput?: () => Promise<unknown>;
}
type Middleware = (opts: MiddlewareOptions) => Promise<MiddlewareResult>;
type ParseFn = (value: unknown) => unknown;

/** What each middleware level gets; `signal` is read through the prototype, so it stays lazy. */
class MiddlewareOptions {
  readonly ctx: object;
  readonly type: 'query' | 'mutation';
  readonly path: string;
  readonly input: unknown;
  readonly getRawInput: () => Promise<unknown>;
  readonly meta: unknown;
  readonly batchIndex: number;
  readonly next: (next?: NextOptions) => Promise<MiddlewareResult>;
  readonly #call: ProcedureCall<unknown>;

  constructor(
    call: ProcedureCall<unknown>,
    meta: unknown,
    ctx: object,
    input: unknown,
    getRawInput: () => Promise<unknown>,
    next: (next?: NextOptions) => Promise<MiddlewareResult>,
  ) {
    this.#call = call;
    this.ctx = ctx;
    this.type = call.type;
    this.path = call.path;
    this.input = input;
    this.getRawInput = getRawInput;
    this.meta = meta;
    this.batchIndex = call.batchIndex;
    this.next = next;
  }

  get signal(): AbortSignal | undefined {
    return this.#call.signal();
  }
}

/**
 * One level of a procedure's chain. tRPC runs its input and output parsers as middlewares of
 * their own, and the resolver inside one more (`resolveMiddleware`); here `step` runs the
 * parsers in place and calls the resolver itself (same parse functions, same errors, same
 * results), which spares each call two levels and a wrapper: their closures and promises.
 */
type Level =
  | { kind: 'input'; fn: ParseFn }
  | { kind: 'output'; fn: ParseFn }
  | { kind: 'resolver'; fn: (opts: MiddlewareOptions) => unknown }
  | { kind: 'middleware'; fn: Middleware };

/** Each procedure's chain, its parsers and resolver marked to be run in place (as tRPC's middlewares when they cannot be matched). */
const compiled = new WeakMap<AnyTRPCProcedure, Level[]>();

/** A procedure's levels (exported for the conformance suite, which checks that none falls back). */
export function levelsOf(procedure: AnyTRPCProcedure): Level[] {
  const known = compiled.get(procedure);
  if (known) return known;
  const def = procedure._def as unknown as {
    middlewares: (Middleware & { _type?: string })[];
    inputs: unknown[];
    output?: unknown;
    resolver?: (opts: MiddlewareOptions) => unknown;
  };
  const inputs = def.middlewares.filter((middleware) => middleware._type === 'input');
  const outputs = def.middlewares.filter((middleware) => middleware._type === 'output');
  const matched = inputs.length === def.inputs.length && outputs.length === (def.output === undefined ? 0 : 1);
  let nextInput = 0;
  const last = def.middlewares.length - 1;
  const levels = def.middlewares.map((middleware, index): Level => {
    // `.query()` / `.mutation()` put the resolver last, wrapped in `resolveMiddleware`.
    if (index === last && def.resolver && middleware.name === 'resolveMiddleware') {
      return { kind: 'resolver', fn: def.resolver };
    }
    if (matched && middleware._type === 'input') {
      return { kind: 'input', fn: getParseFn(def.inputs[nextInput++] as never) as ParseFn };
    }
    if (matched && middleware._type === 'output') {
      return { kind: 'output', fn: outputParser(def.output, getParseFn(def.output as never) as ParseFn) };
    }
    return { kind: 'middleware', fn: middleware };
  });
  compiled.set(procedure, levels);
  return levels;
}

/** The procedure's answer, or its TRPCError thrown. */
export async function callProcedure<Ctx extends object>(
  procedure: AnyTRPCProcedure,
  call: ProcedureCall<Ctx>,
): Promise<unknown> {
  const levels = levelsOf(procedure);
  const meta = (procedure._def as { meta?: unknown }).meta;
  // A level's answer; a throw (a parser's refusal, a middleware's error) becomes `{ ok: false }`,
  // as tRPC's `callRecursive` makes it. A parser's answer is awaited only when it is a promise:
  // zod's answers at once, and each `await` costs a turn of the microtask queue.
  const step = async (
    index: number,
    ctx: object,
    input: unknown,
    getRawInput: () => Promise<unknown>,
  ): Promise<MiddlewareResult> => {
    try {
      let level = levels[index];
      // Input parsers, one after another: each parses the raw input and merges it into the
      // object an earlier one made.
      while (level?.kind === 'input') {
        const raw = await getRawInput();
        let parsed: unknown;
        try {
          parsed = level.fn(raw);
          if (isPromiseLike(parsed)) parsed = await parsed;
        } catch (cause) {
          throw new TRPCError({ code: 'BAD_REQUEST', cause });
        }
        input = isRecord(input) && isRecord(parsed) ? { ...input, ...parsed } : parsed;
        level = levels[++index];
      }
      if (level === undefined) return undefined as unknown as MiddlewareResult;
      if (level.kind === 'output') {
        // The levels below it, then their answer checked (and shaped) by the output schema.
        const result = await step(index + 1, ctx, input, getRawInput);
        if (!result.ok) return result;
        let data: unknown;
        try {
          data = level.fn(result.data);
          if (isPromiseLike(data)) data = await data;
        } catch (cause) {
          throw new TRPCError({ message: 'Output validation failed', code: 'INTERNAL_SERVER_ERROR', cause });
        }
        return { ok: true, data, ctx: result.ctx, marker: middlewareMarker } as MiddlewareResult;
      }
      const below = index + 1;
      const options = new MiddlewareOptions(call as ProcedureCall<unknown>, meta, ctx, input, getRawInput, (next) =>
        step(
          below,
          next?.ctx ? { ...ctx, ...next.ctx } : ctx,
          next && 'input' in next ? next.input : input,
          next?.getRawInput ?? getRawInput,
        ),
      );
      if (level.kind === 'resolver') {
        // What `resolveMiddleware` answers; a resolver's answer awaited only when it is a promise.
        let data = level.fn(options);
        if (isPromiseLike(data)) data = await data;
        return { ok: true, data, ctx, marker: middlewareMarker } as MiddlewareResult;
      }
      return await level.fn(options);
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
