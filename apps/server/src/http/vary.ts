/** What `appendVary` needs of a reply (Fastify's, or a test's stand-in). */
export interface VaryingReply {
  getHeader(name: string): unknown;
  header(name: string, value: string): unknown;
}

const isListSpace = (char: string | undefined) => char === undefined || char === ',' || char === ' ' || char === '\t';

/** Whether a lower-cased list holds `item` as a whole element; no allocation (this runs on every response). */
function holds(list: string, item: string): boolean {
  for (let at = list.indexOf(item); at !== -1; at = list.indexOf(item, at + 1)) {
    if (isListSpace(list[at - 1]) && isListSpace(list[at + item.length])) return true;
  }
  return false;
}

/** Whether a lower-cased `Vary` list already names `field`, or `*` (which covers every field). */
const names = (list: string, field: string) => holds(list, field) || holds(list, '*');

/** A `Vary` value as one list: Node and Fastify take a string, a number or several strings. */
export function varyList(value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join(', ') : String(value);
}

/**
 * A `Vary` list with `field` added (RFC 9110 §12.5.5), keeping what is there and adding
 * nothing it names already: each part of the app that chose the answer by a request header
 * names it (tRPC's response format, the language of an error, the CORS origin), none
 * overwriting another's.
 */
export function varyWith(list: string | undefined, field: string): string {
  if (list === undefined) return field;
  return names(list.toLowerCase(), field.toLowerCase()) ? list : `${list}, ${field}`;
}

/** Adds a request header's name to a reply's `Vary` (`varyWith`). */
export function appendVary(reply: VaryingReply, field: string): void {
  const current = reply.getHeader('vary');
  const next = varyWith(varyList(current), field);
  if (next !== current) reply.header('vary', next);
}

/** Puts a reply's `Vary` fields into the headers of the Fetch Response it sends (which Fastify applies last). */
export function keepVary(reply: VaryingReply, headers: Headers): void {
  const vary = reply.getHeader('vary');
  if (typeof vary !== 'string') return;
  const response = {
    getHeader: (name: string) => headers.get(name) ?? undefined,
    header: (name: string, value: string) => headers.set(name, value),
  };
  for (const field of vary.split(',')) appendVary(response, field.trim());
}
