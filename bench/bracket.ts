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

/**
 * The order of round `round` (1 to `rounds`): the scenarios that have a baseline, in their
 * groups (consecutive scenarios of one baseline, loaded between loads of it), each group
 * turned by an even share of its length from one round to the next. A scenario's place in its
 * group matters (the first after the group's warm-up, or right after another server's load,
 * reads differently): turned, no scenario holds the same place in every round, and the median
 * of its rounds is not one place's.
 */
export function roundOrder<T extends { baseline?: string }>(
  scenarios: readonly T[],
  round: number,
  rounds: number,
): T[] {
  const groups: T[][] = [];
  for (const scenario of scenarios) {
    if (scenario.baseline === undefined) continue;
    const group = groups.at(-1);
    if (group?.[0]?.baseline === scenario.baseline) group.push(scenario);
    else groups.push([scenario]);
  }
  return groups.flatMap((group) => {
    const turn = Math.floor(((round - 1) * group.length) / rounds) % group.length;
    return [...group.slice(turn), ...group.slice(0, turn)];
  });
}

/**
 * The scenarios of a round's order (`roundOrder`) that are their server's first load in their
 * group. Every server sits idle while the other groups run, and a server that sat idle
 * answers its first seconds of load slower: the baseline's first load of a group follows a
 * warm-up, and so does each of these. Without it the app's first scenario of a group met its
 * slow seconds and the baseline did not: with three rounds and the turns of `roundOrder`, the
 * same scenario could be that one in two rounds of three, and its median one of those loads.
 */
export function firstLoadsOfTheirServers<T extends { baseline?: string }>(
  order: readonly T[],
  serverOf: (scenario: T) => string,
): Set<T> {
  const first = new Set<T>();
  let group: string | undefined;
  let loaded = new Set<string>();
  for (const scenario of order) {
    if (scenario.baseline !== group) {
      group = scenario.baseline;
      loaded = new Set();
    }
    const server = serverOf(scenario);
    if (loaded.has(server)) continue;
    loaded.add(server);
    first.add(scenario);
  }
  return first;
}
