import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { repoRoot } from '@app/db';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../src/config.ts';

const envExample = readFileSync(path.join(repoRoot, '.env.example'), 'utf8');
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

/** Set (`VAR=`) or shown commented out (`# VAR=`). */
function envExampleVariables(text: string): string[] {
  return [...text.matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map((match) => match[1] as string);
}

/** The backticked names in the first column of the table under "## Configuration". */
function readmeTableVariables(text: string): string[] {
  const lines = text.split('\n');
  const heading = lines.indexOf('## Configuration');
  const nextHeading = lines.findIndex((line, i) => i > heading && line.startsWith('## '));
  const section = lines.slice(heading + 1, nextHeading === -1 ? undefined : nextHeading);
  const start = section.findIndex((line) => line.startsWith('|'));
  if (heading === -1 || start === -1) throw new Error('README.md has no table under "## Configuration"');
  const end = section.findIndex((line, i) => i > start && !line.startsWith('|'));
  const rows = section.slice(start + 2, end === -1 ? undefined : end); // after the header and its |---| line
  return rows.flatMap((row) =>
    [...(row.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1] as string),
  );
}

/** Empty lists when `listed` names each variable the config reads exactly once. */
function compareWithSchema(listed: string[]) {
  return {
    missing: CONFIG_VARIABLES.filter((name) => !listed.includes(name)),
    unknown: listed.filter((name) => !CONFIG_VARIABLES.includes(name)),
    listedTwice: listed.filter((name, i) => listed.indexOf(name) !== i),
  };
}

const exactly = { missing: [], unknown: [], listedTwice: [] };

describe('the documentation of the configuration', () => {
  it('reads enough variables for the checks below to mean something', () => {
    expect(CONFIG_VARIABLES.length).toBeGreaterThan(15);
  });

  it('.env.example lists every variable the config reads, and nothing else', () => {
    expect(compareWithSchema(envExampleVariables(envExample))).toEqual(exactly);
  });

  it("the README's configuration table lists every variable the config reads, and nothing else", () => {
    expect(compareWithSchema(readmeTableVariables(readme))).toEqual(exactly);
  });

  it('.env.example is itself a valid configuration', () => {
    const result = loadConfig(parseEnv(envExample));
    expect(result.ok ? [] : result.problems).toEqual([]);
  });
});
