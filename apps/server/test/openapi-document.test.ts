/**
 * The served /openapi.json as its readers use it: Redocly's linter (recommended rules, no
 * error and no warning), and a client generated from it (openapi-typescript + openapi-fetch)
 * that type-checks and works against a real server. Both run offline.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, registerAccount, startTestServer, type TestApp, uniqueEmail } from './helpers/index.ts';

const run = promisify(execFile);
const serverDir = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
/** Scratch directories inside the package (gitignored `.data/`), so their imports resolve its node_modules. */
const scratchRoot = path.join(serverDir, '.data');

/** test/fixtures/openapi-client/client.ts, seen from here (its own types exist only beside the generated schema). */
interface GeneratedClient {
  createApi(serverUrl: string): unknown;
  signedInFlow(api: unknown, email: string): Promise<unknown>;
  wrongPassword(api: unknown, email: string): Promise<unknown>;
  missingNote(api: unknown, accessToken: string): Promise<unknown>;
}

function scratchDir(prefix: string): string {
  mkdirSync(scratchRoot, { recursive: true });
  return mkdtempSync(path.join(scratchRoot, prefix));
}

describe('the OpenAPI document', () => {
  let server: TestApp & { url: string };
  let document: Record<string, unknown>;
  const scratch: string[] = [];
  beforeAll(async () => {
    server = await startTestServer();
    document = (await (await fetch(`${server.url}/openapi.json`)).json()) as Record<string, unknown>;
  });
  afterAll(async () => {
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
    await server?.close();
  });

  it('requires a body only where a field of it is required', async () => {
    type Body = { requestBody?: { required?: boolean } };
    const paths = document.paths as Record<string, Record<string, Body>>;
    expect(paths['/notes/{id}']?.patch?.requestBody?.required).toBe(false);
    expect(paths['/users/me']?.patch?.requestBody?.required).toBe(false);
    expect(paths['/notes']?.post?.requestBody?.required).toBe(true);
    expect(paths['/auth/login']?.post?.requestBody?.required).toBe(true);
    // As the server reads it: no body at all is an empty one.
    const account = await registerAccount(server.app);
    const patched = await fetch(`${server.url}/api/users/me`, { method: 'PATCH', headers: bearer(account) });
    expect(patched.status).toBe(200);
  });

  it('lists for each operation its own errors, per status', () => {
    const paths = document.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    const codes = (path: string, method: string, status: string) => {
      const response = paths[path]?.[method]?.responses[status] as
        | {
            description: string;
            content: { 'application/json': { schema: { properties: { appCode: { enum: string[] } } } } };
          }
        | undefined;
      return (
        response && { description: response.description, ...response.content['application/json'].schema.properties }
      );
    };
    expect(codes('/notes/{id}', 'get', '404')?.appCode.enum).toEqual(['NOT_FOUND']);
    expect(codes('/notes/{id}', 'get', '404')?.description).not.toMatch(/session/);
    expect(codes('/notes/{id}', 'get', '401')?.appCode.enum).toEqual([
      'SESSION_REVOKED',
      'TOKEN_EXPIRED',
      'UNAUTHORIZED',
    ]);
    expect(codes('/notes/{id}', 'get', '403')).toBeUndefined();
    expect(codes('/roles', 'post', '409')?.appCode.enum).toEqual(['ROLE_NAME_TAKEN']);
    expect(codes('/roles', 'post', '403')?.appCode.enum).toEqual(['PERMISSION_DENIED']);
    expect(codes('/auth/login', 'post', '401')?.appCode.enum).toEqual(['INVALID_CREDENTIALS']);
    expect(codes('/auth/login', 'post', '403')?.appCode.enum).toEqual(['ACCOUNT_ARCHIVED', 'ACCOUNT_DISABLED']);
    expect(codes('/auth/password/change', 'post', '401')?.appCode.enum).toContain('INVALID_CREDENTIALS');
    expect(JSON.stringify(document.externalDocs ?? null)).not.toMatch(/\/docs/);
    // Retry-After is documented where a code of the status carries it, and says which.
    const headers = (path: string, method: string, status: string) =>
      (paths[path]?.[method]?.responses[status] as { headers?: Record<string, { description: string }> } | undefined)
        ?.headers;
    expect(codes('/admin/test-email', 'post', '503')?.appCode.enum).toEqual([
      'DEPENDENCY_DOWN',
      'EMAIL_DELIVERY_FAILED',
    ]);
    expect(headers('/admin/test-email', 'post', '503')?.['Retry-After']?.description).toMatch(/with DEPENDENCY_DOWN\)/);
    expect(headers('/notes/{id}', 'get', '429')?.['Retry-After']?.description).toBe('Seconds to wait before retrying');
    expect(headers('/notes/{id}', 'get', '404')).toBeUndefined();
    // A download's answers that are not errors (before: only its 200).
    expect(Object.keys(paths['/files/{id}/content']?.get?.responses ?? {})).toEqual(
      expect.arrayContaining(['200', '206', '302', '304', '416']),
    );
    expect(headers('/files/{id}/content', 'get', '206')?.['Content-Range']?.description).toMatch(/bytes/);
  });

  it('passes Redocly lint with the recommended rules: no error, no warning', async () => {
    const dir = scratchDir('redocly-');
    scratch.push(dir);
    writeFileSync(path.join(dir, 'openapi.json'), JSON.stringify(document, null, 2));
    for (const file of ['redocly.yaml', '.redocly.lint-ignore.yaml']) {
      copyFileSync(path.join(serverDir, file), path.join(dir, file));
    }
    const cli = path.join(path.dirname(require.resolve('@redocly/cli/package.json')), 'bin', 'cli.js');
    const { stdout } = await run(process.execPath, [cli, 'lint', 'openapi.json', '--format=json'], {
      cwd: dir,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    }).catch((error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? error.stderr ?? '' }));
    const report = JSON.parse(stdout) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
    };
    const problems = report.problems.map(
      (problem) => `${problem.severity} ${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`,
    );
    expect(problems).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  });

  it('generates a client (openapi-typescript + openapi-fetch) that type-checks and works', async () => {
    const dir = scratchDir('openapi-client-');
    scratch.push(dir);
    const ast = await openapiTS(document as unknown as OpenAPI3, { silent: true });
    writeFileSync(path.join(dir, 'schema.ts'), astToString(ast));
    copyFileSync(path.join(serverDir, 'test/fixtures/openapi-client/client.ts'), path.join(dir, 'client.ts'));
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: path.join(serverDir, '../../tsconfig.base.json'),
        files: ['client.ts'],
      }),
    );
    const tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
    const typecheck = await run(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')]).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? String(error) }),
    );
    expect(typecheck.stdout).toBe('');

    const client = (await import(path.join(dir, 'client.ts'))) as GeneratedClient;
    const api = client.createApi(server.url);
    const email = uniqueEmail('generated');
    expect(await client.signedInFlow(api, email)).toEqual({
      email,
      name: 'Ada',
      noteTitle: 'From the generated client',
      deleted: true,
    });
    const account = await registerAccount(server.app);
    expect(await client.wrongPassword(api, account.email)).toMatchObject({
      status: 401,
      appCode: 'INVALID_CREDENTIALS',
      message: expect.any(String),
    });
    expect(await client.missingNote(api, account.accessToken)).toMatchObject({ status: 404, appCode: 'NOT_FOUND' });
  });
});
