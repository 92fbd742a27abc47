import scalar from '@scalar/fastify-api-reference';
import type { FastifyInstance } from 'fastify';
import { generateOpenApiDocument } from 'trpc-to-openapi';
import type { Config } from '../config.ts';
import { type AppRouter, appRouter } from '../trpc/router.ts';

interface Parameter {
  in: string;
  name: string;
  required?: boolean;
  description?: string;
  schema?: Record<string, unknown>;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: unknown;
}

/**
 * trpc-to-openapi documents a DELETE's input as query parameters; the REST routes read it
 * from the JSON body instead (a password in a URL ends up in proxy logs), so say so here.
 */
function deleteInputsAsBody(document: ReturnType<typeof generateOpenApiDocument>) {
  for (const item of Object.values(document.paths ?? {})) {
    const operation = (item as { delete?: Operation }).delete;
    const query = operation?.parameters?.filter((parameter) => parameter.in === 'query') ?? [];
    if (!operation || query.length === 0) continue;
    operation.parameters = operation.parameters?.filter((parameter) => parameter.in !== 'query');
    const required = query.filter((parameter) => parameter.required).map((parameter) => parameter.name);
    operation.requestBody = {
      required: required.length > 0,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: Object.fromEntries(
              query.map((parameter) => [
                parameter.name,
                { ...parameter.schema, ...(parameter.description && { description: parameter.description }) },
              ]),
            ),
            ...(required.length > 0 && { required }),
          },
        },
      },
    };
  }
  return document;
}

export function createOpenApiDocument(config: Config, router: AppRouter = appRouter) {
  const document = generateOpenApiDocument(router, {
    title: 'App API',
    description:
      'Every procedure of the tRPC API, over REST. Errors carry `{ code, appCode, message, requestId }`, ' +
      'plus `issues` (field path and message) when the input is invalid.',
    version: config.version,
    baseUrl: '/api',
    docsUrl: '/docs/',
    securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
  });
  return deleteInputsAsBody(document);
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
