import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { CheckedLines, checkedLine, nodeReads } from './checked-lines.ts';
import { http } from './node-http.ts';
import { appendVary, varyList, varyWith } from './vary.ts';

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
/** Server-Timing's value: the app's time on the request, in milliseconds to a tenth (as `toFixed(1)`, for less). */
const serverTiming = (elapsedMs: number) => {
  const tenths = Math.round(elapsedMs * 10);
  return `app;dur=${Math.trunc(tenths / 10)}.${tenths % 10}`;
};

/**
 * What each answer was chosen by, named in its `Vary`: the page's origin on every answer
 * (CORS, cors.ts), and the reader's language on one in words (`Content-Language`, i18n).
 */
const VARY_ALWAYS = 'Origin';
const VARY_BY_LANGUAGE = 'Accept-Language';
const CSP = 'content-security-policy';
/**
 * An answer whose route says nothing of caching is stored by no cache, the browser's own
 * included (OWASP REST Security Cheat Sheet): an API's answers are a user's data. Routes
 * whose answers may be kept say so (a public file, the JWKS, the web app's assets).
 */
const CACHE_CONTROL = 'cache-control';
const NO_STORE = 'no-store';
const isHtml = (type: unknown) => typeof type === 'string' && type.startsWith('text/html');

// Checked once, by Node's own rules, instead of on every response.
for (const name of [REQUEST_ID, SERVER_TIMING]) http.validateHeaderName(name);
const headerLines = (headers: [string, string][]) => headers.map(([name, value]) => checkedLine(name, value)).join('');
const FIXED_LINES = headerLines(FIXED);
const ALL_LINES = FIXED_LINES + headerLines([[ROUTE_SETTABLE, SECURITY_HEADERS[ROUTE_SETTABLE]]]);
const VARY_ALWAYS_LINE = headerLines([['vary', VARY_ALWAYS]]);
const CSP_LINE = headerLines([[CSP, HTML_CSP]]);
const NO_STORE_LINE = headerLines([[CACHE_CONTROL, NO_STORE]]);

/**
 * Sets on a reply the headers every answer carries (the security headers, the request id,
 * Server-Timing, Vary, an HTML page's CSP, `Cache-Control: no-store` unless the route set
 * one), as CommonHeadersResponse writes them: for
 * responses of other kinds (Fastify's `inject`).
 */
function setCommonHeaders(reply: FastifyReply, requestId: string, elapsedMs: number): void {
  for (const [name, value] of FIXED) reply.header(name, value);
  if (!reply.hasHeader(ROUTE_SETTABLE)) reply.header(ROUTE_SETTABLE, SECURITY_HEADERS[ROUTE_SETTABLE]);
  reply.header(REQUEST_ID, requestId);
  reply.header(SERVER_TIMING, serverTiming(elapsedMs));
  if (reply.hasHeader('content-language')) appendVary(reply, VARY_BY_LANGUAGE);
  appendVary(reply, VARY_ALWAYS);
  if (isHtml(reply.getHeader('content-type')) && !reply.hasHeader(CSP)) reply.header(CSP, HTML_CSP);
  if (!reply.hasHeader(CACHE_CONTROL)) reply.header(CACHE_CONTROL, NO_STORE);
}

/**
 * What the writer does with a header a response was given, by its lower-cased name: drops
 * it to write its own value (`fixed`; `carried` when it carries the request's), or reads it
 * (a route's own Cross-Origin-Resource-Policy or CSP stands; the rest decide Vary and the CSP).
 */
type Kind = 'fixed' | 'route-settable' | 'carried' | 'vary' | 'type' | 'language' | 'csp' | 'caching';
const KINDS = new Map<string, Kind>([
  ...FIXED.map(([name]) => [name, 'fixed'] as const),
  [ROUTE_SETTABLE, 'route-settable'],
  [REQUEST_ID, 'carried'],
  [SERVER_TIMING, 'carried'],
  ['vary', 'vary'],
  ['content-type', 'type'],
  ['content-language', 'language'],
  [CSP, 'csp'],
  [CACHE_CONTROL, 'caching'],
]);
const NAME_LENGTHS = new Set([...KINDS.keys()].map((name) => name.length));
/** The kinds whose value the writer reads. */
const readsValue = (kind: Kind) => kind === 'type' || kind === 'vary';

/** Which of the headers the writer minds a name (in any case) is, if any. */
function kindOf(name: unknown): Kind | undefined {
  // Most names are ruled out by their length alone; Fastify's are lower-case already.
  if (typeof name !== 'string' || !NAME_LENGTHS.has(name.length)) return undefined;
  return KINDS.get(name) ?? KINDS.get(name.toLowerCase());
}

/** What the writer knows of a header name (as given), learned the first time it sees it. */
interface NameFacts {
  kind: Kind | undefined;
  /** Its values' lines, checked once: for a name the writer neither drops nor rewrites, and Node need not be given. */
  lines: CheckedLines | undefined;
}
/** The kinds whose headers are written as given (the writer only reads them). */
const WRITTEN_AS_GIVEN = new Set<Kind | undefined>([undefined, 'type', 'language', 'csp', 'caching', 'route-settable']);
/** How many names the writer remembers: beyond, a name's headers go to Node as before. */
export const NAMES_KEPT = 256;
const namesSeen = new Map<string, NameFacts>();

function factsOf(name: string): NameFacts {
  const known = namesSeen.get(name);
  if (known !== undefined) return known;
  const kind = kindOf(name);
  const kept = namesSeen.size < NAMES_KEPT;
  const lines = kept && WRITTEN_AS_GIVEN.has(kind) && !nodeReads(name) ? new CheckedLines(name) : undefined;
  const facts = { kind, lines };
  if (kept) namesSeen.set(name, facts);
  return facts;
}

/**
 * A response's own headers, as the writer reads them: which it writes itself instead, and
 * what the lines it adds depend on. The answer's rules (Vary, the CSP) apply to an answer the
 * app handed its request's headers to (`carry`); a raw write past the hooks keeps its own.
 */
class OwnHeaders {
  /** The names (as given) of the headers the writer writes itself, if any. */
  dropped: string[] | undefined;
  #routeSet = false;
  #html = false;
  #csp = false;
  #language = false;
  #caching = false;
  /** The response's own Vary (several given ones as one list), and their names as given. */
  #vary: string | undefined;
  #varyNames: string[] | undefined;
  readonly #carrying: boolean;

  constructor(carrying: boolean) {
    this.#carrying = carrying;
  }

  /** Takes note of a header (`value`: given for the kinds that read it, `readsValue`). */
  see(name: string, kind: Kind, value: unknown): void {
    switch (kind) {
      case 'fixed':
        this.#drop(name);
        break;
      case 'carried':
        if (this.#carrying) this.#drop(name);
        break;
      case 'route-settable':
        this.#routeSet = true;
        break;
      case 'csp':
        this.#csp = true;
        break;
      case 'language':
        this.#language = true;
        break;
      case 'caching':
        this.#caching = true;
        break;
      case 'type':
        if (this.#carrying && isHtml(value)) this.#html = true;
        break;
      case 'vary': {
        if (!this.#carrying) break;
        const list = varyList(value);
        if (list !== undefined) this.#vary = this.#vary === undefined ? list : `${this.#vary}, ${list}`;
        if (this.#varyNames === undefined) this.#varyNames = [name];
        else this.#varyNames.push(name);
        break;
      }
    }
  }

  #drop(name: string): void {
    if (this.dropped === undefined) this.dropped = [name];
    else this.dropped.push(name);
  }

  /** The lines the writer adds to the response's own (once every header is seen). */
  lines(): string {
    const security = this.#routeSet ? FIXED_LINES : ALL_LINES;
    if (!this.#carrying) return security;
    return (
      security + this.#varyLine() + (this.#html && !this.#csp ? CSP_LINE : '') + (this.#caching ? '' : NO_STORE_LINE)
    );
  }

  /** Vary naming what the answer was chosen by; the response's own given up if it lacks any. */
  #varyLine(): string {
    // Most answers: no Vary or language of their own.
    if (this.#varyNames === undefined && !this.#language) return VARY_ALWAYS_LINE;
    const own = this.#vary;
    const names = this.#varyNames ?? [];
    let vary = this.#language ? varyWith(own, VARY_BY_LANGUAGE) : own;
    vary = varyWith(vary, VARY_ALWAYS);
    if (vary === own && names.length === 1) return '';
    for (const name of names) this.#drop(name);
    return checkedLine('vary', vary);
  }
}

/**
 * A raw `writeHead`'s array (`[name, value, …]` or `[[name, value], …]`), without the headers
 * the writer writes itself, and the lines it adds.
 */
function arrayWithout(headers: unknown[], carrying: boolean): Written {
  // Each entry's name and value, as Node reads them, flat.
  const pairs = Array.isArray(headers[0])
    ? headers.flatMap((entry) => [(entry as unknown[])[0], (entry as unknown[])[1]])
    : headers;
  const own = new OwnHeaders(carrying);
  for (let at = 0; at < pairs.length; at += 2) {
    const kind = kindOf(pairs[at]);
    if (kind !== undefined) own.see(pairs[at] as string, kind, pairs[at + 1]);
  }
  const lines = own.lines();
  return { lines, headers: own.dropped === undefined ? headers : pairsWithout(pairs, own.dropped) };
}

/** A header's value in an object Node hands the writer: its own store holds `[name, value]` pairs. */
function valueIn(response: ServerResponse, headers: Record<string, unknown>, name: string): unknown {
  const value = headers[name];
  return Array.isArray(value) && response.hasHeader(name) ? value[1] : value;
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

/** The lines the writer adds to a response's own headers, and what Node is then given of them. */
interface Written {
  lines: string;
  /** The lines of the response's own headers checked before (written after the request's). */
  checked?: string;
  headers: unknown;
}

/**
 * An object of headers whose values are all strings (Fastify's, or a raw `writeHead`'s
 * object), in one pass: the lines the writer adds, then the lines of the headers checked
 * before (CheckedLines), and the rest for Node to check and write, as `[name, value, …]`.
 * Undefined for any other object (Node's own store, whose entries are `[name, value]` pairs,
 * or a header with several values): the general path reads those.
 */
function writtenFromStrings(record: Record<string, unknown>, carrying: boolean): Written | undefined {
  if (Object.getPrototypeOf(record) !== Object.prototype) return undefined;
  const seen = new OwnHeaders(carrying);
  let checked = '';
  let rest: unknown[] = [];
  for (const name in record) {
    const value = record[name];
    if (typeof value !== 'string') return undefined;
    const facts = factsOf(name);
    if (facts.kind !== undefined) seen.see(name, facts.kind, value);
    const line = facts.lines?.line(value);
    if (line === undefined) rest.push(name, value);
    else checked += line;
  }
  const lines = seen.lines();
  if (seen.dropped !== undefined) rest = pairsWithout(rest, seen.dropped);
  return { lines, checked, headers: rest };
}

/** `[name, value, …]` without the names `dropped` (a name left without its value stays so: Node refuses it). */
function pairsWithout(pairs: unknown[], dropped: string[]): unknown[] {
  const kept: unknown[] = [];
  for (let at = 0; at < pairs.length; at += 2) {
    if (!dropped.includes(pairs[at] as string)) kept.push(...pairs.slice(at, at + 2));
  }
  return kept;
}

type HeaderWriter = (this: ServerResponse, firstLine: string, headers: unknown) => void;
const writeHeader = (http.ServerResponse.prototype as unknown as { _storeHeader?: HeaderWriter })._storeHeader;
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
 * number). A response's own headers that come again and again with the same value (its
 * Content-Type, a route's Cache-Control) are written from lines Node's rules checked once
 * (CheckedLines); the headers Node reads as it writes them, and the rest, Node checks and
 * writes as before. The block goes in where Node writes a response's header section
 * (`_storeHeader`, whose first argument is the status line); the tests over real HTTP read
 * the headers off the wire, so a change there in Node shows.
 */
export class CommonHeadersResponse extends http.ServerResponse {
  /** The request id's and Server-Timing's lines, once `addCommonHeaders` has handed them over. */
  #requestLines: string | undefined;

  /**
   * The request's id and the app's time on it, written with the security headers (over any
   * value a route set for either): the values are the response's own, not its reply's.
   */
  carry(requestId: string, elapsedMs: number): void {
    http.validateHeaderValue(REQUEST_ID, requestId);
    this.#requestLines = `${REQUEST_ID}: ${requestId}\r\n${SERVER_TIMING}: ${serverTiming(elapsedMs)}\r\n`;
  }

  _storeHeader(firstLine: string, headers: unknown): void {
    const carrying = this.#requestLines !== undefined;
    const written = Array.isArray(headers)
      ? arrayWithout(headers, carrying)
      : headers !== null && typeof headers === 'object'
        ? (writtenFromStrings(headers as Record<string, unknown>, carrying) ??
          this.#writtenFromObject(headers, carrying))
        : { lines: new OwnHeaders(carrying).lines(), headers };
    const lines = written.lines + (this.#requestLines ?? '') + (written.checked ?? '');
    (writeHeader as HeaderWriter).call(this, firstLine + lines, written.headers);
  }

  /** Any other object: Node's own store (entries `[name, value]`), or values that are not all strings. */
  #writtenFromObject(headers: object, carrying: boolean): Written {
    const seen = new OwnHeaders(carrying);
    const record = headers as Record<string, unknown>;
    for (const name in record) {
      const kind = kindOf(name);
      if (kind !== undefined) seen.see(name, kind, readsValue(kind) ? valueIn(this, record, name) : undefined);
    }
    const lines = seen.lines();
    return { lines, headers: seen.dropped === undefined ? headers : objectWithout(this, headers, seen.dropped) };
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
