import { availableParallelism } from 'node:os';
import { mergeConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.shared.ts';

/**
 * At least two test files at a time (vitest's default is one fewer than the cores: one on
 * two). This package's files, the longest of the suite, spend much of their time waiting on
 * timers, sockets and the processes they start: one at a time left a core idle once the
 * other packages were done. `expect.poll` waits up to 10 s, not 1: a loaded machine is slow
 * to show a change.
 */
export default mergeConfig(packageTestConfig('server'), {
  test: {
    setupFiles: ['./test/setup-error-observations.ts'],
    maxWorkers: Math.max(2, availableParallelism() - 1),
    expect: { poll: { timeout: 10_000 } },
  },
});
