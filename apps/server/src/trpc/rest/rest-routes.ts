/**
 * The REST side of every procedure with `openapi` meta, as plain Fastify routes: a route
 * table built once from the meta, served by Fastify's router, each call going through the
 * procedure's own middleware, validation and error formatter. trpc-to-openapi still
 * generates the OpenAPI document (http/openapi.ts) from the same meta.
 *
 * Relies on these tRPC v11 exports: `router._def.procedures` (the flat path -> procedure
 * map) with each procedure's `_def.meta`, `_def.type` and `_def.inputs`; `callTRPCProcedure`,
 * `getTRPCErrorFromUnknown` and `getTRPCErrorShape` from '@trpc/server'.
 */
import {
  type AnyTRPCProcedure,
  type AnyTRPCRouter,
  callTRPCProcedure,
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  type TRPCError,
} from '@trpc/server';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { errorBody, restErrorBody } from '../../http/error-body.ts';
import type { Context } from '../context.ts';
import type { AppErrorShape } from '../error-formatter.ts';
import { isPlainObject, queryInput, takesNoInput } from './rest-input.ts';

export interface RestRoutesOptions {
  router: AnyTRPCRouter;
  /** Mount point of the REST paths, e.g. "/api" (not `prefix`: Fastify reserves that name). */
  basePath: string;
  createContext(opts: { req: FastifyRequest; res: FastifyReply }): Context;
  onError?(opts: { error: TRPCError; path: string }): void;
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

/**
 * Methods whose input is the JSON body (plus path parameters). DELETE is one: what it
 * needs beyond the path (a password confirming an account deletion) must not travel in
 * a URL, which proxies log. GET alone reads the query string.
 */
export const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function readInput(request: FastifyRequest, procedure: AnyTRPCProcedure): unknown {
  const inputs = procedure._def.inputs as unknown[];
  if (takesNoInput(inputs)) return undefined;
  const params = request.params as Record<string, string>;
  if (BODY_METHODS.has(request.method)) {
    const body = request.body ?? {}; // a body-less POST (curl -X POST) reads as {}
    return isPlainObject(body) ? { ...body, ...params } : body;
  }
  return { ...queryInput(request.query as Record<string, unknown>, inputs[0]), ...params };
}

export async function restRoutes(app: FastifyInstance, options: RestRoutesOptions): Promise<void> {
  const { router } = options;
  for (const route of restRouteTable(router, options.basePath)) {
    const type = route.procedure._def.type as 'query' | 'mutation';
    app.route({
      method: route.method,
      url: route.url,
      handler: async (request, reply) => {
        const contentType = request.headers['content-type'];
        if (BODY_METHODS.has(request.method) && contentType && !/^application\/json\b/i.test(contentType)) {
          return reply
            .code(415)
            .send(errorBody(415, `Send JSON (application/json), not ${contentType.split(';')[0]}`, request.id));
        }
        const ctx = options.createContext({ req: request, res: reply });
        const input = readInput(request, route.procedure);
        try {
          return await callTRPCProcedure({
            router,
            path: route.path,
            type,
            ctx,
            getRawInput: async () => input,
            signal: undefined,
            batchIndex: 0,
          });
        } catch (cause) {
          const error = getTRPCErrorFromUnknown(cause);
          options.onError?.({ error, path: route.path });
          const shape = getTRPCErrorShape({ config: router._def._config, error, type, path: route.path, input, ctx });
          // The formatter may have recognised the error as another status (a dependency down: 503).
          const { data } = shape as AppErrorShape;
          return reply.code(data.httpStatus).send(restErrorBody(shape as AppErrorShape, request.id));
        }
      },
    });
  }
}
