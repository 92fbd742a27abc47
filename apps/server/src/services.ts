import { createDb, type Db } from '@app/db';
import type { Config } from './config.ts';
import { type Clock, systemClock } from './infra/clock.ts';
import { createKeyValueStore, type KeyValueStore } from './infra/kv/index.ts';
import type { Logger } from './infra/logger.ts';
import { createMailer, type Mailer, type MailTransport } from './infra/mail/index.ts';
import { createRateLimiter, type RateLimiter } from './infra/rate-limiter.ts';
import { createTokenService, type TokenService } from './infra/tokens.ts';

/** Everything a request handler may use; built once per process. */
export interface Services {
  config: Config;
  log: Logger;
  db: Db;
  kv: KeyValueStore;
  tokens: TokenService;
  mailer: Mailer;
  clock: Clock;
  rateLimits: { auth: RateLimiter; default: RateLimiter };
  /** Epoch ms when this process started serving (for `uptimeSeconds`). */
  startedAt: number;
  close(): Promise<void>;
}

export interface ServiceOverrides {
  db?: Db;
  kv?: KeyValueStore;
  mailTransport?: MailTransport;
  clock?: Clock;
}

/**
 * `databaseUrl` is the resolved connection (DATABASE_URL or the embedded cluster that
 * main.ts started); tests pass their own `db` and `kv`.
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
      onIdleError: (error) => log.warn({ err: error }, 'idle database connection failed'),
    });
  const kv =
    overrides.kv ??
    createKeyValueStore({
      redisUrl: config.redis.url,
      keyPrefix: config.redis.keyPrefix,
      onError: (error) => log.warn({ err: error }, `Redis connection problem: ${error.message}`),
    });
  const mailer = createMailer(config, log, overrides.mailTransport);
  const onRateLimitError = (error: unknown) => log.warn({ err: error }, 'rate limiter store failed: request allowed');
  return {
    config,
    log,
    db,
    kv,
    tokens: await createTokenService(config.jwt),
    mailer,
    clock: overrides.clock ?? systemClock,
    rateLimits: {
      auth: createRateLimiter(kv, {
        name: 'auth',
        perMinute: config.rateLimits.authPerMinute,
        onError: onRateLimitError,
      }),
      default: createRateLimiter(kv, {
        name: 'default',
        perMinute: config.rateLimits.defaultPerMinute,
        onError: onRateLimitError,
      }),
    },
    startedAt: Date.now(),
    async close() {
      await mailer.flush(); // background sends finish before their dependencies close
      await Promise.allSettled([db.destroy(), kv.close()]);
    },
  };
}
