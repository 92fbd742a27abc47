import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../src/client.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';
import { parseTimestamptz, TIMESTAMPTZ_OID, typeParsers } from '../src/timestamps.ts';

/** What pg itself makes of a timestamptz in text: the reference. */
const pgParse = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (text: string) => Date | number | null;

/** The same value: both Dates of one instant (or both invalid), or the same non-Date (±Infinity, null). */
function expectSame(text: string): void {
  const ours = parseTimestamptz(text);
  const theirs = pgParse(text);
  if (theirs instanceof Date) {
    expect(ours, text).toBeInstanceOf(Date);
    expect(Object.is((ours as Date).getTime(), theirs.getTime()), `${text}: ${ours} against ${theirs}`).toBe(true);
  } else {
    expect(ours, text).toBe(theirs);
  }
}

const pad = (value: number, width: number) => String(value).padStart(width, '0');

describe('parseTimestamptz', () => {
  it('reads the milliseconds of every fraction of one to six digits as pg does', () => {
    let checked = 0;
    for (let digits = 1; digits <= 6; digits++) {
      for (let value = 0; value < 10 ** digits; value++) {
        const text = `2026-12-04 15:09:21.${pad(value, digits)}+00`;
        const ours = parseTimestamptz(text) as Date;
        const theirs = pgParse(text) as Date;
        if (ours.getTime() !== theirs.getTime())
          expect.fail(`${text}: ${ours.toISOString()} against ${theirs.toISOString()}`);
        checked++;
      }
    }
    expect(checked).toBe(1_111_110);
  });

  it('reads any time of the years 100 to 9999 at any offset Postgres writes as pg does', () => {
    const offsets = ['+00', '-05', '+05:30', '-03:30', '+05:45', '+14', '-12', '+00:19:32', '-00:25:21', '+12:45'];
    let seed = 17;
    // A small deterministic generator: the same cases on every run.
    const random = (below: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % below;
    };
    for (let i = 0; i < 50_000; i++) {
      const year = 100 + random(9900);
      const fraction = random(7);
      const text =
        `${pad(year, 4)}-${pad(1 + random(12), 2)}-${pad(1 + random(28), 2)} ` +
        `${pad(random(24), 2)}:${pad(random(60), 2)}:${pad(random(60), 2)}` +
        `${fraction === 0 ? '' : `.${pad(random(10 ** fraction), fraction)}`}${offsets[random(offsets.length)]}`;
      expectSame(text);
    }
  });

  it("leaves every other shape to pg's own parser, with the same answer", () => {
    for (const text of [
      'infinity',
      '-infinity',
      '2026-12-04 15:09:21+00 BC',
      '0044-03-15 12:00:00+00 BC',
      '0050-06-01 00:00:00+00', // Date.UTC would read year 50 as 1950
      '0099-12-31 23:59:59.999+00',
      '12026-12-04 15:09:21+00', // five-digit year
      '2026-12-04 15:09:21.1234567+00', // seven digits of fraction
      '2026-12-04 15:09:21.+00',
      '2026-12-04 15:09:21',
      '2026-12-04 15:09:21.123456',
      '2026-12-04 15:09:21Z',
      '2026-12-04 15:09:21+0530',
      '2026-12-04 15:09:21+05:3',
      '1900-01-01 00:00:00+00:19:32 BC', // an offset of three fields, then text
      '2026-12-04 15:09:21+05:30:15:00',
      '2026-1x-04 15:09:21+00',
      '2026-12-04 15:09:2x+00',
      '2026-12-04 15:09:21+0x',
      '2026-12-04',
      '',
      'not a date at all, not at all',
    ]) {
      expectSame(text);
    }
  });

  it("keeps pg's parsers for every other type", () => {
    expect(typeParsers.getTypeParser(TIMESTAMPTZ_OID, 'text')).toBe(parseTimestamptz);
    expect(typeParsers.getTypeParser(TIMESTAMPTZ_OID)).toBe(parseTimestamptz);
    for (const oid of [16, 20, 23, 25, 114, 1082, 1114, 2950, 3802]) {
      expect(typeParsers.getTypeParser(oid, 'text')).toBe(pg.types.getTypeParser(oid, 'text'));
    }
    expect(typeParsers.getTypeParser(TIMESTAMPTZ_OID, 'binary')).toBe(
      pg.types.getTypeParser(TIMESTAMPTZ_OID, 'binary'),
    );
  });
});

describe('timestamps read through createDb', () => {
  let database: TestDatabase;
  let db: Db;
  let plain: pg.Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDb({ url: database.url, poolMax: 1 });
    plain = new pg.Client({ connectionString: database.url });
    await plain.connect();
  });
  afterAll(async () => {
    await plain.end();
    await db.destroy();
    await database.drop();
  });

  // Zones whose offsets have minutes, and, in 1900, seconds (Amsterdam's +00:19:32).
  it.each(['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Asia/Kathmandu', 'Europe/Amsterdam', 'Pacific/Kiritimati'])(
    'are the instants Postgres holds, in the session time zone %s',
    async (zone) => {
      const query = `select value from (values
          (timestamptz '2026-06-21 10:00:00.123+00'), (timestamptz '2026-12-04 15:09:21.588515+00'), (timestamptz '1900-01-01 00:00:00+00'),
          (timestamptz '0099-12-31 23:59:59+00'), (timestamptz '0044-03-15 12:00:00+00 BC'),
          (timestamptz '2000-02-29 12:00:00.5+00'), (timestamptz 'infinity'), (timestamptz '-infinity'),
          (timestamptz '9999-12-31 23:59:59.999999+00'), (null)
        ) as t(value)`;
      const ours = await db.connection().execute(async (connection) => {
        await sql`select set_config('TimeZone', ${zone}, false)`.execute(connection);
        return (await sql.raw<{ value: Date | number | null }>(query).execute(connection)).rows.map((row) => row.value);
      });
      await plain.query(`select set_config('TimeZone', $1, false)`, [zone]);
      const theirs = (await plain.query<{ value: Date | number | null }>(query)).rows.map((row) => row.value);
      expect(ours.map((value) => (value instanceof Date ? value.getTime() : value))).toEqual(
        theirs.map((value) => (value instanceof Date ? value.getTime() : value)),
      );
      expect(ours.filter((value) => value instanceof Date)).toHaveLength(7);
    },
  );
});
