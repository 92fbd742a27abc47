/**
 * The rules of docs/architecture.md, checked on the sources: which room may import which,
 * and who may read the environment. A failure names the file, the import and the rule.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src/', import.meta.url));

interface SourceFile {
  /** Relative to src/, with forward slashes: `modules/notes/notes.service.ts`. */
  file: string;
  text: string;
  /** Relative imports, resolved relative to src/ (`errors/index.ts`); package imports as written. */
  imports: string[];
}

function sourceFiles(dir = src): SourceFile[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    if (!/\.(ts|js)$/.test(entry.name)) return []; // main.js, the entry, is JavaScript
    const text = readFileSync(full, 'utf8');
    const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((match) => match[1] as string);
    const imports = specifiers.map((specifier) =>
      specifier.startsWith('.')
        ? path
            .relative(src, path.resolve(path.dirname(full), specifier))
            .split(path.sep)
            .join('/')
        : specifier,
    );
    return [{ file: path.relative(src, full).split(path.sep).join('/'), text, imports }];
  });
}

/** The room a file (or a resolved import) belongs to: its top folder under src/, or the file's name. */
function room(file: string): string {
  const [first, second] = file.split('/');
  return second === undefined ? (first as string).replace(/\.(ts|js)$/, '') : (first as string);
}

const files = sourceFiles();

function violations(rule: (from: SourceFile, target: string) => boolean): string[] {
  return files.flatMap((from) =>
    from.imports.filter((target) => rule(from, target)).map((t) => `${from.file} -> ${t}`),
  );
}

const TRANSPORTS = new Set(['trpc', 'rest', 'http', 'app', 'main', 'server']);

describe('architecture (docs/architecture.md)', () => {
  it('finds the sources it checks', () => {
    expect(files.length).toBeGreaterThan(40);
    expect(files.some((f) => f.file.startsWith('modules/'))).toBe(true);
    expect(files.some((f) => f.file === 'main.js')).toBe(true);
  });

  it("the entry imports Node's own modules and server.ts only (anything else would load before the compile cache is on)", () => {
    const found = violations(
      (from, target) => room(from.file) === 'main' && target !== 'server.ts' && !target.startsWith('node:'),
    );
    expect(found).toEqual([]);
  });

  it('module services and schemas never import a transport: a module is adapted by its router file only', () => {
    const found = violations(
      (from, target) => room(from.file) === 'modules' && !isAdapter(from.file) && TRANSPORTS.has(room(target)),
    );
    expect(found).toEqual([]);
  });

  it('infra imports nothing of the app above it (no module, transport, services or errors)', () => {
    const allowed = new Set(['infra', 'config', 'i18n']);
    const found = violations(
      (from, target) => room(from.file) === 'infra' && isLocal(target) && !allowed.has(room(target)),
    );
    expect(found).toEqual([]);
  });

  it('the error room depends on infra and i18n only: every room may use it, it uses none of them', () => {
    const found = violations(
      (from, target) =>
        room(from.file) === 'errors' && isLocal(target) && !['errors', 'infra', 'i18n'].includes(room(target)),
    );
    expect(found).toEqual([]);
  });

  it('i18n imports nothing of the app: the catalogues and the language rules stand alone', () => {
    const found = violations(
      (from, target) => room(from.file) === 'i18n' && isLocal(target) && room(target) !== 'i18n',
    );
    expect(found).toEqual([]);
  });

  it('modules never import the app, main, or the process', () => {
    const found = violations(
      (from, target) =>
        room(from.file) === 'modules' && isLocal(target) && ['app', 'main', 'server', 'startup'].includes(room(target)),
    );
    expect(found).toEqual([]);
  });

  it('the transports do not import each other, except REST running the tRPC procedures', () => {
    const allowed: Record<string, string[]> = { rest: ['trpc'], trpc: [], http: [] };
    const found = violations((from, target) => {
      const fromRoom = room(from.file);
      const targetRoom = room(target);
      const permitted = allowed[fromRoom];
      if (!permitted || !isLocal(target) || targetRoom === fromRoom) return false;
      return ['trpc', 'rest', 'http'].includes(targetRoom) && !permitted.includes(targetRoom);
    });
    expect(found).toEqual([]);
  });

  it('nothing but the config module reads process.env', () => {
    const readers = files
      .filter(
        (f) => room(f.file) !== 'config' && /process\.env\b/.test(f.text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')),
      )
      .map((f) => f.file);
    expect(readers).toEqual([]);
  });

  it('times are written by isoTime alone (toISOString costs several times as much)', () => {
    const writers = files
      .filter(
        (f) =>
          f.file !== 'infra/iso-time.ts' && /\.toISOString\(/.test(f.text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')),
      )
      .map((f) => f.file);
    expect(writers).toEqual([]);
  });
});

/** A module's one adapter to the transports: its tRPC/REST router (plain routes live in http/). */
function isAdapter(file: string): boolean {
  return file.endsWith('.router.ts');
}

function isLocal(target: string): boolean {
  return !target.startsWith('@') && !target.startsWith('node:') && /\.(ts|js|json)$/.test(target);
}
