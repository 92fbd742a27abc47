/**
 * The output check in place (src/trpc/output-check.ts) answers as zod's parse does: the same
 * JSON or the same issues, on every kind it takes and on values that are wrong in every way
 * tried here; what it cannot take is left to zod. The real server's answers pass in place
 * (zod's parse, which copies, is not called), and the patterns it runs, written out, match
 * the same strings as zod's.
 */
import type { AnyTRPCProcedure } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { inPlaceCheck, outputParser, writeOutCountedRepeats } from '../src/trpc/output-check.ts';
import { appRouter } from '../src/trpc/router.ts';
import { type Account, bearer, buildTestApp, registerAccount, type TestApp } from './helpers/index.ts';

type Outcome = { json: string | undefined } | { issues: unknown };
const outcome = (run: () => unknown): Outcome => {
  try {
    return { json: JSON.stringify(run()) };
  } catch (error) {
    if (error instanceof z.ZodError) return { issues: error.issues };
    throw error;
  }
};

/** zod's parse and the check in place on one value: the same outcome; whether it passed in place. */
function compare(schema: z.ZodType, value: unknown): boolean {
  const parse = vi.fn((input: unknown) => schema.parse(input));
  const viaCheck = outcome(() => outputParser(schema, parse)(value));
  expect(viaCheck, JSON.stringify(value)).toEqual(outcome(() => schema.parse(value)));
  return parse.mock.calls.length === 0;
}

const ID = '0193a5b0-7c1d-7e2f-8a3b-4c5d6e7f8a9b';
const note = z.object({
  id: z.uuid(),
  title: z.string().min(1).max(5),
  count: z.number().int().min(0),
  done: z.boolean(),
  kind: z.enum(['a', 'b']),
  ok: z.literal(true),
  at: z.iso.datetime({ offset: true }),
  note: z.string().optional(),
  parent: z.uuid().nullable(),
  tags: z.array(z.string()).max(2),
  extra: z.unknown(),
  email: z.email(),
  nothing: z.null(),
});
const valid = () => ({
  id: ID,
  title: 'Hi',
  count: 3,
  done: false,
  kind: 'a',
  ok: true,
  at: '2026-12-03T06:30:00.000Z',
  note: 'n',
  parent: null,
  tags: ['x'],
  extra: { any: 'thing' },
  email: 'ada@example.com',
  nothing: null,
});

class Plain {
  id = ID;
}
const oddValues: unknown[] = [
  undefined,
  null,
  0,
  -0,
  1.5,
  -1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53,
  '',
  'Hello!',
  ' ',
  true,
  'a',
  'c',
  [],
  ['x', 'y', 'z'],
  [1],
  {},
  new Date(0),
  new Plain(),
  ID.toUpperCase(),
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
  `${ID}x`,
  ID.replace('7e2f', '0e2f'),
  '2026-12-03T06:30:00Z',
  '2026-12-03T06:30:00.000+01:00',
  '2026-02-30T06:30:00.000Z',
  '2026-12-03 06:30:00.000Z',
  'not an email',
];

describe('the output check in place', () => {
  it('passes a valid answer as it is, without calling zod', () => {
    const value = valid();
    const parse = vi.fn((input: unknown) => note.parse(input));
    expect(outputParser(note, parse)(value)).toBe(value);
    expect(parse).not.toHaveBeenCalled();
    expect(compare(note, valid())).toBe(true);
  });

  it('answers as zod does for every field set to each odd value', () => {
    let inPlace = 0;
    for (const key of Object.keys(valid())) {
      for (const odd of oddValues) {
        if (compare(note, { ...valid(), [key]: odd })) inPlace++;
      }
    }
    // Some odd values are valid for some fields (`extra` takes anything, an optional `note` undefined).
    expect(inPlace).toBeGreaterThan(oddValues.length);
  });

  it('leaves to zod an answer with a key to strip, missing, or out of order, and one not a plain object', () => {
    const { note: _optional, ...withoutOptional } = valid();
    expect(compare(note, withoutOptional)).toBe(true); // an optional key may be missing
    expect(compare(note, { ...valid(), note: undefined })).toBe(true);
    expect(compare(note, { ...valid(), secret: 'hash' })).toBe(false); // zod strips it: the copy answers
    const { id, ...rest } = valid();
    expect(compare(note, rest)).toBe(false); // refused
    expect(compare(note, { ...rest, id })).toBe(false); // the same keys in another order: zod's copy orders them
    expect(compare(note, Object.assign(Object.create(null), valid()))).toBe(true);
    const inherited = Object.assign(Object.create({ inherited: 1 }), valid());
    expect(compare(note, inherited)).toBe(false);
    expect(compare(note, [valid()])).toBe(false);
    const page = z.object({ items: z.array(note), nextCursor: z.uuid().nullable() });
    expect(compare(page, { items: [valid(), valid()], nextCursor: ID })).toBe(true);
    expect(compare(page, { items: [valid(), { ...valid(), count: -1 }], nextCursor: ID })).toBe(false);
  });

  it('takes an overwrite (trim, lower case) only when it leaves the value as it was', () => {
    const name = z.object({ name: z.string().trim().toLowerCase() });
    expect(compare(name, { name: 'ada' })).toBe(true);
    expect(compare(name, { name: ' Ada ' })).toBe(false);
    const piped = z.object({ email: z.string().trim().pipe(z.email()) });
    expect(compare(piped, { email: 'ada@example.com' })).toBe(true);
    expect(compare(piped, { email: ' ada@example.com' })).toBe(false);
    expect(compare(piped, { email: 'ada' })).toBe(false);
  });

  it('leaves to zod every schema with a part that may change the answer or that it does not read', () => {
    const notInPlace = [
      z.string().transform((value) => value.length),
      z.string().default('x'),
      z.union([z.string(), z.number()]),
      z.string().refine((value) => value !== 'x'),
      z.record(z.string(), z.string()),
      z.date(),
      z.object({ a: z.string() }).strict(),
      z.looseObject({ a: z.string() }),
      z.object({ a: z.string().exactOptional() }),
      z.coerce.string(),
      z.object({ a: z.string() }).readonly(),
      z.array(z.string().catch('x')),
    ];
    for (const schema of notInPlace) expect(inPlaceCheck(schema), schema._zod.def.type).toBeUndefined();
    // still answered, by zod
    expect(compare(z.object({ a: z.string().default('x') }), {})).toBe(false);
  });

  it("passes a check's refusal and a check that throws to zod", () => {
    const min = z.object({ n: z.number().min(2, { error: 'too small' }) });
    expect(compare(min, { n: 1 })).toBe(false);
    const throwing = z.object({ n: z.number() });
    const value = {
      get n(): number {
        throw new Error('getter');
      },
    };
    const parse = vi.fn((input: unknown) => throwing.parse(input));
    expect(() => outputParser(throwing, parse)(value)).toThrow('getter');
    expect(parse).toHaveBeenCalledTimes(1);
  });
});

describe('patterns with their counted repeats written out', () => {
  const uuid = z.regexes.uuid();
  const dateTime = z.iso.datetime({ offset: true })._zod.def.pattern as RegExp;

  it("write out zod's UUID and date-time patterns", () => {
    expect(writeOutCountedRepeats(uuid).source).not.toMatch(/\{\d+\}/);
    expect(writeOutCountedRepeats(uuid).source).toContain('[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-');
    expect(writeOutCountedRepeats(dateTime).source).toContain('\\d\\d\\d\\d-');
  });

  /** Every string one edit away from each sample (a character replaced, inserted or removed). */
  function nearby(samples: string[], alphabet: string): string[] {
    const strings = new Set(samples);
    for (const sample of samples) {
      for (let index = 0; index <= sample.length; index++) {
        strings.add(sample.slice(0, index) + sample.slice(index + 1));
        for (const char of alphabet) {
          strings.add(sample.slice(0, index) + char + sample.slice(index + 1));
          strings.add(sample.slice(0, index) + char + sample.slice(index));
        }
      }
    }
    return [...strings];
  }

  it("match the same strings as zod's (every string one edit away from valid ones)", () => {
    const uuids = [ID, ID.toUpperCase(), crypto.randomUUID(), '00000000-0000-0000-0000-000000000000'];
    const dates = ['2026-12-03T06:30:00.000Z', '2024-02-29T23:59:59+05:30', '2000-02-29T00:00:00.1-00:00'];
    for (const [pattern, samples, alphabet] of [
      [uuid, uuids, '0189abfAFgG-xZ '],
      [dateTime, dates, '0123459:+-.TZtz '],
    ] as const) {
      const written = writeOutCountedRepeats(pattern);
      for (const string of nearby([...samples], alphabet)) {
        expect(written.test(string), string).toBe(pattern.test(string));
      }
    }
  });

  /** Every string of up to `length` characters of `alphabet`. */
  function allStrings(alphabet: string, length: number): string[] {
    let strings = [''];
    const all = [''];
    for (let size = 1; size <= length; size++) {
      strings = strings.flatMap((prefix) => [...alphabet].map((char) => prefix + char));
      all.push(...strings);
    }
    return all;
  }

  it('read what they cannot be sure of as it is, and match the same strings on tricky sources', () => {
    const cases: [RegExp, string][] = [
      [/^a{3}$/, 'ab'],
      [/^\\d{2}$/, '\\d1'],
      [/^[a{2}]{2}$/, 'a{2}'],
      [/^(ab){2}$/, 'ab'],
      [/^a{2}?b$/, 'ab'],
      [/^a{1,3}$/, 'a,'],
      [/^.{3}$/s, 'a\n'],
      [/^[\]]{2}$/, ']a'],
      [/^x{0}y$/, 'xy'],
      // biome-ignore lint/correctness/noEmptyCharacterClassInRegex: `[^]` (any character) is a case under test
      [/^[^]{2}a$/, 'ab'],
      [/^a\{2}$/, 'a{2}'],
      [/^é{2}$/u, 'éa'],
      [/^\x41{2}$/, 'A1'],
      [/^[\d-]{2}$/i, '1-a'],
      [/^(?:a|b){2}c{2}$/, 'abc'],
      [/^(?<n>a)\k<n>{2}$/, 'a'],
      [/^a{2}$/gy, 'a'],
    ];
    for (const [pattern, alphabet] of cases) {
      const written = writeOutCountedRepeats(pattern);
      expect(written.flags).toBe(pattern.flags);
      for (const string of allStrings(alphabet, 5)) {
        pattern.lastIndex = 0;
        written.lastIndex = 0;
        expect(written.test(string), `${pattern} on ${JSON.stringify(string)} (as ${written})`).toBe(
          pattern.test(string),
        );
      }
    }
    expect(writeOutCountedRepeats(/^\x41{2}$/).source).toBe('^\\x41{2}$'); // an escape it does not read
    expect(writeOutCountedRepeats(/^(ab){2}$/).source).toBe('^(ab){2}$');
    expect(writeOutCountedRepeats(/^a{2}?b$/).source).toBe('^a{2}?b$');
  });
});

describe("the server's answers", () => {
  let t: TestApp;
  let alice: Account;
  const outputs = new Map<string, z.ZodType>();
  const parses = new Map<string, ReturnType<typeof vi.fn>>();

  beforeAll(async () => {
    // zod's parse of each output schema, watched before the procedures are first called
    // (call-procedure.ts takes each parser on its first call).
    for (const [path, procedure] of Object.entries(
      appRouter._def.procedures as unknown as Record<string, AnyTRPCProcedure>,
    )) {
      const output = (procedure._def as { output?: z.ZodType }).output;
      if (!output) continue;
      outputs.set(path, output);
      parses.set(path, vi.spyOn(output, 'parse') as unknown as ReturnType<typeof vi.fn>);
    }
    t = await buildTestApp();
    alice = await registerAccount(t.app);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await t?.close();
  });

  it('take every procedure with an output schema but four, whose schemas have a part it does not read', () => {
    const notInPlace = [...outputs].filter(([, schema]) => !inPlaceCheck(schema)).map(([path]) => path);
    expect(notInPlace.sort()).toEqual([
      'files.createUpload',
      'users.createMany',
      'users.deleteMany',
      'users.updateMany',
    ]);
  });

  it('pass in place: zod never copies them (REST and tRPC, signed in and not)', async () => {
    const as = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
      t.app.inject({ method, url, headers: bearer(alice), ...(payload && { payload }) });
    const created = (await as('POST', '/api/notes', { title: 'One', body: 'b' })).json();
    await as('POST', '/api/notes', { title: 'Two' });
    const calls = [
      await as('GET', '/api/notes'),
      await as('GET', '/api/notes?limit=1'),
      await as('GET', `/api/notes/${created.id}`),
      await as('PATCH', `/api/notes/${created.id}`, { title: 'Uno' }),
      await as('GET', '/api/users/me'),
      await as('GET', '/api/auth/sessions'),
      await t.app.inject({ method: 'GET', url: '/trpc/notes.list?input=%7B%7D', headers: bearer(alice) }),
      await t.app.inject({ method: 'GET', url: '/trpc/users.me,health.live?batch=1', headers: bearer(alice) }),
      await t.app.inject({ method: 'GET', url: '/api/health' }),
      await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { email: alice.email, password: alice.password },
      }),
      await as('DELETE', `/api/notes/${created.id}`),
    ];
    expect(calls.map((call) => call.statusCode)).toEqual(calls.map(() => 200));
    const copied = [...parses].filter(([, parse]) => parse.mock.calls.length > 0).map(([path]) => path);
    expect(copied).toEqual([]);
  });
});
