import { describe, expect, it } from 'vitest';
import { isoTime } from '../src/infra/iso-time.ts';

describe('isoTime', () => {
  it('writes what toISOString writes, over the years 1000 to 9999', () => {
    const first = Date.UTC(1000, 0, 1);
    const last = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    let seed = 5;
    // A small deterministic generator: the same instants on every run.
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    for (let i = 0; i < 200_000; i++) {
      const date = new Date(first + Math.floor(random() * (last - first + 1)));
      if (isoTime(date) !== date.toISOString()) expect.fail(`${date.getTime()}: ${isoTime(date)}`);
    }
    // Each field at its ends, leap days, the range's ends.
    for (const time of [
      first,
      last,
      Date.UTC(2000, 1, 29, 23, 59, 59, 999),
      Date.UTC(1900, 1, 28, 0, 0, 0, 1),
      Date.UTC(2026, 11, 31, 23, 59, 59, 999),
      Date.UTC(2027, 0, 1),
      0,
    ]) {
      expect(isoTime(new Date(time))).toBe(new Date(time).toISOString());
    }
  });

  it('writes each time of a day, and of days taken in turn, with its own date', () => {
    // The date of the day last written is kept: times of one day, then of others in turn
    // (before 1970 too, and across a year's end), must each carry their own.
    const days = [Date.UTC(2026, 11, 4), Date.UTC(1969, 11, 31), Date.UTC(2027, 0, 1), Date.UTC(2024, 1, 29)];
    for (let ofDay = 0; ofDay < 86_400_000; ofDay += 997) {
      for (const day of ofDay % 2 === 0 ? days : [days[0] as number]) {
        const date = new Date(day + ofDay);
        if (isoTime(date) !== date.toISOString()) expect.fail(`${date.getTime()}: ${isoTime(date)}`);
      }
    }
    for (const time of [Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2026, 11, 31)]) {
      expect(isoTime(new Date(time))).toBe(new Date(time).toISOString());
    }
  });

  it('leaves other years to toISOString, and an invalid date to its RangeError', () => {
    for (const time of [
      Date.UTC(999, 11, 31, 23, 59, 59, 999),
      Date.UTC(10_000, 0, 1),
      -62_198_755_200_000,
      8.64e15,
      -8.64e15,
    ]) {
      expect(isoTime(new Date(time))).toBe(new Date(time).toISOString());
    }
    const yearFifty = new Date(0);
    yearFifty.setUTCFullYear(50);
    expect(isoTime(yearFifty)).toBe('0050-01-01T00:00:00.000Z');
    expect(() => isoTime(new Date(Number.NaN))).toThrow(RangeError);
  });
});
