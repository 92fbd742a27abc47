/**
 * The REST side of every procedure with `openapi` meta, as plain Fastify routes: a route
 * table built once from the meta, served by Fastify's router, each call going through the
 * procedure's own middleware and validation, and its errors answered as on every transport
 * (src/errors). trpc-to-openapi generates the OpenAPI document (openapi.ts) from the same meta.
 *
 * Relies on these tRPC v11 internals: `router._def.procedures` (the flat path -> procedure
 * map) with each procedure's `_def.meta`, `_def.type` and `_def.inputs`; procedures are
 * called through `callProcedure` (../trpc/call-procedure.ts).
 */
import { type AnyTRPCProcedure, type AnyTRPCRouter, getTRPCErrorFromUnknown, type TRPCError } from '@trpc/server';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { errorAnswer, httpErrorBody } from '../errors/index.ts';
import { answerLanguage, markLanguage } from '../i18n/locale.ts';
import { callProcedure } from '../trpc/call-procedure.ts';
import type { Context } from '../trpc/context.ts';
import { requestSignal } from '../trpc/request-signal.ts';
import { BODY_METHODS, restInput } from './rest-input.ts';

export interface RestRoutesOptions {
  router: AnyTRPCRouter;
  /** Mount point of the REST paths, e.g. "/api" (not `prefix`: Fastify reserves that name). */
  basePath: string;
  createContext(opts: { req: FastifyRequest; res: FastifyReply }): Context;
  /** Called once per failed call, before the answer is written. */
  onError?(opts: { error: TRPCError; path: string; ctx: Context }): void;
}

interface RestRoute {
  method: HTTPMethods;
  url: string;
  path: string;
  procedure: AnyTRPCProcedure;
}

/** `/users/{id}/roles/{roleId}` -> `/users/:id/roles/:roleId` */
const fastifyPath = (openApiPath: string) => openApiPath.replace(/\{(\w+)\}/g, ':$1');

export function restRouteTable(router: AnyTRPCRouter, basePath: string): RestRoute[] {
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure>;
  return Object.entries(procedures).flatMap(([path, procedure]) => {
    const openapi = (procedure._def.meta as OpenApiMeta | undefined)?.openapi;
    if (!openapi || openapi.enabled === false) return [];
    return [{ method: openapi.method, url: `${basePath}${fastifyPath(openapi.path)}`, path, procedure }];
  });
}

/** Why the body cannot be the procedure's input (only JSON can), or undefined when it can. */
function unreadableBody(request: FastifyRequest): string | undefined {
  const contentType = request.headers['content-type'];
  if (!BODY_METHODS.has(request.method) || !contentType || /^application\/json\b/i.test(contentType)) return undefined;
  return `Send JSON (application/json), not ${contentType.split(';')[0]}`;
}

export async function restRoutes(app: FastifyInstance, options: RestRoutesOptions): Promise<void> {
  // An empty body labelled JSON (a client that sets the header on every call) is no body, as
  // one sent without the label is; anything else goes to Fastify's own parser (which refuses
  // prototype poisoning). Registered in this plugin only.
  const parseJson = app.getDefaultJsonParser(
    app.initialConfig.onProtoPoisoning ?? 'error',
    app.initialConfig.onConstructorPoisoning ?? 'error',
  );
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else parseJson(request, body as string, done);
  });
  for (const { method, url, path, procedure } of restRouteTable(options.router, options.basePath)) {
    const type = procedure._def.type as 'query' | 'mutation';
    app.route({
      method,
      url,
      handler: async (request, reply) => {
        const refusal = unreadableBody(request);
        if (refusal) {
          const locale = answerLanguage(request, reply);
          return reply.code(415).send(httpErrorBody(415, refusal, request.id, { locale }));
        }
        const ctx = options.createContext({ req: request, res: reply });
        const input = restInput(request, procedure);
        try {
          return await callProcedure(procedure, {
            path,
            getRawInput: async () => input,
            ctx,
            type,
            signal: requestSignal(reply),
            batchIndex: 0,
          });
        } catch (cause) {
          const error = getTRPCErrorFromUnknown(cause);
          options.onError?.({ error, path, ctx });
          const { status, body } = errorAnswer(error, request.id, ctx.exposeErrorDetails, ctx.locale);
          markLanguage(reply, ctx.locale);
          return reply.code(status).send(body);
        }
      },
    });
  }
}
