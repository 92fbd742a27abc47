import type { FastifyReply, FastifyRequest } from 'fastify';
import { httpErrorBody } from '../errors/index.ts';
import { answerLanguage } from '../i18n/locale.ts';
import { appendVary } from './vary.ts';

export interface CorsOptions {
  /** The origins whose pages may call the API (`CORS_ORIGINS`); `*` allows any page. */
  origins: readonly string[];
  /** The methods a preflight allows. */
  methods: readonly string[];
  /** The response headers a page's script may read. */
  exposedHeaders: readonly string[];
  /** How long a browser may reuse a preflight's answer. */
  maxAgeSeconds: number;
}

/**
 * Cross-origin calls from browser pages (the Fetch standard's CORS protocol), for bearer
 * tokens (no cookies, so no credentials mode): every response says it depends on `Origin`
 * (its `Vary`, written with the headers every answer carries: common-headers.ts), and a
 * response to an allowed page's request names that origin and the headers its script may
 * read; a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered 204
 * with the methods and the request headers asked for. A page from any other origin gets no
 * CORS header, so its browser keeps the response from it.
 *
 * The app's own, not a plugin's hook: `applyTo` runs in the one response hook
 * (`requestLifecycle`), with every header value built once here.
 */
export class CorsPolicy {
  readonly #anyOrigin: boolean;
  readonly #origins: ReadonlySet<string>;
  readonly #methods: string;
  readonly #exposedHeaders: string;
  readonly #maxAge: string;

  constructor(options: CorsOptions) {
    this.#anyOrigin = options.origins.includes('*');
    this.#origins = new Set(options.origins);
    this.#methods = [...new Set(options.methods)].join(', ');
    this.#exposedHeaders = options.exposedHeaders.join(', ');
    this.#maxAge = String(options.maxAgeSeconds);
  }

  /** The request's origin when its page may call the API, else undefined. */
  #allowedOrigin(request: FastifyRequest): string | undefined {
    const origin = request.headers.origin;
    if (origin === undefined || origin === '') return undefined;
    return this.#anyOrigin || this.#origins.has(origin) ? origin : undefined;
  }

  /** On every response: for an allowed origin, the headers that let its page read the answer. */
  applyTo(request: FastifyRequest, reply: FastifyReply): void {
    const origin = this.#allowedOrigin(request);
    if (origin === undefined) return;
    reply.header('access-control-allow-origin', origin);
    reply.header('access-control-expose-headers', this.#exposedHeaders);
  }

  /**
   * Answers `OPTIONS` on any path. A preflight from an allowed origin gets the methods, the
   * request headers it asked for and how long to keep the answer; from another origin, a
   * bare 204 (its browser then refuses the call). An `OPTIONS` that is no preflight is a 400.
   */
  answerPreflight(request: FastifyRequest, reply: FastifyReply): void {
    const { origin, 'access-control-request-method': method } = request.headers;
    if (!origin || !method) {
      const locale = answerLanguage(request, reply);
      const message = 'OPTIONS here answers CORS preflights only: send Origin and Access-Control-Request-Method';
      reply.code(400).send(httpErrorBody(400, message, request.id, { locale }));
      return;
    }
    // The allowed headers echo the requested ones, so a cache must tell requests apart by them.
    appendVary(reply, 'Access-Control-Request-Headers');
    if (this.#allowedOrigin(request) !== undefined) {
      reply.header('access-control-allow-methods', this.#methods);
      const headers = request.headers['access-control-request-headers'];
      if (headers) reply.header('access-control-allow-headers', headers);
      reply.header('access-control-max-age', this.#maxAge);
    }
    // Some browsers wait for a body on a 204 without Content-Length.
    reply.code(204).header('content-length', '0').send();
  }
}
