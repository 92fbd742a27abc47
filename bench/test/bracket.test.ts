import { describe, expect, it } from 'vitest';
import { bracketedRatios } from '../bracket.ts';

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
