import path from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The vitest config every package uses. With TEST_REPORT_DIR set (CI), results are also
 * written as JSON to `<dir>/<package>.json` for the closing "N passed, N failed" line.
 */
export function packageTestConfig(name: string, options: { globalSetup?: string[] } = {}) {
  const reportDir = process.env.TEST_REPORT_DIR;
  return defineConfig({
    test: {
      name,
      globalSetup: options.globalSetup ?? ['./test/global-setup.ts'],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      reporters: reportDir ? ['default', 'json'] : ['default'],
      ...(reportDir && { outputFile: { json: path.join(reportDir, `${name}.json`) } }),
    },
  });
}
