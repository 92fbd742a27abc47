// Reads the vitest JSON reports under the given folders and prints the closing line, after
// the name and first message line of each test that failed (the log above may be long).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const dir of process.argv.slice(2)) {
  let files = [];
  try {
    files = readdirSync(dir).filter((file) => file.endsWith('.json'));
  } catch {
    continue;
  }
  for (const file of files) {
    const report = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
    passed += report.numPassedTests;
    failed += report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
    skipped += report.numPendingTests + (report.numTodoTests ?? 0);
    for (const suite of report.testResults ?? []) {
      const where = `${path.basename(dir)}/${path.basename(file, '.json')}: ${path.basename(suite.name)}`;
      const failedTests = (suite.assertionResults ?? []).filter((test) => test.status === 'failed');
      for (const test of failedTests)
        failures.push(`${where} > ${test.fullName}\n    ${firstLine(test.failureMessages)}`);
      // A file that failed outside any test (an import, a hook): its message.
      if (suite.status === 'failed' && failedTests.length === 0)
        failures.push(`${where}\n    ${firstLine([suite.message])}`);
    }
  }
}
for (const failure of failures) console.log(`FAILED ${failure}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);

function firstLine(messages) {
  return (messages ?? []).join('\n').trim().split('\n')[0]?.slice(0, 300) ?? '';
}
