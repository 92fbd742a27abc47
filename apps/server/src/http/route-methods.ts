import type { FastifyInstance, HTTPMethods } from 'fastify';

/**
 * The methods each route's path is served with, so that a known path called with another
 * method is answered 405 with `Allow` (RFC 9110), not a 404 that reads as "no such path".
 * Wildcard routes (the web app's pages, tRPC's procedures) are left out: they would claim
 * every path, and answer their own wrong methods.
 */
declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route only answers 405: its path is served, with other methods, and it stands
     * before a parametric route that would take the path as a parameter (rest-routes.ts).
     */
    answersMethodNotAllowed?: boolean;
  }
}

export class RouteMethods {
  readonly #routes: { pattern: RegExp; method: string; fixed: boolean }[] = [];

  /** A Fastify route, as `onRoute` sees it (`/api/notes/:id`). */
  add(method: string | string[], url: string): void {
    const pattern = pathPattern(url);
    if (!pattern) return;
    const fixed = !url.includes(':');
    for (const one of Array.isArray(method) ? method : [method]) this.#routes.push({ pattern, method: one, fixed });
  }

  /**
   * The methods `path` (no query string) is served with, in a stable order; none for an
   * unknown path. A path a fixed route has is served with that route's methods alone (its
   * other methods answer 405 even where a parameter would take the path: `takenByParameters`).
   */
  allowed(path: string): string[] {
    const matching = this.#routes.filter((route) => route.pattern.test(path));
    const fixed = matching.filter((route) => route.fixed);
    const methods = new Set((fixed.length > 0 ? fixed : matching).map((route) => route.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  }

  /**
   * Methods a route's parameter would serve `path` with, though a fixed route has the path
   * for other methods (`GET /api/users/batch` read as `GET /api/users/{id}`).
   */
  takenByParameters(path: string): string[] {
    const matching = this.#routes.filter((route) => route.pattern.test(path));
    const fixed = new Set(matching.filter((route) => route.fixed).map((route) => route.method));
    if (fixed.size === 0) return [];
    const taken = matching.filter((route) => !route.fixed && !fixed.has(route.method)).map((route) => route.method);
    return [...new Set(taken)].sort();
  }
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `/api/notes/:id` -> /^\/api\/notes\/[^/]+$/; undefined for a wildcard or a pattern this does not read. */
function pathPattern(url: string): RegExp | undefined {
  const segments = url.split('/').map((segment) => {
    if (/^:\w+$/.test(segment)) return '[^/]+';
    if (/[*:(]/.test(segment)) return undefined;
    return escapeRegExp(segment);
  });
  if (segments.some((segment) => segment === undefined)) return undefined;
  return new RegExp(`^${segments.join('/')}$`);
}

/**
 * Fixed paths that another route's parameter would take, for a method they are not served
 * with (`GET /api/users/batch` read as `GET /api/users/{id}` with the id "batch", a 400 or
 * a 401): a route for each such method that answers 405 with `Allow` (the not-found
 * handler's), as a known path called with another method is.
 */
export function answerMethodsTakenByParameters(app: FastifyInstance, routes: { method: string; url: string }[]): void {
  const methods = new RouteMethods();
  for (const route of routes) methods.add(route.method, route.url);
  const fixedUrls = new Set(routes.filter((route) => !route.url.includes(':')).map((route) => route.url));
  for (const url of fixedUrls) {
    for (const method of methods.takenByParameters(url)) {
      app.route({
        method: method as HTTPMethods,
        url,
        config: { answersMethodNotAllowed: true },
        // Before the body is read: no body, or one of any type, changes a 405.
        onRequest: async (_request, reply) => {
          reply.callNotFound();
          return reply;
        },
        // (Fastify asks for one; the hook has answered before it would run.)
        handler: (_request, reply) => reply.callNotFound(),
      });
    }
  }
}
