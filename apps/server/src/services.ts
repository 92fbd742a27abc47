import { createDb, type Db } from '@app/db';
import type { Config } from './config.ts';
import { type Clock, systemClock } from './infra/clock.ts';
import { JobQueue } from './infra/jobs.ts';
import { createKeyValueStore, type KeyValueStore } from './infra/kv/index.ts';
import { createOutageLog, type Logger } from './infra/logger.ts';
import { createMailer, type Mailer, type MailTransport } from './infra/mail/index.ts';
import { createOAuthProviders, type OAuthProviders } from './infra/oauth/providers.ts';
import { createRateLimiter, type RateLimiter } from './infra/rate-limiter.ts';
import { createStorage, type ObjectStorage } from './infra/storage/index.ts';
import { createTokenService, type TokenService } from './infra/tokens.ts';
import { withTimeout } from './infra/with-timeout.ts';
import { QUEUES } from './modules/jobs/jobs.ts';

/**
 * How long a dependency's connections may take to close at the end of a shutdown (they
 * close in milliseconds when it answers). Within server.ts's SHUTDOWN_MARGIN_MS.
 */
const CONNECTIONS_CLOSE_MS = 1_000;

/** Everything a request handler may use; built once per process. */
export interface Services {
  config: Config;
  log: Logger;
  db: Db;
  kv: KeyValueStore;
  tokens: TokenService;
  mailer: Mailer;
  /** The only source of "now" for services and tokens, so a test can move expiry. */
  clock: Clock;
  rateLimits: {
    /** Credential endpoints, per IP (and per target email where they send one). */
    auth: RateLimiter;
    /** Every procedure, per IP. */
    default: RateLimiter;
    /** Wrong passwords and codes, per account. */
    failures: RateLimiter;
  };
  /** The configured sign-in providers (Google, GitHub, Facebook, Apple, OpenID Connect). */
  oauth: OAuthProviders;
  /** Where file bytes live (the local disk or S3). */
  storage: ObjectStorage;
  /** Durable background jobs (pg-boss, in Postgres); connects on first use. */
  jobs: JobQueue;
  /** Epoch ms when this process started serving (for `uptimeSeconds`). */
  startedAt: number;
  /**
   * Jobs in progress get `timeoutMs` (SHUTDOWN_TIMEOUT_MS by default) to finish; then every
   * connection closes, or is left to the process's exit after a second (rejects, naming it).
   */
  close(timeoutMs?: number): Promise<void>;
}

export interface ServiceOverrides {
  db?: Db;
  kv?: KeyValueStore;
  mailTransport?: MailTransport;
  clock?: Clock;
  storage?: ObjectStorage;
}

/**
 * `databaseUrl` is the resolved connection (DATABASE_URL or the embedded cluster that
 * server.ts started); tests pass their own `db` and `kv`.
 */
export async function createServices(
  config: Config,
  log: Logger,
  databaseUrl: string,
  overrides: ServiceOverrides = {},
): Promise<Services> {
  const db =
    overrides.db ??
    createDb({
      url: databaseUrl,
      poolMax: config.database.poolMax,
      connectionTimeoutMs: config.database.connectTimeoutMs,
      statementTimeoutMs: config.database.statementTimeoutMs,
      applicationName: `app-server@${config.version}`,
      onConnectionError: (error) => log.warn({ err: error }, `database connection failed: ${error.message}`),
      preparedStatements: config.database.preparedStatements,
      onPreparedStatementsUnsupported: (error) =>
        log.warn(
          { err: error },
          `prepared statements stopped: ${error.message}, as behind a pooler in transaction mode that cannot keep them; set DATABASE_PREPARED_STATEMENTS=false there (docs/scaling.md)`,
        ),
    });
  const kv =
    overrides.kv ??
    createKeyValueStore({
      redisUrl: config.redis.url,
      keyPrefix: config.redis.keyPrefix,
      commandTimeoutMs: config.redis.commandTimeoutMs,
      onError: (error) => log.warn({ err: error }, `Redis connection problem: ${error.message}`),
    });
  const mailer = createMailer(config, overrides.mailTransport);
  const clock = overrides.clock ?? systemClock;
  const storage = overrides.storage ?? (await createStorage(config.files));
  const outage = createOutageLog(log);
  const jobs = new JobQueue(
    {
      url: databaseUrl,
      db,
      log,
      poolMax: config.jobs.poolMax,
      connectTimeoutMs: config.database.connectTimeoutMs,
      statementTimeoutMs: config.database.statementTimeoutMs,
      pollingIntervalSeconds: config.jobs.pollIntervalSeconds,
      superviseIntervalSeconds: config.jobs.superviseIntervalSeconds,
    },
    QUEUES,
  );
  const limiter = (name: string, perMinute: number) =>
    createRateLimiter(kv, {
      name,
      perMinute,
      onStoreError: (error) =>
        outage.warn('redis', `rate limits are per process while Redis is unavailable (${String(error)})`),
    });
  return {
    config,
    log,
    db,
    kv,
    tokens: await createTokenService(config.jwt, clock),
    mailer,
    clock,
    rateLimits: {
      auth: limiter('auth', config.rateLimits.authPerMinute),
      default: limiter('default', config.rateLimits.defaultPerMinute),
      failures: limiter('failures', config.rateLimits.failuresPerMinute),
    },
    oauth: await createOAuthProviders(config.oauth),
    storage,
    jobs,
    startedAt: clock.now(),
    /** `timeoutMs`: what is left of the shutdown for the jobs in progress (SHUTDOWN_TIMEOUT_MS by default). */
    async close(timeoutMs = config.shutdownTimeoutMs) {
      // In this order, each step whatever the one before did: a queue that failed to stop
      // still leaves the connections to close. The first failure is the answer.
      let failed: { error: unknown } | undefined;
      const noting = (error: unknown) => {
        failed ??= { error };
      };
      await jobs.stop(timeoutMs).catch(noting); // jobs in progress finish, or go back to the queue
      await mailer.close().catch(noting); // background sends finish before their dependencies close
      // A pool ends once its calls in flight do, which a database or Redis that stopped
      // answering holds up to their own timeouts (a statement's 30 s): such connections are
      // left to the process's exit. (A close that fails leaves nothing open either.)
      const closing = { database: db.destroy(), redis: kv.close(), storage: storage.close() };
      const leftOpen = (
        await Promise.all(
          Object.entries(closing).map(([dependency, closed]) =>
            withTimeout(() => closed.catch(() => undefined), CONNECTIONS_CLOSE_MS).then(
              () => [],
              () => [dependency],
            ),
          ),
        )
      ).flat();
      if (leftOpen.length > 0) {
        const message = `${leftOpen.join(', ')}: connections not closed within ${CONNECTIONS_CLOSE_MS} ms (calls still in flight), left to the process's exit`;
        log.warn(`shutdown: ${message}`);
        noting(new Error(message));
      }
      if (failed) throw failed.error;
    },
  };
}
