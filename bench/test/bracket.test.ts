import { describe, expect, it } from 'vitest';
import { bracketedRatios, firstLoadsOfTheirServers, roundOrder } from '../bracket.ts';

describe('a scenario against the baseline loaded before and after it', () => {
  it.each([
    {
      when: 'the two loads move about it',
      before: { requestsPerSecond: 800, cpuPerRequest: 550 },
      after: { requestsPerSecond: 1000, cpuPerRequest: 450 },
      scenario: { requestsPerSecond: 900, cpuPerRequest: 500 },
    },
    {
      // Against the load before alone, this scenario would read 1.25x.
      when: 'a slow load before it is followed by a fast one',
      before: { requestsPerSecond: 800, cpuPerRequest: 500 },
      after: { requestsPerSecond: 1200, cpuPerRequest: 300 },
      scenario: { requestsPerSecond: 1000, cpuPerRequest: 400 },
    },
  ])('compares with the mean of the two loads, for req/s and for CPU, when $when', ({ scenario, before, after }) => {
    const ratios = bracketedRatios(scenario, before, after);
    expect(ratios.requests).toBeCloseTo(1.0);
    expect(ratios.cpu).toBeCloseTo(1.0);
  });

  it('reads "twice the CPU per request" as 0.5, and leaves the CPU ratio out without CPU times', () => {
    expect(
      bracketedRatios(
        { requestsPerSecond: 500, cpuPerRequest: 40 },
        { requestsPerSecond: 1000, cpuPerRequest: 20 },
        { requestsPerSecond: 1000, cpuPerRequest: 20 },
      ),
    ).toEqual({ requests: 0.5, cpu: 0.5 });
    const withoutProc = bracketedRatios(
      { requestsPerSecond: 500, cpuPerRequest: undefined },
      { requestsPerSecond: 1000, cpuPerRequest: 20 },
      { requestsPerSecond: 1000, cpuPerRequest: undefined },
    );
    expect(withoutProc).toEqual({ requests: 0.5, cpu: undefined });
  });
});

describe('the order of a round', () => {
  const scenarios = [
    { name: 'baseline A', is: 'A' },
    { name: 'baseline B', is: 'B' },
    { name: 'a1', baseline: 'A' },
    { name: 'a2', baseline: 'A' },
    { name: 'a3', baseline: 'A' },
    { name: 'b1', baseline: 'B' },
    { name: 'b2', baseline: 'B' },
    { name: 'a4', baseline: 'A' },
  ];
  const names = (round: number, rounds: number) => roundOrder(scenarios, round, rounds).map((s) => s.name);

  it('leaves the baselines out and keeps the groups in their places, the first round as listed', () => {
    expect(names(1, 3)).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'a4']);
  });

  it('puts each scenario of a group in each place once over as many rounds as the group has scenarios', () => {
    const rounds = [1, 2, 3].map((round) => names(round, 3).slice(0, 3));
    expect(rounds).toEqual([
      ['a1', 'a2', 'a3'],
      ['a2', 'a3', 'a1'],
      ['a3', 'a1', 'a2'],
    ]);
    for (const place of [0, 1, 2])
      expect(new Set(rounds.map((order) => order[place]))).toEqual(new Set(['a1', 'a2', 'a3']));
  });

  it('turns a group by an even share of its length when the rounds are fewer than its scenarios', () => {
    const six = Array.from({ length: 6 }, (_, i) => ({ name: `s${i + 1}`, baseline: 'A' }));
    const firsts = [1, 2, 3].map((round) => roundOrder(six, round, 3)[0]?.name);
    expect(firsts).toEqual(['s1', 's3', 's5']);
    expect(roundOrder(six, 2, 3)).toHaveLength(6);
  });

  it('turns a group of two in one round of three, and leaves a group of one alone', () => {
    expect([1, 2, 3].map((round) => names(round, 3).slice(3, 5))).toEqual([
      ['b1', 'b2'],
      ['b1', 'b2'],
      ['b2', 'b1'],
    ]);
    expect([1, 2, 3].map((round) => names(round, 3)[5])).toEqual(['a4', 'a4', 'a4']);
  });
});

describe("each server's first load of a group", () => {
  // The app serves two scenarios of each group, tRPC's own adapter one.
  const scenarios = [
    { name: 'baseline A', is: 'A', server: 'base' },
    { name: 'a-app-1', baseline: 'A', server: 'app' },
    { name: 'a-adapter', baseline: 'A', server: 'adapter' },
    { name: 'a-app-2', baseline: 'A', server: 'app' },
    { name: 'b-app', baseline: 'B', server: 'app' },
    { name: 'b-adapter', baseline: 'B', server: 'adapter' },
  ];
  const firsts = (round: number) => {
    const order = roundOrder(scenarios, round, 3);
    const first = firstLoadsOfTheirServers(order, (s) => s.server);
    return order.filter((s) => first.has(s)).map((s) => s.name);
  };

  it("is each server's first scenario in the group, whatever the group's turn, group by group", () => {
    // b-app counts again: a new group, though the app was loaded in the one before.
    expect(firsts(1)).toEqual(['a-app-1', 'a-adapter', 'b-app', 'b-adapter']);
    // Turned: the app's first load of group A is now its other scenario, after the adapter's.
    expect(firsts(2)).toEqual(['a-adapter', 'a-app-2', 'b-app', 'b-adapter']);
    expect(firsts(3)).toEqual(['a-app-2', 'a-adapter', 'b-adapter', 'b-app']);
  });
});
