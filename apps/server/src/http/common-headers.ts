import { ServerResponse, validateHeaderName, validateHeaderValue } from 'node:http';
import type { FastifyReply } from 'fastify';

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

/** The one security header a route may set itself, to loosen it (a public file is `cross-origin`). */
const ROUTE_SETTABLE = 'cross-origin-resource-policy';
/** The others: always these values, whatever a route set. */
const FIXED = Object.entries(SECURITY_HEADERS).filter(([name]) => name !== ROUTE_SETTABLE);

/** The headers of the request's own that every answer carries too: its id, the app's time on it. */
const REQUEST_ID = 'x-request-id';
const SERVER_TIMING = 'server-timing';
/** Server-Timing's value: the app's time on the request, in milliseconds. */
const serverTiming = (elapsedMs: number) => `app;dur=${elapsedMs.toFixed(1)}`;

// Checked once, by Node's own rules, instead of on every response.
for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
  validateHeaderName(name);
  validateHeaderValue(name, value);
}
for (const name of [REQUEST_ID, SERVER_TIMING]) validateHeaderName(name);
const headerLines = (headers: [string, string][]) => headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');
const FIXED_LINES = headerLines(FIXED);
const ALL_LINES = FIXED_LINES + headerLines([[ROUTE_SETTABLE, SECURITY_HEADERS[ROUTE_SETTABLE]]]);

/**
 * Sets on a reply the headers every answer carries (the security headers, the request id,
 * Server-Timing), as CommonHeadersResponse writes them: for responses of other kinds
 * (Fastify's `inject`).
 */
function setCommonHeaders(reply: FastifyReply, requestId: string, elapsedMs: number): void {
  for (const [name, value] of FIXED) reply.header(name, value);
  if (!reply.hasHeader(ROUTE_SETTABLE)) reply.header(ROUTE_SETTABLE, SECURITY_HEADERS[ROUTE_SETTABLE]);
  reply.header(REQUEST_ID, requestId);
  reply.header(SERVER_TIMING, serverTiming(elapsedMs));
}

/** What the writer does with a header a response was given, by its lower-cased name. */
type Kind = 'fixed' | 'route-settable' | 'carried';
const KINDS = new Map<string, Kind>([
  ...FIXED.map(([name]) => [name, 'fixed'] as const),
  [ROUTE_SETTABLE, 'route-settable'],
  [REQUEST_ID, 'carried'],
  [SERVER_TIMING, 'carried'],
]);
const NAME_LENGTHS = new Set([...KINDS.keys()].map((name) => name.length));

/** Which of the common headers a name (in any case) is, if any. */
function kindOf(name: unknown): Kind | undefined {
  // Most names are ruled out by their length alone; Fastify's are lower-case already.
  if (typeof name !== 'string' || !NAME_LENGTHS.has(name.length)) return undefined;
  return KINDS.get(name) ?? KINDS.get(name.toLowerCase());
}

/** Whether the writer drops a header of this kind from a response's own: it writes its own value. */
const replaces = (kind: Kind | undefined, carrying: boolean) => kind === 'fixed' || (kind === 'carried' && carrying);

/**
 * A raw `writeHead`'s array (`[name, value, …]` or `[[name, value], …]`), copied without the
 * headers the writer replaces; `routeSet` if it names a Cross-Origin-Resource-Policy.
 */
function arrayWithout(headers: unknown[], carrying: boolean): { headers: unknown[]; routeSet: boolean } {
  const step = Array.isArray(headers[0]) ? 1 : 2;
  const kept: unknown[] = [];
  let routeSet = false;
  for (let at = 0; at < headers.length; at += step) {
    const kind = kindOf(step === 1 ? (headers[at] as unknown[])[0] : headers[at]);
    if (replaces(kind, carrying)) continue;
    if (kind === 'route-settable') routeSet = true;
    kept.push(...headers.slice(at, at + step));
  }
  return { headers: kept, routeSet };
}

/**
 * An object of headers without the names `dropped` (found in it): the response's own store
 * (which Node hands its writer whenever `setHeader` filled one) loses them; a raw
 * `writeHead`'s object is copied, never changed.
 */
function objectWithout(response: ServerResponse, headers: object, dropped: string[]): object {
  if (response.hasHeader(dropped[0] as string)) {
    for (const name of dropped) response.removeHeader(name);
    return headers;
  }
  const copy: Record<string, unknown> = { ...headers };
  for (const name of dropped) delete copy[name];
  return copy;
}

type HeaderWriter = (this: ServerResponse, firstLine: string, headers: unknown) => void;
const writeHeader = (ServerResponse.prototype as unknown as { _storeHeader?: HeaderWriter })._storeHeader;
if (typeof writeHeader !== 'function') {
  throw new Error(
    'This Node.js has no ServerResponse.prototype._storeHeader, which CommonHeadersResponse extends: use Node 24',
  );
}

/**
 * The app's HTTP server's responses (Fastify's `http.ServerResponse` option): they write the
 * headers every answer carries as one block of lines. Node checks every header a response
 * is given, name and value, on every response, and Fastify stores each one set on a reply
 * first: set one by one, the five security headers cost a constant route ~15k of its 82k
 * instructions, the request id and Server-Timing ~2.5k more. Here the security headers are
 * checked once, at start-up; the request id and the app's time are handed over by
 * `addCommonHeaders` (`carry`: the id checked by Node's rule for a value, the time a
 * number). The block goes in where Node writes a response's header section
 * (`_storeHeader`, whose first argument is the status line); the tests over real HTTP read
 * the headers off the wire, so a change there in Node shows.
 */
export class CommonHeadersResponse extends ServerResponse {
  /** The request id's and Server-Timing's lines, once `addCommonHeaders` has handed them over. */
  #requestLines: string | undefined;

  /**
   * The request's id and the app's time on it, written with the security headers (over any
   * value a route set for either): the values are the response's own, not its reply's.
   */
  carry(requestId: string, elapsedMs: number): void {
    validateHeaderValue(REQUEST_ID, requestId);
    this.#requestLines = `${REQUEST_ID}: ${requestId}\r\n${SERVER_TIMING}: ${serverTiming(elapsedMs)}\r\n`;
  }

  _storeHeader(firstLine: string, headers: unknown): void {
    const carrying = this.#requestLines !== undefined;
    let own = headers;
    let routeSet = false;
    if (Array.isArray(headers)) {
      const kept = arrayWithout(headers, carrying);
      own = kept.headers;
      routeSet = kept.routeSet;
    } else if (headers !== null && typeof headers === 'object') {
      // Fastify's headers (names lower-cased), Node's own store, or a raw writeHead's object.
      let dropped: string[] | undefined;
      for (const name in headers) {
        const kind = kindOf(name);
        if (kind === 'route-settable') routeSet = true;
        else if (replaces(kind, carrying)) {
          dropped ??= [];
          dropped.push(name);
        }
      }
      if (dropped !== undefined) own = objectWithout(this, headers, dropped);
    }
    const lines = (routeSet ? FIXED_LINES : ALL_LINES) + (this.#requestLines ?? '');
    (writeHeader as HeaderWriter).call(this, firstLine + lines, own);
  }
}

/**
 * Gives an answer the headers every answer carries: the security headers, the request's id
 * and the app's time on it (`Server-Timing: app;dur=<ms>`). The app's server's responses
 * write them (`carry`); any other's (`inject`) get them set on the reply.
 */
export function addCommonHeaders(reply: FastifyReply, requestId: string): void {
  if (reply.raw instanceof CommonHeadersResponse) reply.raw.carry(requestId, reply.elapsedTime);
  else setCommonHeaders(reply, requestId, reply.elapsedTime);
}
