import { mergeConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.shared.ts';

/**
 * Two test files at a time: vitest's default on two cores is one, and this package's files
 * (the longest of the suite) spend much of their time waiting on timers, sockets and the
 * processes they start, so one at a time left a core idle once the other packages were done.
 * `expect.poll` waits up to 10 s, not 1: a loaded machine is slow to show a change.
 */
export default mergeConfig(packageTestConfig('server'), {
  test: {
    setupFiles: ['./test/setup-error-observations.ts'],
    maxWorkers: 2,
    expect: { poll: { timeout: 10_000 } },
  },
});
