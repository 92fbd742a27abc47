/**
 * A scenario's ratios to its baseline, the baseline loaded just before the scenario and again
 * just after it: against the mean of the two, so that a baseline getting faster or slower
 * over a group of scenarios (a machine's speed drifts; a server that sat idle warms up) moves
 * each scenario's ratio as little as it can.
 */

/** What a ratio needs of one load. */
export interface Load {
  requestsPerSecond: number;
  /** µs of server CPU per request served, undefined without /proc. */
  cpuPerRequest: number | undefined;
}

const mean = (a: number, b: number) => (a + b) / 2;

/**
 * `requests`: the scenario's req/s over the baseline's; `cpu`: the baseline's CPU per request
 * over the scenario's (1 is "as cheap as the baseline"), undefined when a load has no CPU time.
 */
export function bracketedRatios(
  scenario: Load,
  before: Load,
  after: Load,
): { requests: number; cpu: number | undefined } {
  const requests = scenario.requestsPerSecond / mean(before.requestsPerSecond, after.requestsPerSecond);
  const cpu =
    scenario.cpuPerRequest !== undefined && before.cpuPerRequest !== undefined && after.cpuPerRequest !== undefined
      ? mean(before.cpuPerRequest, after.cpuPerRequest) / scenario.cpuPerRequest
      : undefined;
  return { requests, cpu };
}
