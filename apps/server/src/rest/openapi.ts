import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { generateOpenApiDocument } from 'trpc-to-openapi';
import packageJson from '../../package.json' with { type: 'json' };
import type { Config } from '../config.ts';
import type { DocumentedRoute } from '../documented-route.ts';
import {
  APP_ERROR_CODES,
  APP_ERROR_MEANINGS,
  type AppErrorCode,
  httpStatusOf,
  RETRY_AFTER_CODES,
} from '../errors/index.ts';
import type { AppMeta } from '../trpc/init.ts';
import { type AppRouter, appRouter } from '../trpc/router.ts';
import { restOperationErrors } from './rest-errors.ts';
import { restRouteTable } from './rest-routes.ts';

type OpenApiDocument = ReturnType<typeof generateOpenApiDocument>;

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
  responses?: Record<string, unknown>;
  security?: Record<string, string[]>[];
}

const BEARER = 'bearerAuth';

function documentPlainRoutes(document: OpenApiDocument, routes: readonly DocumentedRoute[]) {
  for (const route of routes) {
    const item = (document.paths?.[route.path] ?? {}) as Record<string, unknown>;
    const { success, body } = route;
    const successResponse =
      'redirect' in success
        ? {
            description: success.description,
            headers: { Location: { description: 'Where the browser goes next', schema: { type: 'string' } } },
          }
        : 'schema' in success
          ? {
              description: success.description,
              content: { 'application/json': { schema: { $ref: `#/components/schemas/${success.schema}` } } },
            }
          : {
              description: success.description,
              content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
            };
    item[route.method.toLowerCase()] = {
      operationId: `${route.method.toLowerCase()}${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: route.summary,
      description: route.description,
      tags: route.tags,
      parameters: route.parameters,
      ...(body && {
        requestBody: {
          required: true,
          content: {
            [body.type === 'form' ? 'application/x-www-form-urlencoded' : 'multipart/form-data']: {
              schema: {
                type: 'object',
                properties: Object.fromEntries(
                  Object.entries(body.fields).map(([name, field]) => [
                    name,
                    { type: 'string', description: field.description, ...(field.binary && { format: 'binary' }) },
                  ]),
                ),
              },
            },
          },
        },
      }),
      responses: {
        [String(success.status)]: successResponse,
        ...Object.fromEntries(
          (route.otherAnswers ?? []).map((answer) => [
            String(answer.status),
            {
              description: answer.description,
              ...(answer.status === 206 && {
                content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
              }),
              ...(answer.headers && {
                headers: Object.fromEntries(
                  Object.entries(answer.headers).map(([name, description]) => [
                    name,
                    { description, schema: { type: 'string' } },
                  ]),
                ),
              }),
            },
          ]),
        ),
        ...errorResponses(route.errors),
      },
      security:
        route.bearer === 'required' ? [{ [BEARER]: [] }] : route.bearer === 'optional' ? [{ [BEARER]: [] }, {}] : [],
      'x-plain-route': true,
    };
    document.paths = { ...document.paths, [route.path]: item };
  }
  return document;
}

/**
 * trpc-to-openapi documents a DELETE's input as query parameters; the REST routes read it
 * from the JSON body instead (a password in a URL ends up in proxy logs), so say so here.
 */
function deleteInputsAsBody(document: OpenApiDocument) {
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

/**
 * A body every field of which is optional may be left out (the REST routes read no body as
 * `{}`); trpc-to-openapi marks every body required, which makes generated clients send `{}`.
 */
function optionalBodies(document: OpenApiDocument) {
  for (const item of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(item as Record<string, Operation>)) {
      const body = operation?.requestBody as
        | { required?: boolean; content?: Record<string, { schema?: { required?: string[] } }> }
        | undefined;
      const schema = body?.content?.['application/json']?.schema;
      if (body && schema && !schema.required?.length) body.required = false;
    }
  }
  return document;
}

/** The error responses of one operation: per status, the body with `appCode` one of the codes answered with it. */
function errorResponses(codes: Iterable<AppErrorCode>): Record<string, unknown> {
  const byStatus = new Map<number, AppErrorCode[]>();
  for (const code of codes) {
    const status = httpStatusOf(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, unsorted] of [...byStatus].sort(([a], [b]) => a - b)) {
    const appCodes = unsorted.sort();
    responses[String(status)] = {
      description: appCodes.map((code) => `- \`${code}\`: ${APP_ERROR_MEANINGS[code]}`).join('\n'),
      ...(appCodes.some((code) => RETRY_AFTER_CODES.has(code)) && {
        headers: {
          'Retry-After': {
            description: appCodes.every((code) => RETRY_AFTER_CODES.has(code))
              ? 'Seconds to wait before retrying'
              : `Seconds to wait before retrying (with ${appCodes.filter((code) => RETRY_AFTER_CODES.has(code)).join(', ')})`,
            schema: { type: 'integer', minimum: 1 },
          },
        },
      }),
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: {
              code: { type: 'string', enum: [...new Set(appCodes.map((code) => APP_ERROR_CODES[code]))] },
              appCode: { type: 'string', enum: appCodes, description: 'Stable: program against it' },
              message: { type: 'string', description: 'For people: do not parse it' },
              requestId: { type: 'string', description: 'The `x-request-id` of the request' },
              ...(appCodes.includes('VALIDATION_FAILED') && {
                issues: { type: 'array', items: { $ref: '#/components/schemas/ValidationIssue' } },
              }),
              details: { type: 'object', additionalProperties: true, description: 'Client-safe facts' },
            },
            required: ['code', 'appCode', 'message', 'requestId'],
          },
        },
      },
    };
  }
  return responses;
}

/**
 * Each operation's error responses and security, from the procedure itself (see
 * rest-errors.ts): what trpc-to-openapi writes there is generic (and its error responses
 * are shared objects, so one operation's description leaked into every other).
 */
function documentErrors(document: OpenApiDocument, router: AppRouter) {
  for (const { procedure } of restRouteTable(router, '')) {
    const openapi = (procedure._def.meta as AppMeta).openapi;
    if (!openapi) continue;
    const item = document.paths?.[openapi.path] as Record<string, Operation> | undefined;
    const operation = item?.[openapi.method.toLowerCase()];
    if (!operation) continue;
    const codes = restOperationErrors(procedure);
    const success = Object.entries(operation.responses ?? {}).filter(([status]) => status.startsWith('2'));
    operation.responses = { ...Object.fromEntries(success), ...errorResponses(codes) };
    operation.security = codes.has('UNAUTHORIZED') ? [{ [BEARER]: [] }] : [];
  }
  // trpc-to-openapi's shared error schemas are no longer referenced.
  const schemas = Object.entries(document.components?.schemas ?? {}).filter(([name]) => !name.startsWith('error.'));
  document.components = {
    ...document.components,
    schemas: {
      ...Object.fromEntries(schemas),
      ValidationIssue: {
        type: 'object',
        properties: {
          path: { type: 'array', items: { type: ['string', 'integer'] }, description: 'Where in the input' },
          message: { type: 'string' },
          code: { type: 'string', description: 'The kind of problem (`invalid_type`, `too_small`…)' },
        },
        required: ['path', 'message', 'code'],
      },
    },
  };
  return document;
}

function introduction(config: Config): string {
  const minutes = (seconds: number) => `${Math.round(seconds / 60)} minutes`;
  const { rateLimits } = config;
  return `Every procedure of the API over REST, under \`/api\` (the TypeScript SDK calls the same procedures over tRPC at \`/trpc\`).

## Signing in

1. Call \`POST /api/auth/login\` with \`{ "email": "…", "password": "…" }\` (or \`POST /api/auth/register\` to create an account${config.isProduction ? '' : '; in development `pnpm db:seed` creates `admin@example.com` / `Adminpassword1`'}).
2. Copy \`accessToken\` from the answer.
3. Paste it as the bearer token under **Authentication** (\`${BEARER}\`, already selected): the requests sent from this page then carry \`Authorization: Bearer <accessToken>\`.

An access token lasts ${minutes(config.jwt.accessTokenTtlSeconds)}; \`POST /api/auth/refresh\` with the \`refreshToken\` trades it for a new pair.

## Errors

Every error is one JSON shape, with the HTTP status:

\`\`\`json
{
  "code": "BAD_REQUEST",
  "appCode": "VALIDATION_FAILED",
  "message": "Input validation failed",
  "requestId": "…",
  "issues": [{ "path": ["email"], "message": "Invalid email address", "code": "invalid_format" }]
}
\`\`\`

Program against \`appCode\`: it is stable, while \`message\` is for people. Each operation lists the app codes it can answer, per status. \`requestId\` is also the \`x-request-id\` response header: quote it when reporting a problem.

## Rate limits

Every call counts, per client address: ${rateLimits.defaultPerMinute} a minute; calls that check a secret or send an email, ${rateLimits.authPerMinute} a minute. Answers carry \`RateLimit-Limit\`, \`RateLimit-Remaining\` and \`RateLimit-Reset\`; a \`429 RATE_LIMITED\` carries \`Retry-After\` (seconds), and so do a \`503 DEPENDENCY_DOWN\` and a \`503 SERVICE_UNAVAILABLE\` (a server too busy to check a password).`;
}

/** The OpenAPI document (trpc-to-openapi is loaded here, not at start-up: it is only needed for this). */
export async function createOpenApiDocument(
  config: Config,
  router: AppRouter = appRouter,
  plainRoutes: readonly DocumentedRoute[] = [],
) {
  const { generateOpenApiDocument } = await import('trpc-to-openapi');
  const document = generateOpenApiDocument(router, {
    title: 'App API',
    description: introduction(config),
    version: config.version,
    baseUrl: '/api',
    securitySchemes: {
      [BEARER]: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'The `accessToken` of `POST /api/auth/login`, `register`, `refresh` or `otp/verify`',
      },
    },
  });
  // The API's terms are the project's: its SPDX license, from package.json.
  document.info.license = { name: packageJson.license, identifier: packageJson.license };
  return documentPlainRoutes(documentErrors(optionalBodies(deleteInputsAsBody(document)), router), plainRoutes);
}

/**
 * `/openapi.json` (built once, on its first request: start-up does not wait for it), the
 * interactive reference at `/docs`, and `/` leading to it (unless the web app is served there).
 */
export async function openApiRoutes(
  app: FastifyInstance,
  options: { config: Config; router: AppRouter; plainRoutes?: readonly DocumentedRoute[] },
) {
  let document: ReturnType<typeof createOpenApiDocument> | undefined;
  app.get('/openapi.json', { logLevel: 'warn' }, async () => {
    document ??= createOpenApiDocument(options.config, options.router, options.plainRoutes);
    // A build that failed is tried again by the next request.
    return document.catch((error: unknown) => {
      document = undefined;
      throw error;
    });
  });
  if (!options.config.webDir) app.get('/', (_request, reply) => reply.redirect('/docs/', 302));
  let reference: Promise<FastifyInstance> | undefined;
  const docs = async (request: FastifyRequest, reply: FastifyReply) => {
    reference ??= apiReference().catch((error: unknown) => {
      reference = undefined;
      throw error;
    });
    const answer = await (await reference).inject({
      method: request.method as 'GET' | 'HEAD',
      url: request.url,
      headers: request.headers,
    });
    // A path the reference does not have is answered as every unknown route is.
    if (answer.statusCode === 404) return reply.callNotFound();
    reply.code(answer.statusCode);
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) reply.header(name, value);
    }
    return reply.send(answer.rawPayload);
  };
  app.get('/docs', docs);
  app.get('/docs/*', docs);
  app.addHook('onClose', async () => {
    await (await reference?.catch(() => undefined))?.close();
  });
}

/** Headers of the reference's own answer that describe its connection, not the content. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date']);

/**
 * Scalar's interactive reference, in a Fastify instance of its own that /docs forwards to:
 * its 4 MB bundle is loaded with the first request to /docs, not at start-up (where it was
 * a tenth of the time to ready).
 */
async function apiReference(): Promise<FastifyInstance> {
  const { default: scalar } = await import('@scalar/fastify-api-reference');
  const reference = Fastify({ logger: false });
  await reference.register(scalar, {
    routePrefix: '/docs',
    configuration: {
      url: '/openapi.json',
      pageTitle: 'App API reference',
      withDefaultFonts: false,
      authentication: { preferredSecurityScheme: BEARER },
      // Scalar's hosted services (its AI agent, MCP generation, deploy and share through
      // scalar.com) cannot work for a private API served from here: off, and no telemetry.
      agent: { disabled: true },
      mcp: { disabled: true },
      showDeveloperTools: 'never',
      telemetry: false,
    },
  });
  await reference.ready();
  return reference;
}
