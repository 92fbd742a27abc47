/**
 * Database commands: `pnpm db:<command>` from the repository root.
 *
 *   migrate              apply every pending migration
 *   rollback [--steps N | --all] [--force]
 *                        revert the newest migration (or N, or all of them); beyond the embedded
 *                        cluster only with --force; one at a time in production
 *   status               list migrations, applied and pending
 *   seed [--force]       run seeds/*.ts (refused in production; beyond the embedded cluster only with --force)
 *   new <name>           create migrations/<timestamp>_<name>.ts
 *   reset [--force]      drop everything, migrate, seed (the same refusals)
 *   grant-admin <email>  give an account the admin role (the first one, or after a lockout)
 *
 * Uses DATABASE_URL, or the embedded development cluster when it is unset.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, styleText } from 'node:util';
import { sql } from 'kysely';
import { createDb, type Db } from './client.ts';
import { type DatabaseTarget, resolveDatabase } from './connect.ts';
import { JOBS_SCHEMA } from './job-queue.ts';
import {
  MIGRATION_FILE,
  type MigrationStep,
  migrateToLatest,
  migrationFiles,
  migrationStatus,
  migrationsDir,
  newMigrationFile,
  rollback,
} from './migrate.ts';
import { defaultEmbeddedDataDir, loadRepoEnvFile, repoPath, repoRoot } from './paths.ts';
import { errorReason } from './postgres-errors.ts';
import { runSeeds } from './seed.ts';

const USAGE = `Usage: pnpm db:<command>
  db:migrate                      apply every pending migration
  db:rollback [--steps N | --all] [--force]
                                  revert the newest migration (or N, or all)
  db:status                       list applied and pending migrations
  db:seed [--force]               run the seeds (development users with known passwords)
  db:new <name>                   create a migration file, name in snake_case
  db:reset [--force]              drop all tables, migrate, seed
                                  (seed and reset are refused with NODE_ENV=production, and
                                  rollback reverts one migration at a time there; for any
                                  database but the embedded one, --force says you mean it)
  db:grant-admin <email>          give that account the admin role (production's first admin;
                                  a disabled or archived one can sign in again)`;

const ms = (value: number) => styleText('dim', `${value.toFixed(value < 10 ? 1 : 0)} ms`);
const ok = (text: string) => `${styleText('green', '✓')} ${text}`;

function printStep(step: MigrationStep) {
  const arrow = step.direction === 'Up' ? styleText('green', '↑') : styleText('yellow', '↓');
  console.log(`  ${arrow} ${step.name} ${ms(step.durationMs)}`);
}

class UsageError extends Error {}

async function createMigrationFile(name: string | undefined): Promise<void> {
  if (!name || !/^[a-z][a-z0-9_]*$/.test(name)) {
    throw new UsageError('db:new needs a name in snake_case, e.g. `pnpm db:new add_notes`');
  }
  const file = path.join(migrationsDir, newMigrationFile(name, await migrationFiles()));
  if (!MIGRATION_FILE.test(path.basename(file))) throw new UsageError(`Invalid migration name: ${name}`);
  const body = `import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and must not depend on the current schema types
export async function up(db: Kysely<any>): Promise<void> {
  // await db.schema.createTable('...').addColumn(...).execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  // Undo exactly what up() did.
}
`;
  await writeFile(file, body, { flag: 'wx' });
  console.log(ok(`Created ${path.relative(repoRoot, file)}`));
  console.log('  Fill in up() and down(), then run `pnpm db:migrate`; update src/schema.ts to match.');
}

async function migrate(db: Db) {
  const started = performance.now();
  const steps = await migrateToLatest(db, { onStep: printStep });
  console.log(
    steps.length === 0
      ? ok('Nothing to migrate: the database is up to date.')
      : ok(`Applied ${steps.length} migration${steps.length === 1 ? '' : 's'} in ${ms(performance.now() - started)}`),
  );
}

/** `db:rollback`'s options, read before the database is reached: how many migrations to revert. */
function rollbackOptions(args: string[]): { steps: number; force: boolean } {
  let values: { steps?: string; all?: boolean; force?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: { steps: { type: 'string' }, all: { type: 'boolean' }, force: { type: 'boolean' } },
    }));
  } catch (error) {
    throw new UsageError(errorReason(error));
  }
  if (values.all && values.steps !== undefined) throw new UsageError('Give --steps or --all, not both');
  if (values.steps !== undefined && !/^\d+$/.test(values.steps)) {
    throw new UsageError('--steps must be a whole number');
  }
  const steps = values.all ? Number.POSITIVE_INFINITY : Number(values.steps ?? 1);
  if (steps < 1) throw new UsageError('--steps must be at least 1');
  return { steps, force: values.force === true };
}

async function rollbackCommand(db: Db, { steps }: { steps: number }) {
  const done = await rollback(db, steps, { onStep: printStep });
  console.log(
    done.length === 0
      ? ok('Nothing to roll back.')
      : ok(`Reverted ${done.length} migration${done.length === 1 ? '' : 's'}`),
  );
}

async function status(db: Db) {
  const migrations = await migrationStatus(db);
  if (migrations.length === 0) return console.log('No migrations in packages/db/migrations.');
  for (const m of migrations) {
    console.log(
      m.executedAt
        ? `  ${styleText('green', 'applied')}  ${m.name} ${styleText('dim', m.executedAt.toISOString())}`
        : `  ${styleText('yellow', 'pending')}  ${m.name}`,
    );
  }
  const pending = migrations.filter((m) => !m.executedAt).length;
  console.log(pending === 0 ? ok('Up to date.') : `${pending} pending: run \`pnpm db:migrate\`.`);
}

async function seed(db: Db) {
  const steps = await runSeeds(db, {
    nodeEnv: process.env.NODE_ENV,
    onStep: (s) => console.log(`  ${styleText('green', '•')} ${s.name} ${ms(s.durationMs)}`),
  });
  console.log(
    steps.length === 0
      ? 'No seeds in packages/db/seeds.'
      : ok(`Ran ${steps.length} seed${steps.length === 1 ? '' : 's'}`),
  );
}

/**
 * Seeding (users with known passwords), resetting (every table and queued job dropped) and rolling back
 * (what a migration made dropped, its data with it; every table with --all) are for the
 * embedded development cluster. Any other database takes `--force`, whatever NODE_ENV says:
 * NODE_ENV is the operator's shell's, not the database's, and a production database reached
 * through a tunnel (`kubectl port-forward`, `ssh -L`, a cloud SQL proxy) looks local.
 * Production refuses seeding and resetting outright; reverting a release's migration is an
 * operator's step there: one migration at a time, with `--force`.
 */
function assertDevelopmentDatabase(
  command: string,
  target: DatabaseTarget,
  args: string[],
  asked: { force: boolean; steps: number },
): void {
  if (process.env.NODE_ENV === 'production' && command !== 'rollback') {
    throw new UsageError(`db:${command} is refused in production.`);
  }
  if (process.env.NODE_ENV === 'production' && asked.steps !== 1) {
    throw new UsageError('db:rollback reverts one migration at a time in production (no --all, no --steps over 1).');
  }
  if (target.embedded || asked.force) return;
  throw new UsageError(
    `db:${command} is refused for ${target.description}: only the embedded development database is ` +
      `seeded, reset or rolled back without asking, and this one may be a production database ` +
      `(a tunnel to one looks local). If it is a development one, run \`pnpm db:${[command, ...args, '--force'].join(' ')}\`.`,
  );
}

async function reset(db: Db) {
  await sql`drop schema public cascade`.execute(db);
  await sql`create schema public`.execute(db);
  // The job queue's jobs too: its queued emails and deletions name rows that are gone. Its
  // schema stays: a running server (`pnpm dev`) installed it once, at its start, and queues
  // jobs in the same transaction as the rows they name (a sign-up's email).
  await emptyJobQueue(db);
  console.log(ok('Dropped every table and queued job'));
  await migrate(db);
  await seed(db);
}

/** Deletes the job queue's jobs (and their dependencies), if it is installed; its queues and schedules stay. */
async function emptyJobQueue(db: Db) {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${JOBS_SCHEMA} and c.relname in ('job', 'job_dependency') and c.relkind in ('r', 'p')`.execute(
    db,
  );
  if (rows.length === 0) return;
  await sql`truncate ${sql.join(rows.map((row) => sql.table(`${JOBS_SCHEMA}.${row.name}`)))}`.execute(db);
}

/**
 * The way to the first administrator of a production database (or back, after a lockout):
 * no API grants the first. A disabled or archived account is enabled and restored too: an
 * administrator who cannot sign in is no way back.
 */
async function grantAdmin(db: Db, email: string | undefined) {
  if (!email?.includes('@'))
    throw new UsageError("db:grant-admin needs the account's email: `pnpm db:grant-admin you@example.com`");
  const normalised = email.trim().toLowerCase();
  const user = await db
    .selectFrom('users')
    .select(['id', 'disabled_at', 'archived_at'])
    .where('email', '=', normalised)
    .executeTakeFirst();
  if (!user) throw new UsageError(`No account uses ${normalised}: sign up with it first, then run this again.`);
  const admin = await db.selectFrom('roles').select('id').where('name', '=', 'admin').executeTakeFirst();
  if (!admin) throw new UsageError('There is no admin role: run `pnpm db:migrate` first.');
  const granted = await db
    .insertInto('user_roles')
    .values({ user_id: user.id, role_id: admin.id })
    .onConflict((oc) => oc.doNothing())
    .returning('user_id')
    .executeTakeFirst();
  console.log(
    ok(
      granted
        ? `${normalised} is an admin: it holds every permission from its next request.`
        : `${normalised} was an admin already.`,
    ),
  );
  if (user.disabled_at || user.archived_at) {
    await db.updateTable('users').set({ disabled_at: null, archived_at: null }).where('id', '=', user.id).execute();
    console.log(ok(`${normalised} was ${user.archived_at ? 'archived' : 'disabled'}: it can sign in again.`));
  }
}

/**
 * Migrations run without a limit on a statement, as at the server's start: an index built on
 * a large table takes what it takes, and a second host waits for the first one's migration
 * lock (the pool's limit, client-side too, would cut either off). The other commands are
 * bounded as the server's queries are, by DATABASE_STATEMENT_TIMEOUT_MS.
 */
function statementTimeoutFor(command: string): number | undefined {
  if (command === 'migrate' || command === 'rollback' || command === 'reset') return 0;
  const raw = process.env.DATABASE_STATEMENT_TIMEOUT_MS;
  if (!raw) return undefined;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0 || ms > 3_600_000) {
    throw new UsageError(
      `DATABASE_STATEMENT_TIMEOUT_MS must be a whole number of milliseconds, 0–3600000 (got "${raw}").`,
    );
  }
  return ms;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'new') {
    await createMigrationFile(args[0]);
    return 0;
  }
  // Bad options are refused before the database is reached.
  const asked = command === 'rollback' ? rollbackOptions(args) : { steps: 1, force: args.includes('--force') };
  const commands: Record<string, (db: Db) => Promise<void>> = {
    migrate,
    rollback: (db) => rollbackCommand(db, asked),
    status,
    seed,
    reset,
    'grant-admin': (db) => grantAdmin(db, args[0]),
  };
  const run = commands[command];
  if (!run) throw new UsageError(`Unknown command "${command}".\n${USAGE}`);

  const statementTimeoutMs = statementTimeoutFor(command);
  const url = process.env.DATABASE_URL || undefined;
  // As the server refuses to start (config.ts): a production shell with DATABASE_URL unset or
  // misspelled would otherwise migrate (or roll back) a local cluster and report success.
  if (url === undefined && process.env.NODE_ENV === 'production') {
    throw new UsageError('DATABASE_URL is required in production (the embedded database is for development).');
  }
  const target = await resolveDatabase({
    url,
    // The cluster `pnpm dev` runs, wherever it keeps it: attached to when running.
    embeddedDataDir: repoPath(process.env.EMBEDDED_POSTGRES_DIR || defaultEmbeddedDataDir),
  });
  console.log(styleText('dim', `Database: ${target.description}`));
  const db = createDb({ url: target.url, poolMax: 2, statementTimeoutMs });
  try {
    if (command === 'seed' || command === 'reset' || command === 'rollback') {
      assertDevelopmentDatabase(command, target, args, asked);
    }
    await run(db);
    return 0;
  } finally {
    await db.destroy();
    await target.embedded?.stop();
  }
}

Promise.resolve()
  .then(() => {
    loadRepoEnvFile();
    return main(process.argv.slice(2));
  })
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`${styleText('red', '✗')} ${errorReason(error)}`);
      process.exitCode = error instanceof UsageError ? 2 : 1;
    },
  );
