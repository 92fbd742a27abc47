import { Redis } from 'ioredis';
import { assertTtl, KeyValueError, type KeyValueStore } from './key-value-store.ts';

// INCR, and PEXPIRE only when INCR created the key: one round trip, atomic, any Redis >= 2.6.
const INCREMENT_SCRIPT = `
local value = redis.call('INCR', KEYS[1])
if value == 1 and tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return value`;

type RedisWithIncrement = Redis & { incrementWithTtl(key: string, ttlMs: number): Promise<number> };

export interface RedisStoreOptions {
  url: string;
  keyPrefix: string;
  /** Connection problems, reported at most once per outage. */
  onError?: (error: Error) => void;
}

export class RedisStore implements KeyValueStore {
  readonly kind = 'redis';
  readonly client: RedisWithIncrement;

  constructor(options: RedisStoreOptions) {
    const client = new Redis(options.url, {
      keyPrefix: options.keyPrefix,
      // Fail a command fast while Redis is away instead of queueing requests behind it.
      maxRetriesPerRequest: 1,
      connectTimeout: 5_000,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
      lazyConnect: false,
    });
    client.defineCommand('incrementWithTtl', { numberOfKeys: 1, lua: INCREMENT_SCRIPT });
    let reported = false;
    client.on('error', (error: Error) => {
      if (!reported) options.onError?.(error);
      reported = true;
    });
    client.on('ready', () => {
      reported = false;
    });
    this.client = client as RedisWithIncrement;
  }

  async get(key: string): Promise<string | null> {
    return this.client.get(key);
  }

  async set(key: string, value: string, options: { ttlMs?: number } = {}): Promise<void> {
    assertTtl(options.ttlMs);
    if (options.ttlMs === undefined) await this.client.set(key, value);
    else await this.client.set(key, value, 'PX', options.ttlMs);
  }

  async delete(key: string): Promise<boolean> {
    return (await this.client.del(key)) > 0;
  }

  async increment(key: string, options: { ttlMs?: number } = {}): Promise<number> {
    assertTtl(options.ttlMs);
    try {
      return await this.client.incrementWithTtl(key, options.ttlMs ?? 0);
    } catch (error) {
      if (error instanceof Error && /not an integer/.test(error.message)) {
        throw new KeyValueError(`Cannot increment "${key}": its value is not an integer`);
      }
      throw error;
    }
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }
}
