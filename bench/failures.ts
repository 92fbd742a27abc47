/** What `failures` reads of one autocannon load. */
export interface LoadCounts {
  non2xx: number;
  /** Every failed request that got no answer, timeouts included (autocannon counts them here too). */
  errors: number;
  timeouts: number;
}

/**
 * What failed in one or more loads, by kind: the count, and the text for a progress line
 * ("" when nothing failed). Without the kinds, a 5xx and a reset socket read alike.
 */
export function failures(loads: LoadCounts[]): { count: number; text: string } {
  const sum = (pick: (load: LoadCounts) => number) => loads.reduce((total, load) => total + pick(load), 0);
  const kinds: [string, number][] = [
    ['non-2xx', sum((load) => load.non2xx)],
    ['socket errors', sum((load) => load.errors - load.timeouts)],
    ['timeouts', sum((load) => load.timeouts)],
  ];
  const count = kinds.reduce((total, [, n]) => total + n, 0);
  const named = kinds.filter(([, n]) => n > 0).map(([kind, n]) => `${n} ${kind}`);
  return { count, text: count ? ` (${count} failed!: ${named.join(', ')})` : '' };
}
