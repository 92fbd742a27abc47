import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/client.ts';
import { migrationsDir } from '../src/migrate.ts';
import { repoRoot } from '../src/paths.ts';
import { createEmptyTestDatabase, type TestDatabase } from '../src/testing.ts';
import { removeCluster } from './clusters.ts';

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

async function run(args: string[], env: Record<string, string> = {}, cwd?: string) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH, NODE_ENV: 'test', NO_COLOR: '1', ...env },
      cwd,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

// Each test runs the CLI as a process up to ten times (each a Node start and a connection):
// on a loaded two-core machine (the whole suite at once) that outlasts the default 30 s.
describe('db CLI', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createEmptyTestDatabase();
  });
  afterAll(() => database.drop());

  it('reports pending migrations, applies them with timings, then says it is up to date', async () => {
    const env = { DATABASE_URL: database.url };
    const before = await run(['status'], env);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/pending\s+\d{14}_create_users/);
    expect(before.stdout).not.toContain(database.url); // no credentials in output

    const migrate = await run(['migrate'], env);
    expect(migrate.stdout).toMatch(/↑ \d{14}_create_users \d+(\.\d)? ms/);
    const files = (await readdir(migrationsDir)).filter((file) => file.endsWith('.ts'));
    expect(migrate.stdout).toContain(`Applied ${files.length} migration${files.length === 1 ? '' : 's'}`);

    expect((await run(['migrate'], env)).stdout).toMatch(/Nothing to migrate/);
    expect((await run(['status'], env)).stdout).toMatch(/applied\s+\d{14}_create_users/);

    const rollback = await run(['rollback', '--all', '--force'], env);
    expect(rollback.stdout).toMatch(/↓ \d{14}_create_users/);
    expect((await run(['rollback', '--force'], env)).stdout).toMatch(/Nothing to roll back/);
  });

  it('lets a migration wait as long as it needs (another host’s migration lock), whatever the statement limit', async () => {
    const env = { DATABASE_URL: database.url, DATABASE_STATEMENT_TIMEOUT_MS: '300' };
    const holder = createDb({ url: database.url, poolMax: 1 });
    try {
      // Another host migrating: it holds Kysely's migration lock (a session's advisory lock).
      await sql`select pg_advisory_lock(3853314791062309107)`.execute(holder);
      const migrating = run(['migrate'], env);
      await sleep(1_500);
      await sql`select pg_advisory_unlock(3853314791062309107)`.execute(holder);
      const migrated = await migrating;
      expect(migrated.stderr).toBe('');
      expect(migrated).toMatchObject({ code: 0, stdout: expect.stringMatching(/Applied \d+ migration/) });
      // The other commands are bounded by it, as the server's queries are.
      const bad = await run(['status'], { ...env, DATABASE_STATEMENT_TIMEOUT_MS: 'soon' });
      expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/DATABASE_STATEMENT_TIMEOUT_MS must be/)]);
    } finally {
      await holder.destroy();
      expect((await run(['rollback', '--all', '--force'], { DATABASE_URL: database.url })).code).toBe(0);
    }
  });

  it('refuses bad usage with exit code 2 and a readable message', async () => {
    const bogus = await run(['bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/Unknown command "bogus"/);
    const badName = await run(['new', 'Add Notes!']);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/snake_case/);
    for (const [args, message] of [
      [['rollback', '--steps', 'x', '--force'], /--steps must be a whole number/],
      [['rollback', '--steps', 'Infinity', '--force'], /--steps must be a whole number/],
      [['rollback', '--steps', '2', '--all', '--force'], /--steps or --all, not both/],
      // Before: a stack trace and exit code 1.
      [['rollback', '--stpes', '2', '--force'], /Unknown option '--stpes'/],
    ] as const) {
      const refused = await run([...args], { DATABASE_URL: database.url });
      expect({ args, code: refused.code }).toEqual({ args, code: 2 });
      expect(refused.stderr).toMatch(message);
      expect(refused.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('grants the admin role to an account by its email (production’s first admin), once', async () => {
    const env = { DATABASE_URL: database.url, NODE_ENV: 'production' };
    expect((await run(['migrate'], env)).code).toBe(0);
    const db = createDb({ url: database.url, poolMax: 1 });
    try {
      const user = await db
        .insertInto('users')
        .values({ email: 'first@example.com' })
        .returning('id')
        .executeTakeFirstOrThrow();
      const isAdmin = async () =>
        (
          await db
            .selectFrom('user_roles')
            .innerJoin('roles', 'roles.id', 'user_roles.role_id')
            .select('roles.name')
            .where('user_roles.user_id', '=', user.id)
            .execute()
        ).some((role) => role.name === 'admin');
      expect(await isAdmin()).toBe(false);
      const granted = await run(['grant-admin', ' First@Example.com '], env);
      expect(granted).toMatchObject({ code: 0, stdout: expect.stringContaining('first@example.com is an admin') });
      expect(await isAdmin()).toBe(true);
      expect((await run(['grant-admin', 'first@example.com'], env)).stdout).toContain('was an admin already');
      // An administrator who cannot sign in is no way back: the account is enabled and restored.
      await db
        .updateTable('users')
        .set({ disabled_at: new Date(), archived_at: new Date() })
        .where('id', '=', user.id)
        .execute();
      const restored = await run(['grant-admin', 'first@example.com'], env);
      expect(restored.stdout).toContain('first@example.com was archived: it can sign in again.');
      expect(
        await db
          .selectFrom('users')
          .select(['disabled_at', 'archived_at'])
          .where('id', '=', user.id)
          .executeTakeFirstOrThrow(),
      ).toEqual({ disabled_at: null, archived_at: null });

      const unknown = await run(['grant-admin', 'nobody@example.com'], env);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/No account uses nobody@example.com: sign up with it first/);
      const missing = await run(['grant-admin'], env);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/needs the account's email/);
    } finally {
      await db.destroy();
      expect((await run(['rollback', '--all', '--force'], { DATABASE_URL: database.url })).code).toBe(0);
    }
  });

  it('refuses to seed or reset in production, and rolls back one migration at a time there, with --force', async () => {
    const production = { DATABASE_URL: database.url, NODE_ENV: 'production' };
    for (const args of [['seed'], ['reset']]) {
      const result = await run(args, production);
      expect(result.code, args.join(' ')).not.toBe(0);
      expect(result.stderr).toMatch(/refused in production/);
    }
    for (const args of [
      ['rollback', '--all', '--force'],
      ['rollback', '--steps', '99', '--force'],
      ['rollback', '--steps=5', '--force'], // before: reverted five
    ]) {
      const result = await run(args, production);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/one migration at a time in production/);
    }
    // Reverting a release's migration is an operator's step: asked for, it runs.
    expect((await run(['migrate'], production)).code).toBe(0);
    const unasked = await run(['rollback'], production);
    expect(unasked.code).toBe(2);
    expect(unasked.stderr).toContain('pnpm db:rollback --force');
    const asked = await run(['rollback', '--force'], production);
    expect(asked.code).toBe(0);
    expect(asked.stdout).toMatch(/Reverted 1 migration/);
    expect((await run(['migrate'], production)).code).toBe(0);
  });

  it('seeds, resets or rolls back a database other than the embedded one only with --force, whatever NODE_ENV says', async () => {
    // A production database reached through a tunnel looks local; NODE_ENV is the shell's (here unset).
    const env = { DATABASE_URL: database.url, NODE_ENV: '' };
    const tables = async () => {
      const db = createDb({ url: database.url, poolMax: 1 });
      try {
        const { rows } = await sql<{ name: string }>`
          select table_name as name from information_schema.tables where table_schema = 'public' order by 1`.execute(
          db,
        );
        return rows.map((row) => row.name);
      } finally {
        await db.destroy();
      }
    };
    expect((await run(['migrate'], env)).code).toBe(0);
    const before = await tables();
    for (const args of [['seed'], ['reset'], ['rollback'], ['rollback', '--all']]) {
      const refused = await run(args, env);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/is refused for .*only the embedded development database/);
      expect(refused.stderr).toContain(`pnpm db:${args.join(' ')} --force`);
    }
    expect(before).toContain('users');
    expect(await tables()).toEqual(before); // nothing touched
    // Told it is a development database, it goes on: the job queue's jobs go with the rows they
    // name; the queue stays installed (a running server queues into it: before, a sign-up
    // under `pnpm dev` answered 500 after a reset, its email's queue gone).
    const jobs = createDb({ url: database.url, poolMax: 1 });
    await sql`create schema if not exists pgboss`.execute(jobs);
    await sql`create table if not exists pgboss.queue (name text primary key)`.execute(jobs);
    await sql`create table if not exists pgboss.job (id int, name text references pgboss.queue) partition by list (name)`.execute(
      jobs,
    );
    await sql`create table if not exists pgboss.job_common partition of pgboss.job default`.execute(jobs);
    await sql`create table if not exists pgboss.job_dependency (child_id int)`.execute(jobs);
    await sql`insert into pgboss.queue values ('send-email')`.execute(jobs);
    await sql`insert into pgboss.job values (1, 'send-email')`.execute(jobs);
    await sql`insert into pgboss.job_dependency values (1)`.execute(jobs);
    const forced = await run(['reset', '--force'], env);
    expect(forced.stderr).toBe('');
    expect(forced).toMatchObject({ code: 0, stdout: expect.stringMatching(/Ran \d+ seed/) });
    const count = async (table: string) =>
      (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(jobs)).rows[0]?.n;
    const left = {
      jobs: await count('pgboss.job'),
      dependencies: await count('pgboss.job_dependency'),
      queues: await count('pgboss.queue'),
    };
    await jobs.destroy();
    expect(left).toEqual({ jobs: 0, dependencies: 0, queues: 1 });
    expect((await run(['seed', '--force'], env)).code).toBe(0);
    expect((await run(['rollback', '--all', '--force'], env)).code).toBe(0);
    expect(await tables()).toEqual(['kysely_migration', 'kysely_migration_lock']);
  });

  it("uses the embedded cluster EMBEDDED_POSTGRES_DIR names (pnpm dev's), relative to the repository root from any folder", async () => {
    const relative = path.join('.data', 'test-postgres', `cli-${process.pid}`);
    const dataDir = path.join(repoRoot, relative);
    try {
      const result = await run(['status'], { EMBEDDED_POSTGRES_DIR: relative }, tmpdir());
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Database: embedded Postgres on port`);
      expect(result.stdout).toContain(`(${dataDir})`);
      expect(result.stdout).toMatch(/pending\s+\d{14}_create_users/);
      expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
      expect(existsSync(path.join(tmpdir(), relative))).toBe(false);
    } finally {
      removeCluster(dataDir);
    }
  });

  it('refuses a production command without DATABASE_URL, before any embedded cluster starts', async () => {
    const relative = path.join('.data', 'test-postgres', `cli-production-${process.pid}`);
    for (const command of ['migrate', 'status', 'rollback', 'grant-admin']) {
      const refused = await run([command], { NODE_ENV: 'production', EMBEDDED_POSTGRES_DIR: relative });
      expect({ command, code: refused.code }).toEqual({ command, code: 2 });
      expect(refused.stderr).toMatch(/DATABASE_URL is required in production/);
    }
    // Before: a cluster made there, migrated (or rolled back), and "Applied 15 migrations".
    expect(existsSync(path.join(repoRoot, relative))).toBe(false);
  });

  it('explains an unreachable database in one line', async () => {
    const result = await run(['status'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/✗/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
