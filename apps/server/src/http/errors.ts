import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type AppError, recognizeError } from '../errors.ts';
import { createOutageLog, type Logger } from '../infra/logger.ts';
import type { Services } from '../services.ts';
import { errorBody } from './error-body.ts';

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

/** JSON bodies for unknown routes and for errors raised by Fastify itself (body parsing, limits) or its routes. */
export const errorHandling = fp(
  async (
    app: FastifyInstance,
    { services, dependencyLog }: { services: Services; dependencyLog: ReturnType<typeof dependencyOutageLog> },
  ) => {
    app.setNotFoundHandler((request, reply) => {
      reply
        .code(404)
        .send(errorBody(404, `No route for ${request.method} ${request.pathForLog}`, request.id, 'ROUTE_NOT_FOUND'));
    });

    app.setErrorHandler((error: FastifyError, request, reply) => {
      const recognized = error.statusCode ? undefined : recognizeError(error);
      if (recognized) {
        if (recognized.appCode === 'DEPENDENCY_DOWN') dependencyLog.warn(recognized);
        const status = recognized.httpStatus;
        const retryAfter = recognized.details?.retryAfterSeconds;
        if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
        const body = errorBody(status, recognized.message, request.id, recognized.appCode);
        return reply.code(status).send(recognized.details ? { ...body, details: recognized.details } : body);
      }
      const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
      if (status >= 500) request.log.error({ err: error }, 'unhandled error');
      const expose = status < 500 || services.config.exposeErrorDetails;
      const body = errorBody(status, expose ? error.message : 'Internal server error', request.id);
      reply.code(status).send(expose && status >= 500 ? { ...body, stack: error.stack } : body);
    });
  },
  { name: 'error-handling' },
);
