/**
 * Test databases: one cluster per test run (DATABASE_URL's server, or an embedded one),
 * one migrated template per package, and one clone of it per test file, so test files
 * run in parallel without seeing each other's rows.
 *
 *   globalSetup:  export default () => setupTestDatabases('server')
 *   a test file:  const database = await createTestDatabase(); ... await database.drop()
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createDb } from './client.ts';
import { startEmbeddedPostgres } from './embedded.ts';
import { migrateToLatest } from './migrate.ts';
import { repoRoot } from './paths.ts';
import { isProcessAlive } from './process-alive.ts';

const ADMIN_URL = 'TEST_DATABASE_ADMIN_URL';
const TEMPLATE = 'TEST_DATABASE_TEMPLATE';

export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withAdmin<T>(adminUrl: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withAdmin(adminUrl, async (client) => {
    await client.query(`alter database ${quote(name)} is_template false`).catch(() => {});
    await client.query(`drop database if exists ${quote(name)} with (force)`);
  });
}

/**
 * Where the pid in a database's name means something: this machine, and on Linux this pid
 * namespace (a container). The test runs of other hosts sharing the server (CI runners,
 * containers) have pids alive or dead there, not here.
 */
function pidSpace(): string {
  let namespace = '';
  try {
    namespace = readlinkSync('/proc/self/ns/pid');
  } catch {}
  return createHash('sha256').update(`${hostname()} ${namespace}`).digest('hex').slice(0, 8);
}

/** No test run lasts this long: a database of another host's run that is older was left by a dead one. */
const ABANDONED_AFTER_SECONDS = 24 * 60 * 60;

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Drops this package's databases left behind by test runs that died: this host's whose pid
 * is gone, and any host's (a CI runner, a container: its pids mean nothing here, and it may
 * never run again) started over a day ago. Only names this module makes (package, pid space,
 * pid, start time in base 36): never anyone else's database on a shared server.
 */
async function dropStaleDatabases(adminUrl: string, prefix: string): Promise<void> {
  const ours = new RegExp(`^(?:t|tmpl)_${prefix}_([0-9a-f]{8})_(\\d+)_([0-9a-z]+)(?:_[0-9a-f]{8})?$`);
  const here = pidSpace();
  const { rows } = await withAdmin(adminUrl, (client) =>
    client.query<{ datname: string }>('select datname from pg_database'),
  );
  for (const { datname } of rows) {
    const [, space, pid, started] = ours.exec(datname) ?? [];
    if (!space) continue;
    const dead = space === here && !isProcessAlive(Number(pid));
    const abandoned = nowSeconds() - Number.parseInt(started as string, 36) > ABANDONED_AFTER_SECONDS;
    if (dead || abandoned) await dropDatabase(adminUrl, datname);
  }
}

/**
 * Vitest globalSetup: picks the cluster, builds the migrated template, and exposes both to
 * the test files through environment variables. Returns the teardown.
 */
export async function setupTestDatabases(packageName: string): Promise<() => Promise<void>> {
  const clusters = path.join(repoRoot, '.data', 'test-postgres');
  // What an embedded cluster says (warnings and worse: a backend that died, a refused
  // connection), kept beside it in <package>.log for a test that failed for its reason.
  const logFile = path.join(clusters, `${packageName}.log`);
  const embedded = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({
        dataDir: path.join(clusters, packageName),
        ephemeral: true,
        log: (line) => appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`),
      });
  const adminUrl = process.env.DATABASE_URL || (embedded?.url as string);
  await dropStaleDatabases(adminUrl, packageName);

  const template = `tmpl_${packageName}_${pidSpace()}_${process.pid}_${nowSeconds().toString(36)}`;
  await withAdmin(adminUrl, (client) => client.query(`create database ${quote(template)}`));
  const db = createDb({ url: databaseUrl(adminUrl, template), poolMax: 1 });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy(); // a template must have no connections when it is cloned
  }
  await withAdmin(adminUrl, (client) => client.query(`alter database ${quote(template)} is_template true`));

  process.env[ADMIN_URL] = adminUrl;
  process.env[TEMPLATE] = template;
  return async () => {
    await dropDatabase(adminUrl, template);
    await embedded?.stop();
  };
}

export interface TestDatabase {
  name: string;
  url: string;
  /** The cluster's maintenance URL (for creating more databases). */
  adminUrl: string;
  drop(): Promise<void>;
}

function testSetup(): { adminUrl: string; template: string } {
  const adminUrl = process.env[ADMIN_URL];
  const template = process.env[TEMPLATE];
  if (!adminUrl || !template) throw new Error('No test databases: add setupTestDatabases() as vitest globalSetup');
  return { adminUrl, template };
}

/** A test file's database: its template's name (package, pid space, pid, start time) and a random part. */
const testDatabaseName = (template: string) => `${template.replace(/^tmpl_/, 't_')}_${randomBytes(4).toString('hex')}`;

/** A fresh, fully migrated database of its own for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const { adminUrl, template } = testSetup();
  const name = testDatabaseName(template);
  await withAdmin(adminUrl, (client) => client.query(`create database ${quote(name)} template ${quote(template)}`));
  return { name, url: databaseUrl(adminUrl, name), adminUrl, drop: () => dropDatabase(adminUrl, name) };
}

/** An empty database (no migrations), for testing migrations themselves. */
export async function createEmptyTestDatabase(): Promise<TestDatabase> {
  const { adminUrl, template } = testSetup();
  const name = testDatabaseName(template);
  await withAdmin(adminUrl, (client) => client.query(`create database ${quote(name)}`));
  return { name, url: databaseUrl(adminUrl, name), adminUrl, drop: () => dropDatabase(adminUrl, name) };
}
