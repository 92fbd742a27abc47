/**
 * Holds the OpenAPI document to what the tests see. Every test app records each REST error
 * response of the real procedures as (procedure, appCode):
 * - an app code its operation does not document fails the running test (setup-error-observations.ts);
 * - after a full run, the global teardown lists every documented code that no test observed.
 * Active when ERROR_OBSERVATIONS_DIR is set (the server's global setup sets it); each test
 * file writes what it observed there, so parallel workers never share a file.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AppErrorCode } from '../../src/errors/index.ts';
import { restOperationErrors } from '../../src/rest/rest-errors.ts';
import { restRouteTable } from '../../src/rest/rest-routes.ts';
import type { AppMeta } from '../../src/trpc/init.ts';
import { appRouter } from '../../src/trpc/router.ts';

export const OBSERVATIONS_DIR_ENV = 'ERROR_OBSERVATIONS_DIR';

interface Operation {
  /** `GET /api/notes/{id}` */
  label: string;
  documented: Set<AppErrorCode>;
}

/** Every REST operation of the real router, by procedure path, with the app codes its document lists. */
export function documentedOperations(): Map<string, Operation> {
  const operations = new Map<string, Operation>();
  for (const { method, path: procedurePath, procedure } of restRouteTable(appRouter, '')) {
    const openapiPath = (procedure._def.meta as AppMeta).openapi?.path;
    operations.set(procedurePath, {
      label: `${method} /api${openapiPath}`,
      documented: restOperationErrors(procedure),
    });
  }
  return operations;
}

let operations: Map<string, Operation> | undefined;
/** `POST /api/notes/:id` (Fastify's route) -> procedure path */
let routes: Map<string, string> | undefined;
const observed = new Map<string, Set<string>>();
let violations: string[] = [];

function record(procedurePath: string, appCode: string | undefined, status: number): void {
  const operation = operations?.get(procedurePath);
  if (!operation) return;
  const code = appCode ?? '(no appCode)';
  // Answered to a client that has gone (a 499): it reaches no one, so no operation documents it.
  if (code === 'CLIENT_CLOSED_REQUEST') return;
  const codes = observed.get(procedurePath) ?? new Set();
  observed.set(procedurePath, codes.add(code));
  if (!operation.documented.has(code as AppErrorCode)) {
    violations.push(
      `${procedurePath} (${operation.label}) answered ${status} ${code}, which its OpenAPI operation does not list: ` +
        'declare it (meta.errors, or declareErrors on the middleware that throws it)',
    );
  }
}

function appCodeOf(payload: unknown): string | undefined {
  if (typeof payload !== 'string') return undefined;
  try {
    const body = JSON.parse(payload) as { appCode?: unknown };
    return typeof body.appCode === 'string' ? body.appCode : undefined;
  } catch {
    return undefined;
  }
}

/** Records the error responses of `app`'s REST routes (before `app.ready()`). */
export function observeErrors(app: FastifyInstance): void {
  if (!process.env[OBSERVATIONS_DIR_ENV]) return;
  operations ??= documentedOperations();
  routes ??= new Map(restRouteTable(appRouter, '/api').map((route) => [`${route.method} ${route.url}`, route.path]));
  app.addHook('onSend', (request, reply, payload, done) => {
    if (reply.statusCode >= 400) {
      const procedurePath = routes?.get(`${request.method} ${request.routeOptions.url}`);
      if (procedurePath) record(procedurePath, appCodeOf(payload), reply.statusCode);
    }
    done(null, payload);
  });
}

/** The undocumented app codes observed since the last call. */
export function takeViolations(): string[] {
  const taken = violations;
  violations = [];
  return taken;
}

/** Writes what this test file observed (also when nothing): the mark that the file ran. */
export function writeObservations(testFile: string): void {
  const dir = process.env[OBSERVATIONS_DIR_ENV];
  if (!dir) return;
  const name = createHash('sha256').update(testFile).digest('hex').slice(0, 16);
  const entries = Object.fromEntries([...observed].map(([procedurePath, codes]) => [procedurePath, [...codes]]));
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ testFile, observed: entries }));
}

/**
 * After a run: a readable list of every documented app code that no test observed, or
 * undefined when each one was, or when some test file did not run (nothing to conclude).
 */
export function unobservedErrors(dir: string, allTestFiles: string[]): string | undefined {
  const seen = new Map<string, Set<string>>();
  const ran = new Set<string>();
  for (const file of readdirSync(dir)) {
    const { testFile, observed: entries } = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
      testFile: string;
      observed: Record<string, string[]>;
    };
    ran.add(path.resolve(testFile));
    for (const [procedurePath, codes] of Object.entries(entries)) {
      seen.set(procedurePath, new Set([...(seen.get(procedurePath) ?? []), ...codes]));
    }
  }
  if (!allTestFiles.every((file) => ran.has(path.resolve(file)))) return undefined;
  const lines: string[] = [];
  for (const [procedurePath, operation] of documentedOperations()) {
    const missing = [...operation.documented].filter((code) => !seen.get(procedurePath)?.has(code)).sort();
    if (missing.length > 0) lines.push(`  ${procedurePath} (${operation.label}): ${missing.join(', ')}`);
  }
  if (lines.length === 0) return undefined;
  return (
    'The OpenAPI document lists app codes that no test observed over REST. Add a test that gets each, ' +
    `or stop declaring it:\n${lines.join('\n')}`
  );
}
