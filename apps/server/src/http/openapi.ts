import scalar from '@scalar/fastify-api-reference';
import type { FastifyInstance } from 'fastify';
import { generateOpenApiDocument } from 'trpc-to-openapi';
import type { Config } from '../config.ts';
import { type AppRouter, appRouter } from '../trpc/router.ts';

export function createOpenApiDocument(config: Config, router: AppRouter = appRouter) {
  return generateOpenApiDocument(router, {
    title: 'App API',
    description:
      'Every procedure of the tRPC API, over REST. Errors carry `{ code, appCode, message, requestId }`, ' +
      'plus `issues` (field path and message) when the input is invalid.',
    version: config.version,
    baseUrl: '/api',
    docsUrl: '/docs/',
    securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
  });
}

/** `/openapi.json` (built once) and the interactive reference at `/docs`. */
export async function openApiRoutes(app: FastifyInstance, options: { config: Config; router: AppRouter }) {
  const document = createOpenApiDocument(options.config, options.router);
  app.get('/openapi.json', { logLevel: 'warn' }, async () => document);
  await app.register(scalar, {
    routePrefix: '/docs',
    configuration: { url: '/openapi.json', pageTitle: 'App API reference', withDefaultFonts: false },
  });
}
