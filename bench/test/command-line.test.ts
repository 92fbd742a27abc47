import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const run = fileURLToPath(new URL('../run.ts', import.meta.url));
const bench = (...args: string[]) => spawnSync(process.execPath, [run, ...args], { encoding: 'utf8', timeout: 20_000 });

// Each test starts the command up to eight times, one after another (a Node start each): on a
// loaded two-core machine (every package's tests at once) that outlasts the default 30 s.
describe('pnpm bench command line', { timeout: 120_000 }, () => {
  it('prints its usage for --help and -h, and starts nothing', () => {
    for (const flag of ['--help', '-h']) {
      const result = bench(flag);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(
        /^Usage: pnpm bench \[--duration <seconds>\] \[--rounds <n>\] \[--connections <n>\] \[--only <text>\]/,
      );
      expect(result.stderr).toBe('');
    }
  });

  it('refuses unknown options and bad values in one line, without a stack trace', () => {
    const cases: [string[], RegExp][] = [
      [['--nope'], /^pnpm bench: Unknown option '--nope' \(see pnpm bench --help\)\n$/],
      [['--duration'], /^pnpm bench: Option '--duration <value>' argument missing/],
      [['--duration', '0'], /^pnpm bench: --duration must be a whole number from 1 to 3600/],
      [['--rounds', '1.5'], /^pnpm bench: --rounds must be a whole number from 1 to 100/],
      [['--connections', 'many'], /^pnpm bench: --connections must be a whole number from 1 to 10000/],
      [['fast'], /^pnpm bench: Unexpected argument 'fast'/],
      [['--only', ' '], /^pnpm bench: --only needs the text of a scenario name/],
      [['--only'], /^pnpm bench: Option '--only <value>' argument missing/],
    ];
    for (const [args, message] of cases) {
      const result = bench(...args);
      expect({ args, status: result.status }).toEqual({ args, status: 2 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stdout).toBe('');
    }
  });
});
