import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** Compiles the fixtures with the real compiler; returns `file:line` of every error. */
async function compileErrors(): Promise<string[]> {
  try {
    await promisify(execFile)(process.execPath, [
      tsc,
      '--noEmit',
      '--pretty',
      'false',
      '-p',
      `${fixtures}tsconfig.json`,
    ]);
    return [];
  } catch (error) {
    const output = (error as { stdout: string }).stdout;
    const errors = [...output.matchAll(/(\w+\.ts)\((\d+),\d+\): error TS\d+/g)].map((m) => `${m[1]}:${m[2]}`);
    if (errors.length === 0) throw new Error(`tsc failed without a located error:\n${output}`);
    return errors;
  }
}

function markedLines(file: string): string[] {
  return readFileSync(`${fixtures}${file}`, 'utf8')
    .split('\n')
    .flatMap((line, index) => (/\/\/ error: /.test(line) ? [`${file}:${index + 1}`] : []));
}

describe('end-to-end types', () => {
  it('compile correct use cleanly and reject every wrong input and unknown procedure', async () => {
    const errors = await compileErrors();
    const expected = markedLines('misuse.ts');
    expect(expected.length).toBeGreaterThanOrEqual(7);
    expect([...new Set(errors)].sort()).toEqual(expected.sort());
  }, 60_000);
});
