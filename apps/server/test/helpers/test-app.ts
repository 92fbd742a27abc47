import { randomBytes } from 'node:crypto';
import { createDb } from '@app/db';
import { createTestDatabase, type TestDatabase } from '@app/db/testing';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { type BuildAppOptions, buildApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import type { Clock } from '../../src/infra/clock.ts';
import { type KeyValueStore, MemoryStore, RedisStore } from '../../src/infra/kv/index.ts';
import { createLogger, type Logger } from '../../src/infra/logger.ts';
import { MemoryTransport } from '../../src/infra/mail/index.ts';
import { EMAIL_QUEUE } from '../../src/modules/auth/email-jobs.ts';
import { STORAGE_DELETE_QUEUE } from '../../src/modules/files/file-jobs.ts';
import { startWorker } from '../../src/modules/jobs/jobs.ts';
import { createServices, type ServiceOverrides, type Services } from '../../src/services.ts';
import { observeErrors } from './error-observations.ts';

/** The config a test app runs with: NODE_ENV=test, quiet logs, plus `env`. */
export function testConfig(env: Record<string, string> = {}): Config {
  const result = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...env });
  if (!result.ok) throw new Error(`Invalid test config: ${result.problems.join('; ')}`);
  return result.config;
}

/** A Redis key prefix no other test uses. */
const uniqueKeyPrefix = () => `test:${randomBytes(6).toString('hex')}:`;

/**
 * The environment that points a spawned server or worker at the machine's Redis when
 * REDIS_URL is set (as in CI), under a key prefix of its own; else nothing (the memory
 * store). With the default prefix, every such process shared its rate-limit counters (ten
 * sign-ins a minute from 127.0.0.1) and its revocation cache with the others and with
 * anything else on the machine (`pnpm bench`, a `pnpm dev`).
 */
export function sharedRedisEnv(): { REDIS_URL?: string; REDIS_KEY_PREFIX?: string } {
  const url = process.env.REDIS_URL;
  return url ? { REDIS_URL: url, REDIS_KEY_PREFIX: uniqueKeyPrefix() } : {};
}

/**
 * Real Redis under a key prefix of its own when REDIS_URL is set (as in CI), else the
 * memory store. Two stores given the same `keyPrefix` share their keys, like two processes.
 */
export function createTestKeyValueStore(keyPrefix = uniqueKeyPrefix()): KeyValueStore & { cleanup(): Promise<void> } {
  const url = process.env.REDIS_URL;
  if (!url) {
    const memory = new MemoryStore();
    return Object.assign(memory, { cleanup: () => memory.close() });
  }
  // A whole suite on two cores can keep a real Redis from answering within production's
  // 500 ms default: a 503 there would be the machine's load, not the code. Tests about
  // timeouts give their store a timeout of its own.
  const redis = new RedisStore({ url, keyPrefix, commandTimeoutMs: 5_000 });
  return Object.assign(redis, {
    async cleanup() {
      await redis.close();
      const raw = new Redis(url);
      const keys = await raw.keys(`${keyPrefix}*`);
      if (keys.length > 0) await raw.del(...keys);
      await raw.quit();
    },
  });
}

/** Every key the app's store holds (without the prefix), whichever store it is. */
export async function storedKeys(t: Pick<TestApp, 'services'>): Promise<string[]> {
  const { kv } = t.services;
  if (kv instanceof MemoryStore) return kv.keys();
  if (!(kv instanceof RedisStore)) throw new Error('storedKeys: unknown store');
  const prefix = kv.client.options.keyPrefix ?? '';
  const keys = await kv.client.keys(`${prefix}*`);
  return keys.map((key) => key.slice(prefix.length));
}

/** A clock the test moves by hand. */
export interface FakeClock extends Clock {
  advance(ms: number): void;
}

export function fakeClock(start = Date.now()): FakeClock {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
  };
}

export interface TestApp {
  app: FastifyInstance;
  services: Services;
  /** Every email the app sent (unless a test chose another transport). */
  mail: MemoryTransport;
  /** Waits until background work (emails, storage deletions) is done: read `mail` after this. */
  settle(): Promise<void>;
  database: TestDatabase;
  close(): Promise<void>;
}

export interface TestAppOptions extends BuildAppOptions {
  env?: Record<string, string>;
  overrides?: ServiceOverrides;
  /** Share another app's database (a second instance); it is then not dropped on close. */
  database?: TestDatabase;
  /** Send email as the config says (Resend, SMTP or the outbox) instead of into `mail`. */
  configuredMail?: boolean;
  /** Adds plain Fastify routes (not procedures) to the app before it is ready. */
  plainRoutes?: (app: FastifyInstance, services: Services) => void;
  /** Where the app logs (the config's LOG_LEVEL, quiet by default, otherwise). */
  log?: Logger;
}

/** An app over a fresh database of its own (and its own Redis keys); call close() after. */
export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const ownsDatabase = !options.database;
  const database = options.database ?? (await createTestDatabase());
  // Tests sign in far more than 10 times a minute from one address: only the rate-limit
  // tests ask for the real limits.
  const config = testConfig({
    DATABASE_URL: database.url,
    RATE_LIMIT_AUTH_PER_MINUTE: '100000',
    JOBS_POLL_INTERVAL: '1',
    // Both pools' wait for a connection: see the app's below.
    DATABASE_CONNECT_TIMEOUT_MS: '30000',
    ...options.env,
  });
  const log = options.log ?? createLogger({ level: config.logLevel, format: 'json' });
  const kv = createTestKeyValueStore();
  const mail = new MemoryTransport();
  const services = await createServices(config, log, database.url, {
    // As with Redis above: every package's tests at once on two cores can make a wait for a
    // connection outlast production's 5 s, a 503 that would be the machine's load, not the code.
    // Tests of an unreachable database bring a pool of their own.
    db: createDb({ url: database.url, poolMax: 4, connectionTimeoutMs: config.database.connectTimeoutMs }),
    kv,
    ...(!options.configuredMail && { mailTransport: mail }),
    ...options.overrides,
  });
  const { router, trpcTransport, officialTrpcPrefix } = options;
  const app = await buildApp(services, { router, trpcTransport, officialTrpcPrefix });
  observeErrors(app);
  options.plainRoutes?.(app, services);
  await app.ready();
  // As main.js does: this app runs its jobs (emails, maintenance) unless told JOBS_WORKER=off.
  if (config.jobs.embeddedWorker) await startWorker(services);
  return {
    app,
    services,
    mail,
    settle: () => services.jobs.settle([EMAIL_QUEUE.name, STORAGE_DELETE_QUEUE.name]),
    database,
    async close() {
      try {
        await app.close();
        await services.close();
      } finally {
        await kv.cleanup();
        if (ownsDatabase) await database.drop();
      }
    },
  };
}

/** A TestApp listening on a random local port, for clients that speak real HTTP (the SDK). */
export async function startTestServer(options: TestAppOptions = {}): Promise<TestApp & { url: string }> {
  const testApp = await buildTestApp(options);
  const address = await testApp.app.listen({ host: '127.0.0.1', port: 0 });
  return { ...testApp, url: address };
}
