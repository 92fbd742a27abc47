import { describe, expect, it } from 'vitest';
import { sideBySideRatio } from '../side-by-side.ts';

describe('a scenario loaded side by side with its baseline', () => {
  it('compares CPU per request, whatever share of the core each side got', () => {
    // The baseline answered three times as many requests with 1.5x the CPU: half the CPU per request.
    expect(sideBySideRatio({ requests: 1_000, cpuNs: 40e6 }, { requests: 3_000, cpuNs: 60e6 })).toBeCloseTo(0.5);
    expect(sideBySideRatio({ requests: 2_000, cpuNs: 40e6 }, { requests: 2_000, cpuNs: 40e6 })).toBe(1);
  });

  it('has no ratio without CPU times, or when a side answered nothing', () => {
    expect(sideBySideRatio({ requests: 1_000, cpuNs: undefined }, { requests: 1_000, cpuNs: 1e6 })).toBeUndefined();
    expect(sideBySideRatio({ requests: 1_000, cpuNs: 1e6 }, { requests: 1_000, cpuNs: undefined })).toBeUndefined();
    expect(sideBySideRatio({ requests: 0, cpuNs: 1e6 }, { requests: 1_000, cpuNs: 1e6 })).toBeUndefined();
    expect(sideBySideRatio({ requests: 1_000, cpuNs: 1e6 }, { requests: 0, cpuNs: 0 })).toBeUndefined();
    expect(sideBySideRatio({ requests: 1_000, cpuNs: 0 }, { requests: 1_000, cpuNs: 1e6 })).toBeUndefined();
  });
});
