import type { ServerResponse } from 'node:http';
import type { TRPCError } from '@trpc/server';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from './config.ts';
import { isSettledConflict, recognizeError, setRetryAfter } from './errors/index.ts';
import { AccessLogController } from './http/access-log.ts';
import { answerClientError } from './http/client-errors.ts';
import { CommonHeadersResponse } from './http/common-headers.ts';
import { CorsPolicy } from './http/cors.ts';
import { devOutboxRoutes } from './http/dev-outbox.ts';
import { answerFrameworkError, dependencyOutageLog, errorHandling } from './http/error-handling.ts';
import { FILE_ROUTES, filesRoutes } from './http/files-routes.ts';
import { jwksRoute } from './http/jwks.ts';
import { OAUTH_REDIRECT_ROUTES, oauthRoutes } from './http/oauth-routes.ts';
import { requestLifecycle } from './http/request-lifecycle.ts';
import { answerMethodsTakenByParameters } from './http/route-methods.ts';
import { lazySchemaCompilers } from './http/schema-compilers.ts';
import { markLanguage } from './i18n/locale.ts';
import { LazyLogger, requestIdFor } from './infra/logger.ts';
import { OutboxTransport } from './infra/mail/index.ts';
import { openApiRoutes } from './rest/openapi.ts';
import { restRoutes, restRouteTable } from './rest/rest-routes.ts';
import type { Services } from './services.ts';
import { type Context, createContextFactory } from './trpc/context.ts';
import { fastTrpc } from './trpc/fast/fast-trpc.ts';
import { type AppRouter, appRouter } from './trpc/router.ts';

/** Batched GETs put every procedure name and input in the path: allow long ones. */
const MAX_PARAM_LENGTH = 5_000;

export interface BuildAppOptions {
  /** The router to serve; tests add procedures of their own to `appRouter`. */
  router?: AppRouter;
  /** What serves /trpc: the Fastify-native handler (default) or tRPC's own Fastify adapter. */
  trpcTransport?: 'fast' | 'official';
  /** Also mount tRPC's own adapter at this prefix (conformance tests and benchmarks compare the two). */
  officialTrpcPrefix?: string;
}

/** A hop count trusts that many proxies nearest to the server (as proxy-addr counts hops). */
function trustedProxies(trust: Config['trustProxy']) {
  if (typeof trust !== 'number') return trust;
  return (_address: string, hop: number) => hop < trust;
}

/** Builds the HTTP app around ready services. Never reads process.env, never listens. */
export async function buildApp(services: Services, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const router = options.router ?? appRouter;
  const { config } = services;
  const cors = new CorsPolicy({
    origins: config.corsOrigins,
    // tRPC's GET and POST, and every method of the REST route table (PATCH, DELETE…).
    methods: ['GET', 'HEAD', 'POST', ...restRouteTable(router, '/api').map((route) => route.method)],
    exposedHeaders: [
      'x-request-id',
      'server-timing',
      'retry-after',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
      // A download's name, version and range (GET /api/files/:id/content).
      'content-disposition',
      'etag',
      'content-range',
      'accept-ranges',
    ],
    maxAgeSeconds: 600,
  });
  const trpcPrefixes = ['/trpc', ...(options.officialTrpcPrefix ? [options.officialTrpcPrefix] : [])];
  const app = Fastify({
    // Each request's logger is made when it first writes a line (most never do).
    loggerInstance: new LazyLogger(services.log) as unknown as FastifyBaseLogger,
    logController: new AccessLogController(),
    requestIdHeader: false,
    genReqId: requestIdFor,
    // Its responses write the headers every answer carries as one block (CommonHeadersResponse).
    http: {
      ServerResponse: CommonHeadersResponse as typeof ServerResponse,
      // The whole request (headers and body) within REQUEST_TIMEOUT_MS: Node's headersTimeout
      // (60 s) is not Fastify's to set, and one longer than requestTimeout takes its place, so
      // under 60 s a body that stopped coming was cut only at 60 s. (Node checks the two against
      // each other as the server is made, before Fastify sets requestTimeout: both given here.)
      // Such requests are looked for every quarter of the limit (every 30 s by default: a 60 s
      // limit acted up to 90 s in).
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(config.requestTimeoutMs / 4)),
    },
    bodyLimit: config.bodyLimitBytes,
    // A client trickling a request (or its body) cannot hold a connection for ever; one that
    // stops reading a streamed answer is cut by requestLifecycle after as long.
    requestTimeout: config.requestTimeoutMs,
    trustProxy: trustedProxies(config.trustProxy),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // No hook runs for what Fastify refuses before routing: CORS is applied here, so the page
    // that sent it can read the answer (and its request id).
    frameworkErrors: (error, request, reply) => {
      cors.applyTo(request, reply);
      answerFrameworkError(error, request, reply, trpcPrefixes);
    },
    // ...and what Node's HTTP parser refuses before a request exists.
    clientErrorHandler: (error, socket) => answerClientError(error, socket, trpcPrefixes),
    schemaController: { compilersFactory: lazySchemaCompilers },
  });

  await app.register(requestLifecycle, { cors, idleTimeoutMs: config.requestTimeoutMs });
  const dependencyLog = dependencyOutageLog(services.log);
  await app.register(errorHandling, { services, dependencyLog, trpcPrefixes });

  const createContext = createContextFactory(services);
  // Every failed procedure call, on every transport (the fast path, tRPC's adapter, REST), before its answer.
  const onError = ({ error, path, ctx }: { error: TRPCError; path?: string; ctx?: Context }) => {
    const recognized = recognizeError(error);
    if (ctx) {
      setRetryAfter(recognized, (name, value) => ctx.setHeader(name, value));
      // The error's words are in the caller's language: said, so caches keep one answer per language.
      markLanguage({ header: ctx.setHeader }, ctx.locale);
    }
    if (error.code !== 'INTERNAL_SERVER_ERROR') return;
    if (!recognized) services.log.error({ err: error.cause ?? error, path }, `procedure ${path ?? '?'} failed`);
    else if (recognized.appCode === 'DEPENDENCY_DOWN') dependencyLog.warn(recognized);
    else if (isSettledConflict(recognized)) {
      services.log.warn({ err: recognized.cause, path }, `procedure ${path ?? '?'}: Postgres ended a deadlock (409)`);
    }
  };

  const maxBatchSize = config.trpcMaxBatchSize;
  const official = async (prefix: string) => {
    const { fastifyTRPCPlugin } = await import('@trpc/server/adapters/fastify');
    await app.register(fastifyTRPCPlugin, {
      prefix,
      // maxBodySize: Fastify's limit, for the bodies tRPC reads itself (multipart).
      trpcOptions: { router, createContext, onError, maxBatchSize, maxBodySize: config.bodyLimitBytes },
    });
  };
  if (options.trpcTransport === 'official') await official('/trpc');
  else await app.register(fastTrpc, { prefix: '/trpc', router, createContext, onError, maxBatchSize });
  if (options.officialTrpcPrefix) await official(options.officialTrpcPrefix);

  await app.register(restRoutes, { router, basePath: '/api', createContext, onError });
  answerMethodsTakenByParameters(app, restRouteTable(router, '/api'));
  await app.register(oauthRoutes, { services });
  await app.register(filesRoutes, { services });

  await app.register(openApiRoutes, { config, router, plainRoutes: [...OAUTH_REDIRECT_ROUTES, ...FILE_ROUTES] });
  await app.register(jwksRoute, { tokens: services.tokens });
  const { transport } = services.mailer;
  if (!config.isProduction && transport instanceof OutboxTransport) {
    await app.register(devOutboxRoutes, { outbox: transport });
  }
  // @fastify/static and its dependencies are loaded only when there is an app to serve.
  if (config.webDir) await app.register((await import('./http/web-app.ts')).webApp, { dir: config.webDir });
  return app;
}
