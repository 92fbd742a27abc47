import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import {
  type AppError,
  errorAnswer,
  httpErrorBody,
  isSettledConflict,
  recognizeError,
  refusalStatus,
  setRetryAfter,
  trpcRefusal,
} from '../errors/index.ts';
import { answerLanguage } from '../i18n/locale.ts';
import { createOutageLog, type Logger } from '../infra/logger.ts';
import type { Services } from '../services.ts';
import { addCommonHeaders } from './common-headers.ts';
import { requestPath } from './request-lifecycle.ts';
import { RouteMethods } from './route-methods.ts';

/** Logs a recognised dependency outage (throttled): the 503 needs no stack trace. */
export function dependencyOutageLog(log: Pick<Logger, 'warn'>) {
  const outage = createOutageLog(log);
  return {
    warn(error: AppError) {
      const dependency = String(error.details?.dependency ?? 'dependency');
      const cause = error.cause instanceof Error ? error.cause.message : String(error.cause);
      outage.warn(dependency, `${dependency} unavailable: answering 503 (${cause})`);
    },
  };
}

/** Where tRPC answers (`/trpc`, and a second prefix the conformance tests serve tRPC's own adapter on). */
export type TrpcPrefixes = readonly string[];

/** Whether a request's target (path and query) is under one of the tRPC prefixes. */
export const onTrpcPath = (target: string, trpcPrefixes: TrpcPrefixes) =>
  trpcPrefixes.some((prefix) => target.startsWith(`${prefix}/`));

/** A refusal Fastify made itself (no procedure ran): the error body, in tRPC's shape on a tRPC path. */
function refusal(request: FastifyRequest, reply: FastifyReply, error: FastifyError, trpcPrefixes: TrpcPrefixes) {
  const status = refusalStatus(error.statusCode);
  const body = httpErrorBody(status, error.message, request.id, { locale: answerLanguage(request, reply) });
  return { status, body: onTrpcPath(request.url, trpcPrefixes) ? trpcRefusal(status, body) : body };
}

/**
 * Errors Fastify raises before routing (a malformed URL, say): the JSON error body too, and
 * the headers every answer carries (no hook runs for these).
 */
export function answerFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
  trpcPrefixes: TrpcPrefixes,
): void {
  const { status, body } = refusal(request, reply, error, trpcPrefixes);
  addCommonHeaders(reply, request.id);
  reply.code(status).send(body);
}

/**
 * Headers a route set for the answer it meant to give (a file's ETag, name, range), which an
 * error thrown after them must not carry: a cache would keep the error as that file (and
 * revalidate it with the ETag), a client would read the error as the range. The route's
 * caching goes too: an error is never stored.
 */
const SUCCESS_ONLY_HEADERS = [
  'etag',
  'last-modified',
  'content-disposition',
  'content-range',
  'accept-ranges',
  // ...so the answer is `no-store`, as every answer whose route chose no caching (common-headers.ts).
  'cache-control',
];

function forgetSuccessHeaders(reply: FastifyReply): void {
  for (const name of SUCCESS_ONLY_HEADERS) reply.removeHeader(name);
}

/**
 * JSON bodies for unknown routes, for errors Fastify raises itself (a body too large or
 * unreadable), and for what a plain route throws: answered as a procedure's error is.
 */
export const errorHandling = fp(
  async (
    app: FastifyInstance,
    {
      services,
      dependencyLog,
      trpcPrefixes,
    }: { services: Services; dependencyLog: ReturnType<typeof dependencyOutageLog>; trpcPrefixes: TrpcPrefixes },
  ) => {
    const expose = services.config.exposeErrorDetails;

    // Every route registered after this plugin (all of the app's) is known by its path.
    const routeMethods = new RouteMethods();
    app.addHook('onRoute', (route) => {
      if (!route.config?.answersMethodNotAllowed) routeMethods.add(route.method, route.url);
    });

    const answerNotFound = (request: FastifyRequest, reply: FastifyReply) => {
      const locale = answerLanguage(request, reply);
      const path = requestPath(request);
      // A known path with another method (a route that found nothing under its own is a 404).
      const allowed = routeMethods.allowed(path);
      if (allowed.length > 0 && !allowed.includes(request.method)) {
        reply
          .code(405)
          .header('allow', allowed.join(', '))
          .send(
            httpErrorBody(405, `${request.method} is not served on ${path}: use ${allowed.join(', ')}`, request.id, {
              appCode: 'METHOD_NOT_SUPPORTED',
              locale,
            }),
          );
        return;
      }
      reply.code(404).send(
        httpErrorBody(404, `No route for ${request.method} ${path}`, request.id, {
          appCode: 'ROUTE_NOT_FOUND',
          locale,
        }),
      );
    };
    // Answered as the request arrives, before its body is read: an unknown path's or a wrong
    // method's answer does not depend on the body (an empty one labelled JSON, a bad one, one
    // too large), as it does not on the dedicated 405 routes'. Fastify runs the 404 context's
    // own hooks given here (lib/four-oh-four.js; its types name only two of them); the handler
    // answers the routes that hand a request over (`reply.callNotFound()`, no hooks run).
    const notFoundHooks = {
      onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
        answerNotFound(request, reply);
        return reply;
      },
    };
    app.setNotFoundHandler(notFoundHooks as Parameters<typeof app.setNotFoundHandler>[0], answerNotFound);

    app.setErrorHandler((error: FastifyError, request, reply) => {
      forgetSuccessHeaders(reply);
      // Fastify's own refusals (a body too large or unreadable, a content type it has no
      // parser for): their status and message.
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
        const { status, body } = refusal(request, reply, error, trpcPrefixes);
        return reply.code(status).send(body);
      }
      const locale = answerLanguage(request, reply);
      // Anything else a route threw: answered as a procedure's error is (one rule for what is hidden).
      const recognized = recognizeError(error);
      if (!recognized) request.log.error({ err: error }, 'unhandled error');
      else if (recognized.appCode === 'DEPENDENCY_DOWN') dependencyLog.warn(recognized);
      else if (isSettledConflict(recognized))
        request.log.warn({ err: recognized.cause }, 'Postgres ended a deadlock (409)');
      setRetryAfter(recognized, (name, value) => reply.header(name, value));
      const answer = errorAnswer(error, request.id, expose, locale);
      return reply.code(answer.status).send(answer.body);
    });
  },
  { name: 'error-handling' },
);
