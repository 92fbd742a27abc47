/**
 * The methods each route's path is served with, so that a known path called with another
 * method is answered 405 with `Allow` (RFC 9110), not a 404 that reads as "no such path".
 * Wildcard routes (the web app's pages, tRPC's procedures) are left out: they would claim
 * every path, and answer their own wrong methods.
 */
export class RouteMethods {
  readonly #routes: { pattern: RegExp; method: string }[] = [];

  /** A Fastify route, as `onRoute` sees it (`/api/notes/:id`). */
  add(method: string | string[], url: string): void {
    const pattern = pathPattern(url);
    if (!pattern) return;
    for (const one of Array.isArray(method) ? method : [method]) this.#routes.push({ pattern, method: one });
  }

  /** The methods `path` (no query string) is served with, in a stable order; none for an unknown path. */
  allowed(path: string): string[] {
    const methods = new Set(this.#routes.filter((route) => route.pattern.test(path)).map((route) => route.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
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
