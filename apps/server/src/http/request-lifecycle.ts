import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyRequest {
    /** Path without the query string, taken before any handler rewrites the URL. */
    pathForLog: string;
  }
}

/**
 * The request id echoed in `x-request-id`, `Server-Timing: app;dur=<ms>` on every
 * response, and `Connection: close` during shutdown (the access log is AccessLogController's).
 */
export const requestLifecycle = fp(
  async (app: FastifyInstance) => {
    app.decorateRequest('pathForLog', '');

    // Once shutdown starts, responses to requests still in flight close their keep-alive
    // connection, so the server can finish closing without waiting for clients to hang up.
    let closing = false;
    app.addHook('preClose', async () => {
      closing = true;
    });

    app.addHook('onRequest', async (request, reply) => {
      const query = request.url.indexOf('?');
      request.pathForLog = query === -1 ? request.url : request.url.slice(0, query);
      reply.header('x-request-id', request.id);
    });

    app.addHook('onSend', async (_request, reply, payload) => {
      reply.header('server-timing', `app;dur=${reply.elapsedTime.toFixed(1)}`);
      if (closing) reply.header('connection', 'close');
      return payload;
    });
  },
  { name: 'request-lifecycle' },
);
