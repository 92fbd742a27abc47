/** What `--only` needs of a scenario: its name, the baseline it is compared with, the baseline it is. */
interface Named {
  name: string;
  baseline?: string;
  is?: string;
}

/**
 * `pnpm bench --only <text>`: the scenarios whose name contains `text` (in any case), with
 * the baselines they are compared with, in the order listed; none when nothing matches.
 */
export function chosen<S extends Named>(scenarios: S[], text: string): S[] {
  const wanted = text.toLowerCase();
  const named = scenarios.filter((scenario) => scenario.name.toLowerCase().includes(wanted));
  const baselines = new Set(named.map((scenario) => scenario.baseline));
  return scenarios.filter(
    (scenario) => named.includes(scenario) || (scenario.is !== undefined && baselines.has(scenario.is)),
  );
}
