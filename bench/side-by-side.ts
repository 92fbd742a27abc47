/**
 * A scenario and its baseline loaded at the same time, their two servers pinned to the same
 * CPU: the scheduler shares that core between them, so whatever the machine does meanwhile (a
 * neighbour taking the core, the clock slowing) falls on both alike, and their CPU per request
 * is compared within the same seconds. On a shared two-core machine the CPU per request of
 * one server moved by a third from one load to the next, and a ratio of loads taken one after
 * the other with it; side by side the ratio held within a few hundredths (bench/README.md).
 */

/** What a side-by-side ratio needs of one server's load. */
export interface SideLoad {
  /** Requests it answered during the load. */
  requests: number;
  /** Nanoseconds of CPU its process used during the load, undefined without /proc. */
  cpuNs: number | undefined;
}

/**
 * The baseline's CPU per request over the scenario's (1 is "as cheap as the baseline", 0.5
 * "twice the CPU per request"), or undefined when either has no CPU time or answered nothing.
 */
export function sideBySideRatio(scenario: SideLoad, baseline: SideLoad): number | undefined {
  if (scenario.cpuNs === undefined || baseline.cpuNs === undefined) return undefined;
  if (scenario.requests <= 0 || baseline.requests <= 0 || scenario.cpuNs <= 0) return undefined;
  return baseline.cpuNs / baseline.requests / (scenario.cpuNs / scenario.requests);
}
