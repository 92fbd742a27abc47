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
 * Each request takes three steps: `parseRequest` (which calls, or the official adapter),
 * `runCalls` (the procedures, concurrently) and `writeResponse` (tRPC's status and body).
 *
 * Written against @trpc/server 11.25.2 (the catalog's pin): it mirrors
 * `resolveResponse` and the JSON content-type handler of that version, and relies on
 * `router._def.procedures` (the flat path -> procedure map), `router._def.lazy`,
 * `router._def._config` and each procedure's `_def.type`; procedures are called through
 * `callProcedure` (../call-procedure.ts, with its own reliance on tRPC internals), plus the public
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
import { getHTTPStatusCode } from '@trpc/server/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { callProcedure } from '../call-procedure.ts';
import type { Context } from '../context.ts';
import { isPromiseLike, isRecord } from '../procedure-input.ts';
import { requestSignal } from '../request-signal.ts';

/** The @trpc/server version this file mirrors; a test fails when the installed one differs. */
export const WRITTEN_FOR_TRPC = '11.25.2';

type OnError = (opts: { error: TRPCError; path: string | undefined; ctx: Context | undefined }) => void;

export interface FastTrpcOptions {
  router: AnyTRPCRouter;
  createContext(opts: { req: FastifyRequest; res: FastifyReply }): Context;
  /** Called once per failed call, before the answer is written. */
  onError?: OnError;
  /** Most calls in one batch; a larger batch is refused whole (400), as tRPC's `maxBatchSize`. */
  maxBatchSize?: number;
}

const asIs = (body: unknown) => body as string;

/** Methods that the Fetch API (hence tRPC's adapter) cannot represent: answered 405 here. */
const FORBIDDEN_METHODS = new Set(['TRACE', 'TRACK', 'CONNECT']);

type ProcedureType = 'query' | 'mutation' | 'subscription';
const METHOD_FOR: Record<ProcedureType, string> = { query: 'GET', mutation: 'POST', subscription: 'GET' };
const VARY = 'trpc-accept, accept';

type Outcome = { ok: true; data: unknown } | { ok: false; error: TRPCError };
type Query = Record<string, string | string[] | undefined>;
type TrpcFastifyRequest = FastifyRequest<{ Params: { path: string }; Querystring: Query }>;

const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** tRPC refuses promises and async iterables in a non-streaming response. */
function isDataStream(value: unknown): boolean {
  if (!isRecord(value)) return false;
  if (Symbol.asyncIterator in value) return true;
  // A loop, not Object.values(...).some(...): this runs on every answer.
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const v = value[key];
    if (!isRecord(v) && typeof v !== 'function') continue;
    if (isPromiseLike(v) || Symbol.asyncIterator in (v as object)) return true;
  }
  return false;
}

function isJsonContentType(header: string | undefined): boolean {
  return header?.split(';', 1)[0]?.trim().toLowerCase() === 'application/json';
}

type ParsedInputs = { ok: true; value: Record<number, unknown> } | { ok: false; error: TRPCError };

function parseInputs(raw: string | undefined, isBatch: boolean, count: number): ParsedInputs {
  if (!raw) return { ok: true, value: {} };
  let inputs: unknown;
  try {
    inputs = JSON.parse(raw);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : 'Invalid input';
    return { ok: false, error: new TRPCError({ code: 'BAD_REQUEST', message, cause }) };
  }
  if (!isBatch) return { ok: true, value: { 0: inputs } };
  if (!isRecord(inputs)) {
    return {
      ok: false,
      error: new TRPCError({ code: 'BAD_REQUEST', message: '"input" needs to be an object when doing a batch call' }),
    };
  }
  const value: Record<number, unknown> = {};
  for (let index = 0; index < count; index++) if (inputs[index] !== undefined) value[index] = inputs[index];
  return { ok: true, value };
}

/** The calls of one request, by batch index; their inputs are parsed once, on first use (as tRPC does). */
class TrpcCalls {
  readonly method: string;
  readonly isBatch: boolean;
  readonly paths: string[];
  readonly procedures: (AnyTRPCProcedure | undefined)[];
  /** The type of every procedure found (a batch never mixes them); undefined when none is. */
  readonly type: 'query' | 'mutation' | undefined;
  readonly #raw: string | undefined;
  #inputs: ParsedInputs | undefined;

  constructor(
    method: string,
    isBatch: boolean,
    paths: string[],
    procedures: (AnyTRPCProcedure | undefined)[],
    type: 'query' | 'mutation' | undefined,
    raw: string | undefined,
  ) {
    this.method = method;
    this.isBatch = isBatch;
    this.paths = paths;
    this.procedures = procedures;
    this.type = type;
    this.#raw = raw;
  }

  /** Call `index`'s input; throws when the request's inputs are malformed. */
  input(index: number): unknown {
    this.#inputs ??= parseInputs(this.#raw, this.isBatch, this.paths.length);
    if (!this.#inputs.ok) throw this.#inputs.error;
    return this.#inputs.value[index];
  }

  /** What the error shape shows as `input`: undefined until (or unless) parsed. */
  parsedInput(index: number): unknown {
    return this.#inputs?.ok ? this.#inputs.value[index] : undefined;
  }
}

/** Step 1: the request's calls, or undefined when the official adapter is to answer it. */
function parseRequest(
  request: TrpcFastifyRequest,
  procedures: Record<string, AnyTRPCProcedure | undefined>,
  maxBatchSize: number | undefined,
): TrpcCalls | undefined {
  const method = request.method;
  if (method !== 'GET' && method !== 'POST' && !FORBIDDEN_METHODS.has(method)) return undefined;
  // Streaming, asked either way (tRPC reads `application/jsonl` in Accept too): tRPC's own.
  if (request.headers['trpc-accept'] !== undefined) return undefined;
  if (request.headers.accept?.includes('application/jsonl')) return undefined;
  // tRPC picks its handler by content type before the method: any other than JSON is its own.
  const contentType = request.headers['content-type'];
  if (contentType !== undefined ? !isJsonContentType(contentType) : method === 'POST') return undefined;

  let path = request.params.path;
  if (path.includes('%')) {
    try {
      path = decodeURIComponent(path);
    } catch {
      return undefined;
    }
  }
  const query = request.query;
  const isBatch = first(query.batch) === '1';
  const paths = isBatch ? path.split(',') : [path];
  if (maxBatchSize !== undefined && paths.length > maxBatchSize) return undefined;
  const calls = paths.map((p) => procedures[p]);

  let type: 'query' | 'mutation' | undefined;
  for (const procedure of calls) {
    if (!procedure) continue;
    const callType = procedure._def.type as ProcedureType;
    if (callType === 'subscription' || (type !== undefined && callType !== type)) return undefined;
    type = callType;
  }
  const raw = method === 'GET' ? first(query.input) : (request.body as string | undefined);
  return new TrpcCalls(method, isBatch, paths, calls, type, raw);
}

async function runCall(
  calls: TrpcCalls,
  index: number,
  ctx: Context,
  signal: () => AbortSignal,
  onError: OnError | undefined,
): Promise<Outcome> {
  const procedure = calls.procedures[index];
  const path = calls.paths[index] as string;
  try {
    if (!procedure) throw new TRPCError({ code: 'NOT_FOUND', message: `No procedure found on path "${path}"` });
    const type = procedure._def.type as ProcedureType;
    if (METHOD_FOR[type] !== calls.method) {
      // (TRACE and the like get here too: tRPC's adapter would fail on them with a 500.)
      throw new TRPCError({
        code: 'METHOD_NOT_SUPPORTED',
        message: `Unsupported ${calls.method}-request to ${type} procedure at path "${path}"`,
      });
    }
    const data = await callProcedure(procedure, {
      path,
      getRawInput: async () => calls.input(index),
      ctx,
      type: type as 'query' | 'mutation',
      signal,
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
    onError?.({ error, path, ctx });
    return { ok: false, error };
  }
}

/** Step 2: every call, concurrently; one outcome per call, in batch order. */
function runCalls(calls: TrpcCalls, ctx: Context, signal: () => AbortSignal, onError: OnError | undefined) {
  const running: Promise<Outcome>[] = [];
  for (let index = 0; index < calls.paths.length; index++) running.push(runCall(calls, index, ctx, signal, onError));
  return Promise.all(running);
}

/** Step 3: status, headers and the JSON body tRPC's adapter would write; returns the body. */
function writeResponse(
  reply: FastifyReply,
  calls: TrpcCalls,
  outcomes: Outcome[],
  ctx: Context,
  config: AnyTRPCRouter['_def']['_config'],
): string {
  let errors: TRPCError[] | undefined;
  const bodies = outcomes.map((outcome, index) => {
    if (outcome.ok) return { result: { data: outcome.data } };
    errors ??= [];
    errors[index] = outcome.error;
    return {
      error: getTRPCErrorShape({
        config,
        ctx,
        error: outcome.error,
        input: calls.parsedInput(index),
        path: calls.paths[index],
        type: (calls.procedures[index]?._def.type as ProcedureType | undefined) ?? 'unknown',
      }),
    };
  });
  const status = getHTTPStatusCode(bodies as Parameters<typeof getHTTPStatusCode>[0], errors);

  reply.code(status).header('vary', VARY).header('content-type', 'application/json');
  // A procedure called with the wrong method: the one it takes.
  if (calls.type && METHOD_FOR[calls.type] !== calls.method) reply.header('allow', METHOD_FOR[calls.type]);
  return JSON.stringify(calls.isBatch ? bodies : bodies[0]);
}

export async function fastTrpc(app: FastifyInstance, options: FastTrpcOptions): Promise<void> {
  const { router, onError, maxBatchSize } = options;
  const config = router._def._config;
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure | undefined>;
  if (Object.keys(router._def.lazy ?? {}).length > 0) {
    throw new Error('fastTrpc: lazy routers are not supported; serve this router with the official adapter');
  }

  // As the official adapter does: bodies reach tRPC as text, so malformed JSON is a tRPC error, per call.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.removeContentTypeParser('multipart/form-data');
  app.addContentTypeParser('multipart/form-data', (_request, payload, done) => done(null, payload));

  // Loaded with the first request it answers (few ever are): its import brings node:http's
  // ES module facade, which loads undici (some 20 ms of start-up).
  const official = async (request: TrpcFastifyRequest, reply: FastifyReply) => {
    const { fastifyRequestHandler } = await import('@trpc/server/adapters/fastify');
    return fastifyRequestHandler({
      router,
      req: request,
      res: reply,
      path: request.params.path,
      createContext: ({ req, res }) => options.createContext({ req, res }),
      onError: ({ error, path, ctx }) => onError?.({ error, path, ctx }),
      maxBatchSize,
      // Fastify's limit, for the bodies tRPC reads itself (multipart: its parser above hands the stream on).
      maxBodySize: app.initialConfig.bodyLimit,
    });
  };

  app.all<{ Params: { path: string }; Querystring: Query }>('/:path', async (request, reply) => {
    const calls = parseRequest(request, procedures, maxBatchSize);
    if (!calls) return official(request, reply);
    const ctx = options.createContext({ req: request, res: reply });
    const outcomes = await runCalls(calls, ctx, requestSignal(reply), onError);
    const body = writeResponse(reply, calls, outcomes, ctx, config);
    // The body is JSON already: a serializer of its own keeps Fastify from appending
    // "; charset=utf-8" to tRPC's plain "application/json" (and a string body goes out in
    // one write with the headers; a Buffer would take the slower writev path).
    return reply.serializer(asIs).send(body);
  });
}
