import { globSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupTestDatabases } from '@app/db/testing';
import type { TestProject } from 'vitest/node';
import { OBSERVATIONS_DIR_ENV, unobservedErrors } from './helpers/error-observations.ts';

/**
 * The test databases, and the directory where test files report the app codes they saw
 * (helpers/error-observations.ts): after a full run, a documented code no test saw fails it.
 */
export default async function setup(project: TestProject) {
  const teardownDatabases = await setupTestDatabases('server');
  const observations = mkdtempSync(path.join(os.tmpdir(), 'server-error-observations-'));
  process.env[OBSERVATIONS_DIR_ENV] = observations;
  return async () => {
    try {
      if (project.config.testNamePattern) return; // a filtered run observes only part of the API
      const testFiles = globSync('test/**/*.test.ts', { cwd: project.config.root });
      const report = unobservedErrors(
        observations,
        testFiles.map((file) => path.join(project.config.root, file)),
      );
      if (report) throw new Error(report);
    } finally {
      rmSync(observations, { recursive: true, force: true });
      await teardownDatabases();
    }
  };
}
