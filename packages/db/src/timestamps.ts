import pg from 'pg';

/** `timestamptz`'s type id: the type of every timestamp column of the schema. */
export const TIMESTAMPTZ_OID = 1184;

/** What pg itself makes of a `timestamptz` in text (postgres-date): the answer for every shape the fast path leaves. */
const pgParseTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (text: string) => Date | number | null;

const DIGIT_0 = 48;
const HOUR_MS = 3_600_000;
/** An offset's minutes and seconds, after its hours. */
const OFFSET_UNITS_MS = [60_000, 1000] as const;

const isDigit = (code: number) => code >= DIGIT_0 && code <= DIGIT_0 + 9;

/** The value of the two digits at `at`, or NaN when either is not a digit. */
function twoDigits(text: string, at: number): number {
  const tens = text.charCodeAt(at);
  const ones = text.charCodeAt(at + 1);
  return isDigit(tens) && isDigit(ones) ? (tens - DIGIT_0) * 10 + ones - DIGIT_0 : Number.NaN;
}

/**
 * A `timestamptz` as Postgres writes it in text (DateStyle ISO), as the Date pg would make of
 * it, for a third of the cost: `2026-12-04 15:09:21.588515+00` read by character codes, where
 * pg runs three regular expressions and parses each field again (~0.36 µs a value; a list of 20
 * notes has 40). The shape read here is the only one Postgres writes for years 100 to 9999:
 * four-digit year, up to six digits of fraction, an offset of hours with optional minutes and
 * seconds; anything else (BC, years before 100 or after 9999, `infinity`) is pg's own to parse.
 * The fraction is truncated to milliseconds, as pg's parser does (its `1000 * parseFloat` of
 * the fraction, truncated by `Date.UTC`, equals the first three digits for every fraction of
 * up to six: test/timestamps.test.ts checks all of them).
 */
export function parseTimestamptz(text: string): Date | number | null {
  const length = text.length;
  if (
    length < 22 ||
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 32 || // space
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58
  ) {
    return pgParseTimestamptz(text);
  }
  const year = twoDigits(text, 0) * 100 + twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hours = twoDigits(text, 11);
  const minutes = twoDigits(text, 14);
  const seconds = twoDigits(text, 17);
  let at = 19;
  let ms = 0;
  if (text.charCodeAt(at) === 46) {
    // .ffffff: one to six digits, of which the milliseconds are the first three.
    at++;
    while (at < length && isDigit(text.charCodeAt(at))) at++;
    const digits = at - 20;
    if (digits < 1 || digits > 6) return pgParseTimestamptz(text);
    for (let i = 0; i < 3; i++) ms = ms * 10 + (i < digits ? text.charCodeAt(20 + i) - DIGIT_0 : 0);
  }
  const sign = text.charCodeAt(at);
  if (sign !== 43 && sign !== 45) return pgParseTimestamptz(text); // + or -
  // ±HH, then :MM and :SS when written.
  let offset = twoDigits(text, at + 1) * HOUR_MS;
  at += 3;
  for (const unitMs of OFFSET_UNITS_MS) {
    if (at === length) break;
    if (text.charCodeAt(at) !== 58) return pgParseTimestamptz(text);
    offset += twoDigits(text, at + 1) * unitMs;
    at += 3;
  }
  // Not a digit where one belongs (NaN), text left over (" BC"), or a year Date.UTC reads as 19xx.
  if (at !== length || !(year >= 100 && month + day + hours + minutes + seconds + offset >= 0)) {
    return pgParseTimestamptz(text);
  }
  const time = Date.UTC(year, month - 1, day, hours, minutes, seconds, ms);
  return new Date(sign === 45 ? time + offset : time - offset);
}

/**
 * The type parsers of the app's pools: pg's own, but `timestamptz` by `parseTimestamptz`.
 * Given to each pool (`types`), so pg's global parsers stay as they are for other clients.
 */
export const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === TIMESTAMPTZ_OID && (format ?? 'text') === 'text') return parseTimestamptz;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};
