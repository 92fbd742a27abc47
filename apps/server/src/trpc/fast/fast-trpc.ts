/**
 * A Fastify-native handler for tRPC HTTP calls: GET queries and POST mutations, single
 * and batched (`?batch=1`), JSON in and out. It reads the request straight from Fastify,
 * calls the procedures and writes the same status codes, headers and bodies as the
 * official adapter, without its Fetch-API bridging (undici Request/Response, Headers,
 * web streams). Everything else goes to the official adapter unchanged: other methods,
 * non-JSON bodies (FormData, binary), streaming (`trpc-accept`), subscriptions, batches
 * that mix procedure types, and malformed paths.
 *
 * Batches over `maxBatchSize` also go there (tRPC refuses them whole); TRACE, TRACK and
 * CONNECT, which its Fetch-API bridge cannot represent, are answered 405 here.
 *
 * Written against @trpc/server 11.25.2 (the catalog's pin): it mirrors
 * `resolveResponse` and the JSON content-type handler of that version, and relies on
 * `router._def.procedures` (the flat path -> procedure map), `router._def.lazy`,
 * `router._def._config`, each procedure's `_def.type` and its call signature
 * `procedure({ path, getRawInput, ctx, type, signal, batchIndex })`, plus the public
 * `getTRPCErrorFromUnknown`, `getTRPCErrorShape` and `getHTTPStatusCode`. Re-run the
 * conformance suite (apps/server/test/trpc-conformance.test.ts) when upgrading tRPC.
 */
import {
  type AnyTRPCProcedure,
  type AnyTRPCRouter,
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  TRPCError,
} from '@trpc/server';
import { fastifyRequestHandler } from '@trpc/server/adapters/fastify';
import { getHTTPStatusCode } from '@trpc/server/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Context } from '../context.ts';

/** The @trpc/server version this file mirrors; a test fails when the installed one differs. */
export const WRITTEN_FOR_TRPC = '11.25.2';

export interface FastTrpcOptions {
  router: AnyTRPCRouter;
  createContext(opts: { req: FastifyRequest; res: FastifyReply }): Context;
  onError?(opts: { error: TRPCError; path: string | undefined }): void;
  /** Most calls in one batch; a larger batch is refused whole (400), as tRPC's `maxBatchSize`. */
  maxBatchSize?: number;
}

/** Methods that the Fetch API (hence tRPC's adapter) cannot represent: answered 405 here. */
const FORBIDDEN_METHODS = new Set(['TRACE', 'TRACK', 'CONNECT']);

type ProcedureType = 'query' | 'mutation' | 'subscription';
const METHOD_FOR: Record<ProcedureType, string> = { query: 'GET', mutation: 'POST', subscription: 'GET' };
const VARY = 'trpc-accept, accept';

type Outcome = { ok: true; data: unknown } | { ok: false; error: TRPCError };

function isObject(value: unknown): value is Record<string, unknown> {
  return !!value && !Array.isArray(value) && typeof value === 'object';
}

/** tRPC refuses promises and async iterables in a non-streaming response. */
function isDataStream(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (Symbol.asyncIterator in value) return true;
  return Object.values(value).some(
    (v) =>
      (isObject(v) || typeof v === 'function') &&
      (typeof (v as { then?: unknown }).then === 'function' || Symbol.asyncIterator in (v as object)),
  );
}

function isJsonContentType(header: string | undefined): boolean {
  return header?.split(';', 1)[0]?.trim().toLowerCase() === 'application/json';
}

/** The request's inputs by batch index, parsed once, on first use (as tRPC does). */
function lazyInputs(raw: string | undefined, isBatch: boolean, count: number) {
  let parsed: { ok: true; value: Record<number, unknown> } | { ok: false; error: TRPCError } | undefined;
  const parse = (): { ok: true; value: Record<number, unknown> } | { ok: false; error: TRPCError } => {
    if (!raw) return { ok: true, value: {} };
    let inputs: unknown;
    try {
      inputs = JSON.parse(raw);
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : 'Invalid input';
      return { ok: false, error: new TRPCError({ code: 'BAD_REQUEST', message, cause }) };
    }
    if (!isBatch) return { ok: true, value: { 0: inputs } };
    if (!isObject(inputs)) {
      return {
        ok: false,
        error: new TRPCError({ code: 'BAD_REQUEST', message: '"input" needs to be an object when doing a batch call' }),
      };
    }
    const value: Record<number, unknown> = {};
    for (let index = 0; index < count; index++) if (inputs[index] !== undefined) value[index] = inputs[index];
    return { ok: true, value };
  };
  return {
    read(index: number): unknown {
      parsed ??= parse();
      if (!parsed.ok) throw parsed.error;
      return parsed.value[index];
    },
    /** What the error shape shows as `input`: undefined until (or unless) parsed. */
    result(index: number): unknown {
      return parsed?.ok ? parsed.value[index] : undefined;
    },
  };
}

export async function fastTrpc(app: FastifyInstance, options: FastTrpcOptions): Promise<void> {
  const { router } = options;
  const config = router._def._config;
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure | undefined>;
  if (Object.keys(router._def.lazy ?? {}).length > 0) {
    throw new Error('fastTrpc: lazy routers are not supported; serve this router with the official adapter');
  }

  // Fastify appends "; charset=utf-8" to a JSON string's content type in send(); tRPC's adapter
  // sends plain "application/json". Restored here, before the headers are written: a string body
  // goes out in one write with the headers (a Buffer would take the slower writev path).
  const exactJson = new WeakSet<FastifyReply>();
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (exactJson.has(reply)) reply.header('content-type', 'application/json');
    done(null, payload);
  });

  // As the official adapter does: bodies reach tRPC as text, so malformed JSON is a tRPC error, per call.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.removeContentTypeParser('multipart/form-data');
  app.addContentTypeParser('multipart/form-data', (_request, payload, done) => done(null, payload));

  const official = (request: FastifyRequest<{ Params: { path: string } }>, reply: FastifyReply) =>
    fastifyRequestHandler({
      router,
      req: request,
      res: reply,
      path: request.params.path,
      createContext: ({ req, res }) => options.createContext({ req, res }),
      onError: ({ error, path }) => options.onError?.({ error, path }),
      maxBatchSize: options.maxBatchSize,
    });

  app.all<{ Params: { path: string }; Querystring: Record<string, string | string[] | undefined> }>(
    '/:path',
    async (request, reply) => {
      const method = request.method;
      if (method !== 'GET' && method !== 'POST' && !FORBIDDEN_METHODS.has(method)) return official(request, reply);
      if (request.headers['trpc-accept'] !== undefined) return official(request, reply);
      if (method === 'POST' && !isJsonContentType(request.headers['content-type'])) return official(request, reply);

      let path: string;
      try {
        path = decodeURIComponent(request.params.path);
      } catch {
        return official(request, reply);
      }
      const query = request.query;
      const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
      const isBatch = first(query.batch) === '1';
      const paths = isBatch ? path.split(',') : [path];
      if (options.maxBatchSize !== undefined && paths.length > options.maxBatchSize) return official(request, reply);
      const calls = paths.map((p) => procedures[p]);

      const types = new Set<ProcedureType>();
      for (const procedure of calls) if (procedure) types.add(procedure._def.type as ProcedureType);
      if (types.size > 1 || types.has('subscription')) return official(request, reply);

      const ctx = options.createContext({ req: request, res: reply });
      const raw = method === 'GET' ? first(query.input) : (request.body as string | undefined);
      const inputs = lazyInputs(raw, isBatch, paths.length);

      // Aborted when the client goes away before the answer, like the official adapter's request signal.
      const abort = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });

      let allow: string | undefined;
      const run = async (index: number): Promise<Outcome> => {
        const procedure = calls[index];
        const callPath = paths[index] as string;
        try {
          if (!procedure)
            throw new TRPCError({ code: 'NOT_FOUND', message: `No procedure found on path "${callPath}"` });
          const type = procedure._def.type as ProcedureType;
          if (METHOD_FOR[type] !== method) {
            // (TRACE and the like get here too: tRPC's adapter would fail on them with a 500.)
            allow = METHOD_FOR[type];
            throw new TRPCError({
              code: 'METHOD_NOT_SUPPORTED',
              message: `Unsupported ${method}-request to ${type} procedure at path "${callPath}"`,
            });
          }
          const data = await procedure({
            path: callPath,
            getRawInput: async () => inputs.read(index),
            ctx,
            type,
            signal: abort.signal,
            batchIndex: index,
          });
          if (isDataStream(data)) {
            throw new TRPCError({
              code: 'UNSUPPORTED_MEDIA_TYPE',
              message: 'Cannot use stream-like response in non-streaming request - use httpBatchStreamLink',
            });
          }
          return { ok: true, data };
        } catch (cause) {
          const error = getTRPCErrorFromUnknown(cause);
          options.onError?.({ error, path: callPath });
          return { ok: false, error };
        }
      };

      const outcomes = await Promise.all(paths.map((_, index) => run(index)));
      const bodies = outcomes.map((outcome, index) =>
        outcome.ok
          ? { result: { data: outcome.data } }
          : {
              error: getTRPCErrorShape({
                config,
                ctx,
                error: outcome.error,
                input: inputs.result(index),
                path: paths[index],
                type: (calls[index]?._def.type as ProcedureType | undefined) ?? 'unknown',
              }),
            },
      );
      const errors = outcomes.map((outcome) => (outcome.ok ? undefined : outcome.error));
      const status = getHTTPStatusCode(bodies as Parameters<typeof getHTTPStatusCode>[0], errors as TRPCError[]);

      reply.code(status).header('vary', VARY).header('content-type', 'application/json');
      if (allow) reply.header('allow', allow);
      exactJson.add(reply);
      return reply.send(JSON.stringify(isBatch ? bodies : bodies[0]));
    },
  );
}
