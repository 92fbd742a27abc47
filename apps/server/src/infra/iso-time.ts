const DAY_MS = 86_400_000;
/** The instants written here: from the first of the year 1000 to the last of 9999. */
const FIRST = Date.UTC(1000, 0, 1);
const END = Date.UTC(10_000, 0, 1);
const ZERO = 48; // the character code of '0'

/**
 * The day last written (days since 1970-01-01) and the character codes of its date: the
 * times of one answer mostly share a day, whose fields are then read once.
 */
let lastDay = Number.NaN;
let year1 = 0;
let year2 = 0;
let year3 = 0;
let year4 = 0;
let month1 = 0;
let month2 = 0;
let date1 = 0;
let date2 = 0;

function readDate(date: Date, day: number): void {
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth() + 1;
  const dayOfMonth = date.getUTCDate();
  year1 = ZERO + Math.floor(year / 1000);
  year2 = ZERO + (Math.floor(year / 100) % 10);
  year3 = ZERO + (Math.floor(year / 10) % 10);
  year4 = ZERO + (year % 10);
  month1 = ZERO + Math.floor(month / 10);
  month2 = ZERO + (month % 10);
  date1 = ZERO + Math.floor(dayOfMonth / 10);
  date2 = ZERO + (dayOfMonth % 10);
  lastDay = day;
}

/**
 * `date.toISOString()`, the same text (`2026-12-04T15:09:21.588Z`) for a fraction of the
 * cost: V8 writes it with a `printf` of seven fields (~0.4 µs), which every timestamp of every
 * answer paid (a list of 20 notes has 40). The text is made in one piece from its character
 * codes: built from parts, it left ~14 of them behind a time for the collector (~14 KB a list;
 * bench/README.md, the twenty-sixth sitting). Years 1000 to 9999; any other date, and an
 * invalid one (RangeError), is `toISOString`'s own. Every answer's timestamps are written
 * with this (test/iso-time.test.ts compares the two over that range and past its ends).
 */
export function isoTime(date: Date): string {
  const time = date.getTime();
  if (!(time >= FIRST && time < END)) return date.toISOString();
  const day = Math.floor(time / DAY_MS);
  if (day !== lastDay) readDate(date, day);
  const ofDay = time - day * DAY_MS;
  const hours = Math.floor(ofDay / 3_600_000);
  const minutes = Math.floor(ofDay / 60_000) % 60;
  const seconds = Math.floor(ofDay / 1000) % 60;
  const ms = ofDay % 1000;
  // biome-ignore format: the text's fields, one line each
  return String.fromCharCode(
    year1, year2, year3, year4, 45, month1, month2, 45, date1, date2, 84, // YYYY-MM-DDT
    ZERO + Math.floor(hours / 10), ZERO + (hours % 10), 58, // HH:
    ZERO + Math.floor(minutes / 10), ZERO + (minutes % 10), 58, // MM:
    ZERO + Math.floor(seconds / 10), ZERO + (seconds % 10), 46, // SS.
    ZERO + Math.floor(ms / 100), ZERO + (Math.floor(ms / 10) % 10), ZERO + (ms % 10), 90, // mmmZ
  );
}
