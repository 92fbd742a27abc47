import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { CorsPolicy } from './cors.ts';
import { appendVary, keepVary } from './vary.ts';

/**
 * For the HTML pages (/docs and its locally served bundle, /dev/outbox): same-origin only,
 * inline scripts and styles allowed (Scalar needs them), no upgrade-insecure-requests so
 * /docs works over plain http on localhost.
 */
export const HTML_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "script-src 'self' 'unsafe-inline'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'self'",
  "form-action 'self'",
].join(';');

/**
 * The headers that protect an API's responses (OWASP REST Security Cheat Sheet), on every
 * response: HSTS, nosniff, X-Frame-Options, Referrer-Policy, Cross-Origin-Resource-Policy.
 * The values helmet would send, set as constants: helmet's middleware cost a quarter of a
 * constant route's CPU. Document-only headers are left out (each header costs every
 * response); the CSP goes on HTML only (`HTML_CSP`).
 */
export const SECURITY_HEADERS = {
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
} as const;
/**
 * The one security header a route may set itself, to loosen it (a public file is
 * `cross-origin`). The others are set on every response without first looking for a route's
 * own: each lookup would cost every response.
 */
const ROUTE_SETTABLE = 'cross-origin-resource-policy';
const FIXED_SECURITY_HEADERS = Object.entries(SECURITY_HEADERS).filter(([name]) => name !== ROUTE_SETTABLE);

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
 * The security headers, the CORS headers, the request id (`x-request-id`) and
 * `Server-Timing: app;dur=<ms>` on every response, the CSP on HTML ones, and
 * `Connection: close` during shutdown (the access log is AccessLogController's). One hook,
 * as the response leaves: each hook costs every request. `OPTIONS` on any path answers
 * CORS preflights.
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

    // Callback-style: no promise per request.
    app.addHook('onSend', (request, reply, payload, done) => {
      for (const [name, value] of FIXED_SECURITY_HEADERS) reply.header(name, value);
      if (!reply.hasHeader(ROUTE_SETTABLE)) reply.header(ROUTE_SETTABLE, SECURITY_HEADERS[ROUTE_SETTABLE]);
      // Each part that chose the answer by a request header is named in Vary: the language of
      // an error (markLanguage set Content-Language), then CORS (Origin).
      if (reply.hasHeader('content-language')) appendVary(reply, 'Accept-Language');
      cors.applyTo(request, reply);
      // tRPC's own adapter answers with a Fetch Response, whose headers Fastify applies after
      // this hook: its Vary must carry ours.
      if (payload instanceof Response) keepVary(reply, payload.headers);
      reply.header('x-request-id', request.id);
      reply.header('server-timing', `app;dur=${reply.elapsedTime.toFixed(1)}`);
      if (closing) reply.header('connection', 'close');
      // A streamed body (a download, a static file) is cut once its client stops reading
      // for idleTimeoutMs, so it cannot hold a file or a storage stream open for ever. Only
      // then: a socket timer on every request costs every request (Node re-arms it per read
      // and write), and a JSON answer is written at once.
      if (isStream(payload)) request.raw.socket?.setTimeout?.(idleTimeoutMs); // (injected requests have a socket without timers)
      const type = reply.getHeader('content-type');
      if (typeof type === 'string' && type.startsWith('text/html')) reply.header('content-security-policy', HTML_CSP);
      done(null, payload);
    });
  },
  { name: 'request-lifecycle' },
);
