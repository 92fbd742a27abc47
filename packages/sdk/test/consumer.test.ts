/**
 * The SDK as a frontend in another repository gets it: `pnpm pack` (which builds it), then
 * `npm install` of the tarball into a fresh project outside the workspace that has nothing
 * but `typescript`. The project type-checks correct and wrong use, runs against a live
 * server, and bundles for the browser without any server code.
 */

import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnCommand, startTestServer, type TestApp } from '@app/server/testing';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const sdkDir = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(sdkDir, 'test/fixtures');
const typescriptVersion = (createRequire(import.meta.url)('typescript/package.json') as { version: string }).version;

/**
 * Compiler settings of two kinds of frontend: as strict as TypeScript gets (declarations
 * checked too: tRPC's need the `Disposable` types), and lax (a bundler's defaults).
 */
const STRICT = {
  target: 'es2022',
  lib: ['es2022', 'dom', 'esnext.disposable'],
  module: 'nodenext',
  moduleResolution: 'nodenext',
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noPropertyAccessFromIndexSignature: true,
  noImplicitOverride: true,
  verbatimModuleSyntax: true,
  skipLibCheck: false,
};
const LOOSE = {
  target: 'es2020',
  lib: ['es2020', 'dom'],
  module: 'esnext',
  moduleResolution: 'bundler',
  strict: false,
  skipLibCheck: true,
};

let project: string;

async function tsc(config: object, files: string[], emit?: string): Promise<{ ok: boolean; errors: string[] }> {
  const name = `tsconfig.${Math.random().toString(36).slice(2)}.json`;
  const compilerOptions = emit ? { ...config, outDir: emit } : { ...config, noEmit: true };
  writeFileSync(join(project, name), JSON.stringify({ compilerOptions, files }));
  try {
    await run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', name, '--pretty', 'false'], {
      cwd: project,
    });
    return { ok: true, errors: [] };
  } catch (error) {
    const output = (error as { stdout?: string }).stdout ?? String(error);
    return { ok: false, errors: output.split('\n').filter((line) => line.includes('error TS')) };
  }
}

function markedLines(file: string): string[] {
  return readFileSync(join(fixtures, file), 'utf8')
    .split('\n')
    .flatMap((line, index) => (/\/\/ error: /.test(line) ? [`${file}:${index + 1}`] : []));
}

describe('the packed SDK in a project outside the workspace', () => {
  let tarball: string;
  let server: TestApp & { url: string };

  beforeAll(async () => {
    project = mkdtempSync(join(tmpdir(), 'sdk-consumer-'));
    const packs = join(project, 'packs');
    mkdirSync(packs);
    await run('pnpm', ['pack', '--pack-destination', packs], { cwd: sdkDir });
    const [file] = readdirSync(packs).filter((name) => name.endsWith('.tgz'));
    if (!file) throw new Error('pnpm pack wrote no tarball');
    tarball = join(packs, file);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2),
    );
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', `typescript@${typescriptVersion}`, tarball],
      { cwd: project },
    );
    for (const file of ['usage.ts', 'misuse.ts']) cpSync(join(fixtures, file), join(project, file));
    server = await startTestServer();
  }, 240_000);

  afterAll(async () => {
    await server?.close();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it('holds only the build, a README and a license, and depends on nothing but the tRPC client', () => {
    const manifest = JSON.parse(readFileSync(join(project, 'node_modules/@app/sdk/package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['@trpc/client', '@trpc/server']);
    expect(manifest.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(manifest.exports['.']).toEqual({
      types: './dist/index.d.ts',
      import: './dist/index.js',
      default: './dist/index.js',
    });
    const installed = readdirSync(join(project, 'node_modules/@app/sdk'), { recursive: true }).map(String).sort();
    expect(installed.filter((file) => !file.startsWith('dist'))).toEqual(['LICENSE', 'README.md', 'package.json']);
    expect(installed.filter((file) => file.startsWith('dist/') && !/\.(js|d\.ts)$/.test(file))).toEqual([]);
    // Nothing else was installed: no server, database or web framework packages.
    const top = readdirSync(join(project, 'node_modules')).filter((name) => !name.startsWith('.'));
    expect(top.sort()).toEqual(['@app', '@trpc', 'typescript']);
  });

  it('has declarations that import nothing from the server, and name the JavaScript they sit beside', () => {
    const dist = join(project, 'node_modules/@app/sdk/dist');
    for (const file of readdirSync(dist).filter((name) => name.endsWith('.d.ts'))) {
      const imports = [...readFileSync(join(dist, file), 'utf8').matchAll(/from '([^']+)'|import\("([^"]+)"\)/g)].map(
        (match) => match[1] ?? match[2],
      );
      // Relative ones name the emitted JavaScript, as any reader of declarations resolves them.
      for (const specifier of imports) expect(specifier, file).toMatch(/^(\.\/[\w.-]+\.js|@trpc\/(client|server))$/);
    }
  });

  it('type-checks correct use under strict and loose settings', async () => {
    expect(await tsc(STRICT, ['usage.ts'])).toEqual({ ok: true, errors: [] });
    expect(await tsc(LOOSE, ['usage.ts'])).toEqual({ ok: true, errors: [] });
  }, 60_000);

  it('rejects each misuse at its line', async () => {
    const { ok, errors } = await tsc(STRICT, ['misuse.ts']);
    expect(ok).toBe(false);
    const located = [
      ...new Set(
        errors.map(
          (line) =>
            line
              .match(/^(\w+\.ts)\((\d+),\d+\)/)
              ?.slice(1)
              .join(':') ?? line,
        ),
      ),
    ];
    const expected = markedLines('misuse.ts');
    expect(expected.length).toBeGreaterThanOrEqual(10);
    expect(located.sort()).toEqual(expected.sort());
  }, 60_000);

  it('runs in Node against a live server: sign up, sign in, create a note, list notes', async () => {
    const email = `consumer-${Date.now()}@example.com`;
    writeFileSync(
      join(project, 'live.ts'),
      `import { createClient, getAppErrorCode, memoryTokenStore } from '@app/sdk';

const api = createClient({ url: ${JSON.stringify(server.url)}, auth: { tokenStore: memoryTokenStore() } });
const email = ${JSON.stringify(email)};
const password = 'Consumer-pass-123';
await api.auth.register.mutate({ email, password, name: 'Consumer' });
await api.auth.logout.mutate();
let signedOut = '';
try {
  await api.notes.list.query({});
} catch (error) {
  signedOut = getAppErrorCode(error) ?? 'no app code';
}
const signedIn = await api.auth.login.mutate({ email, password });
const note = await api.notes.create.mutate({ title: 'From outside the repo' });
const page = await api.notes.list.query({ limit: 10 });
console.log(JSON.stringify({ signedOut, user: signedIn.user.email, note: note.title, listed: page.items.map((n) => n.id).includes(note.id) }));
`,
    );
    const compiled = await tsc(STRICT, ['live.ts'], 'out');
    expect(compiled).toEqual({ ok: true, errors: [] });
    const { stdout } = await run(process.execPath, [join(project, 'out/live.js')], { cwd: project });
    expect(JSON.parse(stdout)).toEqual({
      signedOut: 'UNAUTHORIZED',
      user: email,
      note: 'From outside the repo',
      listed: true,
    });
  }, 60_000);

  it('loads with require() from CommonJS code, against the same live server', async () => {
    writeFileSync(
      join(project, 'common.cjs'),
      `const { createClient, getAppErrorCode, memoryTokenStore } = require('@app/sdk');
const api = createClient({ url: ${JSON.stringify(server.url)}, auth: { tokenStore: memoryTokenStore() } });
api.users.me.query().then(
  () => console.log('signed in?'),
  (error) => console.log(getAppErrorCode(error)),
);
`,
    );
    const { stdout } = await run(process.execPath, [join(project, 'common.cjs')], { cwd: project });
    expect(stdout.trim()).toBe('UNAUTHORIZED');
  }, 60_000);

  it('bundles for the browser with the tRPC client only, no server code', async () => {
    writeFileSync(
      join(project, 'browser.ts'),
      `import { createClient, memoryTokenStore } from '@app/sdk';
export const api = createClient({ url: location.origin, auth: { tokenStore: memoryTokenStore() } });
`,
    );
    const result = await build({
      entryPoints: [join(project, 'browser.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      minify: true,
      write: false,
      metafile: true,
      absWorkingDir: project,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    const outside = inputs.filter(
      (input) => input !== 'browser.ts' && !/^node_modules\/(@app\/sdk|@trpc\/(client|server))\//.test(input),
    );
    expect(outside).toEqual([]);
    expect(inputs.some((input) => input.startsWith('node_modules/@app/sdk/dist/'))).toBe(true);
    const code = result.outputFiles[0]?.text ?? '';
    for (const server of ['fastify', 'kysely', 'ioredis', 'argon2', 'pino', 'nodemailer']) {
      expect(code, server).not.toContain(server);
    }
    console.log(`browser bundle: ${(code.length / 1024).toFixed(1)} KiB minified, ${inputs.length} modules`);
  }, 60_000);

  it('is what a frontend inside the workspace gets too: the built declarations, no server source', async () => {
    const config = join(fixtures, 'in-repo/tsconfig.json');
    const tscBin = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const { stdout } = await run(process.execPath, [tscBin, '-p', config, '--listFilesOnly'], { cwd: sdkDir });
    const files = stdout.split('\n').filter(Boolean);
    expect(files.some((file) => file.endsWith('/packages/sdk/dist/index.d.ts'))).toBe(true);
    expect(files.filter((file) => /\/(apps\/server|packages\/db|packages\/sdk\/src)\//.test(file))).toEqual([]);
    await run(process.execPath, [tscBin, '-p', config, '--pretty', 'false'], { cwd: sdkDir });
  }, 60_000);

  // Last: it rebuilds dist/, which the tests above read.
  it('is rebuilt by `pnpm dev` when a source changes', async () => {
    const dev = spawnCommand(process.execPath, [join(sdkDir, 'scripts/dev.ts')], { cwd: sdkDir, env: process.env });
    const builds = () => dev.output().match(/^sdk: ready in/gm)?.length ?? 0;
    const until = async (condition: () => boolean, what: string) => {
      for (let waited = 0; !condition(); waited += 100) {
        if (waited > 120_000) throw new Error(`timed out waiting for ${what}:\n${dev.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    try {
      await until(() => builds() === 1, 'the first build');
      const source = join(sdkDir, 'src/index.ts');
      const now = new Date();
      utimesSync(source, now, now);
      await until(() => builds() === 2, 'the rebuild');
      expect(dev.output()).toMatch(/sdk: building \(index\.ts changed\)/);
      expect(dev.output()).not.toMatch(/build failed/);
    } finally {
      dev.process.kill('SIGTERM');
    }
    expect(await dev.exited).toBe(0);
    // Two builds, each a fresh process loading the server's router to generate the types: on a
    // machine loaded by every package's tests at once (CI's second pass), a minute each.
  }, 300_000);
});
