import {
  createDb,
  type DatabaseTarget,
  type Db,
  describeDatabaseUrl,
  errorReason,
  migrateToLatest,
  pendingMigrations,
  runSeeds,
} from '@app/db';
import { sql } from 'kysely';
import type { Config } from './config.ts';
import type { KeyValueStore } from './infra/kv/index.ts';
import type { Logger } from './infra/logger.ts';
import { withTimeout } from './infra/with-timeout.ts';
import type { Services } from './services.ts';

/** A start-up check that failed: printed as one line, then the process exits 1 (no stack). */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

async function checkDatabase(db: Db, url: string, config: Config): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    // The embedded database is a development fallback: never suggested to a production deploy.
    const hint = config.isProduction
      ? 'Check DATABASE_URL.'
      : 'Check DATABASE_URL, or unset it to use the embedded database.';
    throw new StartupError(`Cannot reach the database at ${describeDatabaseUrl(url)}: ${errorReason(error)}. ${hint}`);
  }
}

/**
 * Pending migrations are applied when MIGRATE_ON_START is on (the default outside
 * production); otherwise they stop the start-up, since the code expects the new schema.
 */
async function ensureMigrations(db: Db, url: string, config: Config, log: Logger): Promise<void> {
  const pending = await pendingMigrations(db);
  if (pending.length === 0) return;
  if (!config.migrateOnStart) {
    throw new StartupError(
      `${pending.length} pending migration(s): ${pending.join(', ')}. ` +
        'Run `pnpm db:migrate` (or the migrate service), or set MIGRATE_ON_START=true.',
    );
  }
  log.info(`Applying ${pending.length} pending migration(s)`);
  // A connection of their own, without the app pool's client-side limit on a statement
  // (DATABASE_STATEMENT_TIMEOUT_MS + 1 s): a migration may take longer (@app/db migrate.ts).
  const migrating = createDb({
    url,
    poolMax: 1,
    statementTimeoutMs: 0,
    connectionTimeoutMs: config.database.connectTimeoutMs,
    preparedStatements: config.database.preparedStatements,
    applicationName: 'app-migrate',
  });
  try {
    await migrateToLatest(migrating, {
      onStep: (step) => log.info(`migrated ${step.name} (${step.durationMs.toFixed(0)} ms)`),
    });
  } catch (error) {
    throw new StartupError(errorReason(error));
  } finally {
    await migrating.destroy();
  }
}

async function checkKeyValueStore(kv: KeyValueStore, config: Config): Promise<void> {
  if (kv.kind !== 'redis') return;
  try {
    await withTimeout(
      () => kv.ping(),
      5_000,
      () => new Error('no answer within 5 s'),
    );
  } catch (error) {
    const where = config.redis.url ? new URL(config.redis.url).host : 'REDIS_URL';
    const hint = config.isProduction ? 'Check REDIS_URL.' : 'Check REDIS_URL, or unset it to use the in-memory store.';
    throw new StartupError(`Cannot reach Redis at ${where}: ${errorReason(error)}. ${hint}`);
  }
  // A revoked session is refused by its marker in Redis: a marker evicted under memory
  // pressure would let the session in again, while the cache still reads as complete.
  const risk = await kv.evictionRisk().catch(() => undefined); // (an INFO an ACL refuses: not checked)
  if (risk) {
    throw new StartupError(
      `Redis may drop keys before they expire: ${risk}, and a revoked session dropped from it would be let in ` +
        'again. Set maxmemory-policy noeviction.',
    );
  }
}

/** `pnpm dev` on the embedded database starts with the development accounts (seeds are idempotent). */
async function seedDevelopmentDatabase(db: Db, config: Config, log: Logger): Promise<void> {
  if (config.nodeEnv !== 'development') return;
  const steps = await runSeeds(db, { nodeEnv: config.nodeEnv });
  log.info(
    `seeded the development database (${steps.map((s) => s.name).join(', ')}): admin@example.com / Adminpassword1`,
  );
}

/**
 * The start-up sequence: the database answers, its migrations are applied and the
 * embedded one is seeded; meanwhile, Redis answers. `database` is the target this process
 * owns; a cluster worker has none (its primary prepared the database) and only checks.
 * When both fail, the database's failure is the one reported.
 */
export async function runStartupChecks(
  services: Pick<Services, 'db' | 'kv' | 'config' | 'log'>,
  databaseUrl: string,
  database?: DatabaseTarget,
): Promise<void> {
  const { db, kv, config, log } = services;
  const prepareDatabase = async () => {
    await checkDatabase(db, databaseUrl, config);
    if (database) await ensureMigrations(db, databaseUrl, config, log);
    if (database?.embedded) await seedDevelopmentDatabase(db, config, log);
  };
  const redisAnswers = checkKeyValueStore(kv, config);
  // Its failure waits for the database's steps (never cut halfway); the database's is thrown at once.
  redisAnswers.catch(() => undefined);
  await prepareDatabase();
  await redisAnswers;
}
