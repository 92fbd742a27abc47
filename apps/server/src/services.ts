import { createDb, type Db } from '@app/db';
import type { Config } from './config.ts';
import { createKeyValueStore, type KeyValueStore } from './infra/kv/index.ts';
import type { Logger } from './infra/logger.ts';

/** Everything a request handler may use; built once per process. */
export interface Services {
  config: Config;
  log: Logger;
  db: Db;
  kv: KeyValueStore;
  /** Epoch ms when this process started serving (for `uptimeSeconds`). */
  startedAt: number;
  close(): Promise<void>;
}

export interface ServiceOverrides {
  db?: Db;
  kv?: KeyValueStore;
}

/**
 * `databaseUrl` is the resolved connection (DATABASE_URL or the embedded cluster that
 * main.ts started); tests pass their own `db` and `kv`.
 */
export function createServices(
  config: Config,
  log: Logger,
  databaseUrl: string,
  overrides: ServiceOverrides = {},
): Services {
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
  return {
    config,
    log,
    db,
    kv,
    startedAt: Date.now(),
    async close() {
      await Promise.allSettled([db.destroy(), kv.close()]);
    },
  };
}
