import { http } from './node-http.ts';

const { validateHeaderName, validateHeaderValue } = http;

/**
 * The headers Node reads as it writes them (the body's framing, the connection, the date,
 * `Expect`, trailers, a `Content-Disposition` it re-encodes, cookies): it must be given these
 * itself, every time.
 */
const NODE_READS = new Set([
  'connection',
  'content-length',
  'transfer-encoding',
  'date',
  'expect',
  'trailer',
  'keep-alive',
  'content-disposition',
  'set-cookie',
]);

/** Whether Node must be given a header itself, whatever its value (a name in any case). */
export const nodeReads = (name: string) => NODE_READS.has(name.toLowerCase());

/** The header line `name: value\r\n`, once Node's own rules pass the name and the value (else Node's error). */
export function checkedLine(name: string, value: string): string {
  validateHeaderName(name);
  validateHeaderValue(name, value);
  return `${name}: ${value}\r\n`;
}

/** How many values of a name, and characters of a value, a CheckedLines keeps. */
export const CHECKED_LINES_LIMITS = { valuesPerName: 8, valueLength: 1024 } as const;

/**
 * The header lines (`name: value\r\n`) of one header name, for the values a response is given
 * again and again (Content-Type, a route's Cache-Control), each checked once by Node's own
 * rules and then kept: Node checks the name and the value of every header of every response
 * (two regular expressions) and reads its name in lower case, ~700 instructions a header.
 * Keeps a few values: a header whose value changes with each answer (`RateLimit-Remaining`)
 * fills them and goes on to Node as before.
 */
export class CheckedLines {
  readonly #name: string;
  readonly #lines = new Map<string, string>();

  constructor(name: string) {
    this.#name = name;
  }

  /**
   * The line for `value`, if kept or now checked; undefined for a value Node would refuse
   * (it refuses it, with its own error, as it writes it) and past the limits.
   */
  line(value: string): string | undefined {
    const line = this.#lines.get(value);
    if (line !== undefined) return line;
    if (this.#lines.size >= CHECKED_LINES_LIMITS.valuesPerName || value.length > CHECKED_LINES_LIMITS.valueLength) {
      return undefined;
    }
    let checked: string;
    try {
      checked = checkedLine(this.#name, value);
    } catch {
      return undefined;
    }
    this.#lines.set(value, checked);
    return checked;
  }
}
