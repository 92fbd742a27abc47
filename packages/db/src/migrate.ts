import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Kysely, sql } from 'kysely';
import {
  DEFAULT_MIGRATION_TABLE,
  type Migration,
  type MigrationProvider,
  type MigrationResult,
  Migrator,
  NO_MIGRATIONS,
} from 'kysely/migration';
import { isUndefinedTable } from './postgres-errors.ts';

export const migrationsDir = fileURLToPath(new URL('../migrations/', import.meta.url));

/** `<14-digit timestamp>_<snake_case_name>.ts`; the timestamp orders them. */
export const MIGRATION_FILE = /^\d{14}_[a-z0-9_]+\.ts$/;

/** A folder's migration files, oldest first. */
export async function migrationFiles(folder = migrationsDir): Promise<string[]> {
  return (await readdir(folder)).filter((file) => MIGRATION_FILE.test(file)).sort();
}

const migrationName = (file: string) => file.replace(/\.ts$/, '');

/** A moment as a migration's timestamp: `YYYYMMDDhhmmss`, UTC. */
const timestampOf = (date: Date) => date.toISOString().replace(/\D/g, '').slice(0, 14);

/**
 * A new migration's file name: timestamped now, or a second after the newest migration when
 * that one is dated later (a clock behind, a migration dated ahead): Kysely refuses to apply
 * a migration that sorts before one a database has applied, so a new one always sorts last.
 */
export function newMigrationFile(name: string, existing: readonly string[], now = new Date()): string {
  const newest = existing.at(-1)?.slice(0, 14);
  let timestamp = timestampOf(now);
  if (newest !== undefined && timestamp <= newest) {
    const newestAt = Date.parse(newest.replace(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)$/, '$1-$2-$3T$4:$5:$6Z'));
    timestamp = timestampOf(new Date(newestAt + 1000));
  }
  return `${timestamp}_${name}.ts`;
}

/** How long a migration waits for a table's lock before it fails (and can be run again). */
export const MIGRATION_LOCK_TIMEOUT_MS = 5_000;

/**
 * Each migration's transaction, before it runs: no statement timeout (the pool's, 30 s by
 * default, would cancel an index built on a large table, every time), and a lock timeout:
 * a migration waiting for a busy table's lock holds up every query queued behind it, so it
 * gives up instead, rolled back, to be run again at a quieter moment.
 */
function withSessionLimits(migration: Migration, lockTimeoutMs: number): Migration {
  const limited =
    (run: Migration['up']) =>
    async (db: AnyDb): Promise<void> => {
      await sql`select set_config('statement_timeout', '0', true), set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`.execute(
        db,
      );
      await run(db);
    };
  return { up: limited(migration.up), ...(migration.down && { down: limited(migration.down) }) };
}

/** The migrations of a folder by name, each file imported by URL (portable, unlike Kysely's path-based provider). */
export async function loadMigrations(folder = migrationsDir): Promise<Record<string, Migration>> {
  const migrations: Record<string, Migration> = {};
  for (const file of await migrationFiles(folder)) {
    const module = (await import(pathToFileURL(path.join(folder, file)).href)) as Partial<Migration>;
    if (typeof module.up !== 'function' || typeof module.down !== 'function') {
      throw new Error(`Migration ${file} must export both up() and down()`);
    }
    migrations[migrationName(file)] = { up: module.up, down: module.down };
  }
  return migrations;
}

class MigrationFolderProvider implements MigrationProvider {
  readonly folder: string;
  readonly lockTimeoutMs: number;
  constructor(folder: string, lockTimeoutMs: number) {
    this.folder = folder;
    this.lockTimeoutMs = lockTimeoutMs;
  }
  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations = await loadMigrations(this.folder);
    return Object.fromEntries(
      Object.entries(migrations).map(([name, migration]) => [name, withSessionLimits(migration, this.lockTimeoutMs)]),
    );
  }
}

// biome-ignore lint/suspicious/noExplicitAny: migrations run against any schema state
type AnyDb = Kysely<any>;

export function createMigrator(db: AnyDb, folder = migrationsDir, lockTimeoutMs = MIGRATION_LOCK_TIMEOUT_MS): Migrator {
  return new Migrator({ db, provider: new MigrationFolderProvider(folder, lockTimeoutMs) });
}

export interface MigrationStep {
  name: string;
  direction: 'Up' | 'Down';
  durationMs: number;
}

export class MigrationError extends Error {
  readonly migration: string | undefined;
  constructor(migration: string | undefined, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(migration ? `Migration ${migration} failed: ${reason}` : `Migrating failed: ${reason}`, { cause });
    this.name = 'MigrationError';
    this.migration = migration;
  }
}

/** Applies or reverts one migration at a time (each in its own transaction) so progress can be reported. */
async function step(
  move: () => Promise<{ error?: unknown; results?: MigrationResult[] }>,
): Promise<MigrationStep | undefined> {
  const started = performance.now();
  const { error, results } = await move();
  const result = results?.[0];
  if (error !== undefined || result?.status === 'Error') throw new MigrationError(result?.migrationName, error);
  if (!result) return undefined;
  return { name: result.migrationName, direction: result.direction, durationMs: performance.now() - started };
}

export interface MigrateOptions {
  folder?: string;
  onStep?: (step: MigrationStep) => void;
  /** How long a migration waits for a lock (MIGRATION_LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
}

/** Applies every pending migration, oldest first. Returns what ran. */
export async function migrateToLatest(db: AnyDb, options: MigrateOptions = {}): Promise<MigrationStep[]> {
  const migrator = createMigrator(db, options.folder, options.lockTimeoutMs);
  const done: MigrationStep[] = [];
  for (;;) {
    const ran = await step(() => migrator.migrateUp());
    if (!ran) return done;
    done.push(ran);
    options.onStep?.(ran);
  }
}

/** Reverts the newest `steps` applied migrations (all of them with `Infinity`). */
export async function rollback(db: AnyDb, steps: number, options: MigrateOptions = {}): Promise<MigrationStep[]> {
  const migrator = createMigrator(db, options.folder, options.lockTimeoutMs);
  const done: MigrationStep[] = [];
  while (done.length < steps) {
    const ran = await step(() => migrator.migrateDown());
    if (!ran) break;
    done.push(ran);
    options.onStep?.(ran);
  }
  return done;
}

/** Reverts everything in one go (used by tests and `db:reset`). */
export async function rollbackAll(db: AnyDb, folder?: string): Promise<void> {
  const { error } = await createMigrator(db, folder).migrateTo(NO_MIGRATIONS);
  if (error !== undefined) throw new MigrationError(undefined, error);
}

export interface MigrationState {
  name: string;
  executedAt: Date | undefined;
}

export async function migrationStatus(db: AnyDb, folder?: string): Promise<MigrationState[]> {
  const migrations = await createMigrator(db, folder).getMigrations();
  return migrations.map((m) => ({ name: m.name, executedAt: m.executedAt }));
}

/**
 * The folder's migrations not applied yet, oldest first. One query and the file names: the
 * server's start-up asks this every time, and Kysely's migrator would import every migration
 * and read the catalog to make sure its tables exist (~50 ms of a start against ~1).
 */
export async function pendingMigrations(db: AnyDb, folder = migrationsDir): Promise<string[]> {
  const applied = await appliedMigrationNames(db);
  return (await migrationFiles(folder)).map(migrationName).filter((name) => !applied.has(name));
}

async function appliedMigrationNames(db: AnyDb): Promise<Set<string>> {
  try {
    const { rows } = await sql<{ name: string }>`select name from ${sql.table(DEFAULT_MIGRATION_TABLE)}`.execute(db);
    return new Set(rows.map((row) => row.name));
  } catch (error) {
    // A database never migrated has no migration table yet: nothing is applied.
    if (isUndefinedTable(error)) return new Set();
    throw error;
  }
}
