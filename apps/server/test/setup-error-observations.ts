/** Runs in every test file (vitest setupFiles): see helpers/error-observations.ts. */
import { afterAll, afterEach, expect } from 'vitest';
import { takeViolations, writeObservations } from './helpers/error-observations.ts';

function failOnUndocumented(): void {
  const violations = takeViolations();
  if (violations.length > 0) throw new Error(violations.join('\n'));
}

afterEach(failOnUndocumented);

afterAll(() => {
  writeObservations(expect.getState().testPath ?? 'unknown test file');
  failOnUndocumented();
});
