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

/**
 * Adds a request header's name to a response's `Vary` (RFC 9110 §12.5.5), keeping what is
 * there: each part of the app that chose the answer by a request header names it (tRPC's
 * response format, the language of an error, the CORS origin), none overwriting another's.
 */
export function appendVary(reply: VaryingReply, field: string): void {
  const current = reply.getHeader('vary');
  if (current === undefined || current === '') {
    reply.header('vary', field);
    return;
  }
  const list = typeof current === 'string' ? current : Array.isArray(current) ? current.join(', ') : String(current);
  if (!names(list.toLowerCase(), field.toLowerCase())) reply.header('vary', `${list}, ${field}`);
  else if (list !== current) reply.header('vary', list);
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
