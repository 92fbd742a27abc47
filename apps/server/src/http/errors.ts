import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Services } from '../services.ts';
import { errorBody } from './error-body.ts';

/** JSON bodies for unknown routes and for errors raised by Fastify itself (body parsing, limits). */
export const errorHandling = fp(
  async (app: FastifyInstance, { services }: { services: Services }) => {
    app.setNotFoundHandler((request, reply) => {
      reply
        .code(404)
        .send(errorBody(404, `No route for ${request.method} ${request.pathForLog}`, request.id, 'ROUTE_NOT_FOUND'));
    });

    app.setErrorHandler((error: FastifyError, request, reply) => {
      const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
      if (status >= 500) request.log.error({ err: error }, 'unhandled error');
      const expose = status < 500 || services.config.exposeErrorDetails;
      const body = errorBody(status, expose ? error.message : 'Internal server error', request.id);
      reply.code(status).send(expose && status >= 500 ? { ...body, stack: error.stack } : body);
    });
  },
  { name: 'error-handling' },
);
