import { fileURLToPath } from 'node:url';
import { mergeConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.shared.ts';

/**
 * `test/`: the dev server; `e2e/`: the built app in a real browser (Debian's Chromium),
 * served by the real server. One file at a time: one browser on the machine, and few
 * argon2 hashes at once.
 */
export default mergeConfig(packageTestConfig('web', { globalSetup: ['./e2e/global-setup.ts'] }), {
  // The SDK from its sources (as the e2e build does): the SDK's own tests rebuild its dist/ meanwhile.
  resolve: { alias: { '@app/sdk': fileURLToPath(new URL('../../packages/sdk/src/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts', 'e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    // A busy machine (CI runs the packages side by side on two cores) is slow to show a change.
    expect: { poll: { timeout: 10_000, interval: 100 } },
    hookTimeout: 120_000,
  },
});
