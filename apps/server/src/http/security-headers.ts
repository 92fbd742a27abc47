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
const FIXED_NAMES: readonly string[] = FIXED.map(([name]) => name);

// Checked once, by Node's own rules, instead of on every response.
for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
  validateHeaderName(name);
  validateHeaderValue(name, value);
}
const headerLines = (headers: [string, string][]) => headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');
const FIXED_LINES = headerLines(FIXED);
const ALL_LINES = FIXED_LINES + headerLines([[ROUTE_SETTABLE, SECURITY_HEADERS[ROUTE_SETTABLE]]]);

/** Sets the security headers on a reply, the way SecurityHeadersResponse writes them. */
export function setSecurityHeaders(reply: FastifyReply): void {
  for (const [name, value] of FIXED) reply.header(name, value);
  if (!reply.hasHeader(ROUTE_SETTABLE)) reply.header(ROUTE_SETTABLE, SECURITY_HEADERS[ROUTE_SETTABLE]);
}

const NAME_LENGTHS = new Set(Object.keys(SECURITY_HEADERS).map((name) => name.length));

/** Which security header a name (in any case) is: a fixed one, the route-settable one, or none. */
function kindOf(name: unknown): 'fixed' | 'route-settable' | undefined {
  // Most names are ruled out by their length alone.
  if (typeof name !== 'string' || !NAME_LENGTHS.has(name.length)) return undefined;
  const lower = name.toLowerCase();
  if (lower === ROUTE_SETTABLE) return 'route-settable';
  return FIXED_NAMES.includes(lower) ? 'fixed' : undefined;
}

/**
 * A raw `writeHead`'s array (`[name, value, …]` or `[[name, value], …]`), copied without the
 * fixed security headers; `routeSet` if it names a Cross-Origin-Resource-Policy.
 */
function arrayWithout(headers: unknown[]): { headers: unknown[]; routeSet: boolean } {
  const step = Array.isArray(headers[0]) ? 1 : 2;
  const kept: unknown[] = [];
  let routeSet = false;
  for (let at = 0; at < headers.length; at += step) {
    const kind = kindOf(step === 1 ? (headers[at] as unknown[])[0] : headers[at]);
    if (kind === 'fixed') continue;
    if (kind === 'route-settable') routeSet = true;
    kept.push(...headers.slice(at, at + step));
  }
  return { headers: kept, routeSet };
}

/**
 * An object of headers without the fixed security headers `names` (found in it): the
 * response's own store (which Node hands its writer whenever `setHeader` filled one) loses
 * them; a raw `writeHead`'s object is copied, never changed.
 */
function objectWithout(response: ServerResponse, headers: object, names: string[]): object {
  if (response.hasHeader(names[0] as string)) {
    for (const name of names) response.removeHeader(name);
    return headers;
  }
  const copy: Record<string, unknown> = { ...headers };
  for (const name of names) delete copy[name];
  return copy;
}

type HeaderWriter = (this: ServerResponse, firstLine: string, headers: unknown) => void;
const writeHeader = (ServerResponse.prototype as unknown as { _storeHeader?: HeaderWriter })._storeHeader;
if (typeof writeHeader !== 'function') {
  throw new Error(
    'This Node.js has no ServerResponse.prototype._storeHeader, which SecurityHeadersResponse extends: use Node 24',
  );
}

/**
 * The app's HTTP server's responses (Fastify's `http.ServerResponse` option): they carry the
 * security headers as one block of lines checked at start-up. Node checks every header a
 * response is given, name and value, on every response: set one by one, the five cost a
 * constant route ~15k of its 82k instructions. The block goes in where Node writes a
 * response's header section (`_storeHeader`, whose first argument is the status line); the
 * tests over real HTTP read the headers off the wire, so a change there in Node shows.
 * Responses of other kinds (Fastify's `inject`) get the same headers from
 * `setSecurityHeaders`, in the response hook.
 */
export class SecurityHeadersResponse extends ServerResponse {
  _storeHeader(firstLine: string, headers: unknown): void {
    let own = headers;
    let lines = ALL_LINES;
    if (Array.isArray(headers)) {
      const kept = arrayWithout(headers);
      own = kept.headers;
      if (kept.routeSet) lines = FIXED_LINES;
    } else if (headers !== null && typeof headers === 'object') {
      // Fastify's headers (names lower-cased), Node's own store, or a raw writeHead's object.
      let fixed: string[] | undefined;
      for (const name in headers) {
        const kind = kindOf(name);
        if (kind === 'route-settable') lines = FIXED_LINES;
        else if (kind === 'fixed') {
          fixed ??= [];
          fixed.push(name);
        }
      }
      if (fixed !== undefined) own = objectWithout(this, headers, fixed);
    }
    (writeHeader as HeaderWriter).call(this, firstLine + lines, own);
  }
}
