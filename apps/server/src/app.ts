import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import { fastifyTRPCPlugin } from '@trpc/server/adapters/fastify';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { AccessLogController } from './http/access-log.ts';
import { devOutboxRoutes } from './http/dev-outbox.ts';
import { errorHandling } from './http/errors.ts';
import { jwksRoute } from './http/jwks.ts';
import { openApiRoutes } from './http/openapi.ts';
import { requestLifecycle } from './http/request-lifecycle.ts';
import { requestIdFor } from './infra/logger.ts';
import { OutboxTransport } from './infra/mail/index.ts';
import type { Services } from './services.ts';
import { createContextFactory } from './trpc/context.ts';
import { restRoutes } from './trpc/rest/rest-routes.ts';
import { type AppRouter, appRouter } from './trpc/router.ts';

/** Batched GETs put every procedure name and input in the path: allow long ones. */
const MAX_PARAM_LENGTH = 5_000;

export interface BuildAppOptions {
  /** The router to serve; tests add procedures of their own to `appRouter`. */
  router?: AppRouter;
}

/** Builds the HTTP app around ready services. Never reads process.env, never listens. */
export async function buildApp(services: Services, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const router = options.router ?? appRouter;
  const { config } = services;
  const app = Fastify({
    loggerInstance: services.log as FastifyBaseLogger,
    logController: new AccessLogController(),
    requestIdHeader: false,
    genReqId: requestIdFor,
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  });

  await app.register(requestLifecycle);
  await app.register(errorHandling, { services });
  await app.register(helmet, {
    // A JSON API; the only page is /docs, whose bundle is served from here (no CDN).
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", "'unsafe-inline'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        upgradeInsecureRequests: null, // /docs must work over plain http on localhost
      },
    },
  });
  const allowAnyOrigin = config.corsOrigins.includes('*');
  await app.register(cors, {
    origin: allowAnyOrigin ? true : config.corsOrigins,
    exposedHeaders: [
      'x-request-id',
      'server-timing',
      'retry-after',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
    ],
    maxAge: 600,
  });

  const createContext = createContextFactory(services);
  const onError = ({ error, path }: { error: { code: string; message: string; cause?: unknown }; path?: string }) => {
    if (error.code === 'INTERNAL_SERVER_ERROR')
      services.log.error({ err: error.cause ?? error, path }, `procedure ${path ?? '?'} failed`);
  };

  await app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: { router, createContext, onError },
  });

  await app.register(restRoutes, { router, basePath: '/api', createContext, onError });

  await app.register(openApiRoutes, { config, router });
  await app.register(jwksRoute, { tokens: services.tokens });
  const { transport } = services.mailer;
  if (!config.isProduction && transport instanceof OutboxTransport) {
    await app.register(devOutboxRoutes, { outbox: transport });
  }
  return app;
}
