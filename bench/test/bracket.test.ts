import { describe, expect, it } from 'vitest';
import { bracketedRatios } from '../bracket.ts';

describe('a scenario against the baseline loaded before and after it', () => {
  it('compares with the mean of the two loads, for req/s and for CPU', () => {
    const ratios = bracketedRatios(
      { requestsPerSecond: 900, cpuPerRequest: 500 },
      { requestsPerSecond: 800, cpuPerRequest: 550 },
      { requestsPerSecond: 1000, cpuPerRequest: 450 },
    );
    expect(ratios.requests).toBeCloseTo(1.0);
    expect(ratios.cpu).toBeCloseTo(1.0);
  });

  it('is not flattered by a slow load before it when the load after is fast', () => {
    // Against the load before alone, this scenario would read 1.25x.
    const ratios = bracketedRatios(
      { requestsPerSecond: 1000, cpuPerRequest: 400 },
      { requestsPerSecond: 800, cpuPerRequest: 500 },
      { requestsPerSecond: 1200, cpuPerRequest: 300 },
    );
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
