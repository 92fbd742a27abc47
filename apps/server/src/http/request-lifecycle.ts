import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { addCommonHeaders } from './common-headers.ts';
import type { CorsPolicy } from './cors.ts';
import { keepVary } from './vary.ts';

/** The request's path without its query string (for the access log and 404 answers). */
export function requestPath(request: FastifyRequest): string {
  const url = request.url;
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

const isStream = (payload: unknown): payload is { pipe: unknown } =>
  typeof payload === 'object' && payload !== null && typeof (payload as { pipe?: unknown }).pipe === 'function';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Shutdown's first step: keep serving (new connections too), but close each keep-alive
     * connection after its next response, so clients move off before the server closes.
     */
    startDraining(): void;
  }
}

/**
 * The CORS headers for an allowed page, the headers every answer carries (the security
 * headers, the request id, `Server-Timing: app;dur=<ms>`, Vary, an HTML page's CSP, no-store
 * caching unless the route chose: common-headers.ts), and `Connection: close` during shutdown (the access log is
 * AccessLogController's). One hook, as the response leaves: each hook costs every request.
 * `OPTIONS` on any path answers CORS preflights, whatever other routes the path has.
 */
export const requestLifecycle = fp(
  async (app: FastifyInstance, { cors, idleTimeoutMs }: { cors: CorsPolicy; idleTimeoutMs: number }) => {
    // Once shutdown starts, responses to requests still in flight close their keep-alive
    // connection, so the server can finish closing without waiting for clients to hang up.
    let closing = false;
    app.decorate('startDraining', () => {
      closing = true;
    });
    app.addHook('preClose', (done) => {
      closing = true;
      done();
    });

    app.options('*', (request, reply) => cors.answerPreflight(request, reply));
    // ...on every path: a route for every method (tRPC's `/trpc/:path`, on either transport)
    // would otherwise take the preflights of its paths, and a browser's cross-origin calls fail.
    app.addHook('onRoute', (route) => {
      if (Array.isArray(route.method) && route.method.length > 1) {
        route.method = route.method.filter((method) => method !== 'OPTIONS');
      }
    });

    // Every connection's address read once, as it opens, before its first request. The
    // rate limits read it on some requests and not others (the constant routes), and Node
    // caches it on the socket when first read: read at different points, it gave the
    // sockets different hidden classes, and the node:net and stream code every request
    // runs went megamorphic (up to five socket shapes: 1.2k–1.6k of the constant route's
    // ~59k instructions a request, bench/README.md). Read here, every HTTP socket has one.
    app.server.on('connection', (socket: Socket) => void socket.remoteAddress);

    // Callback-style: no promise per request.
    app.addHook('onSend', (request, reply, payload, done) => {
      cors.applyTo(request, reply);
      addCommonHeaders(reply, request.id);
      // tRPC's own adapter answers with a Fetch Response, whose headers Fastify applies after
      // this hook: its Vary must carry the reply's. (A JSON answer's payload is a string by now.)
      if (typeof payload === 'object' && payload instanceof Response) keepVary(reply, payload.headers);
      if (closing) reply.header('connection', 'close');
      // A streamed body (a download, a static file) is cut once its client stops reading
      // for idleTimeoutMs, so it cannot hold a file or a storage stream open for ever. Only
      // then: a socket timer on every request costs every request (Node re-arms it per read
      // and write), and a JSON answer is written at once.
      if (isStream(payload)) request.raw.socket?.setTimeout?.(idleTimeoutMs); // (injected requests have a socket without timers)
      done(null, payload);
    });
  },
  { name: 'request-lifecycle' },
);
