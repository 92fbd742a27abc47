export { createDb, type Db, type DbConfig, describeDatabaseUrl, queriesAnswered } from './client.ts';
export { type DatabaseTarget, resolveDatabase } from './connect.ts';
export { type EmbeddedPostgres, type EmbeddedPostgresOptions, startEmbeddedPostgres } from './embedded.ts';
export { isLoopback, isLoopbackUrl } from './hosts.ts';
export { JOBS_SCHEMA } from './job-queue.ts';
export {
  loadMigrations,
  MigrationError,
  type MigrationState,
  type MigrationStep,
  migrateToLatest,
  migrationStatus,
  migrationsDir,
  pendingMigrations,
  rollback,
  rollbackAll,
} from './migrate.ts';
export { hashPassword, PASSWORD_HASH_OPTIONS, verifyPassword } from './password-hash.ts';
export { defaultEmbeddedDataDir, loadRepoEnvFile, repoEnvFile, repoPath, repoRoot } from './paths.ts';
export {
  errorReason,
  isForeignKeyViolation,
  isTransactionConflict,
  isUndefinedTable,
  isUniqueViolation,
} from './postgres-errors.ts';
export { isProcessAlive } from './process-alive.ts';
export type * from './schema.ts';
export { runSeeds, type SeedStep } from './seed.ts';
