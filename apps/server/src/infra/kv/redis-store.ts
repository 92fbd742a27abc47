import { Redis, ReplyError } from 'ioredis';
import { DependencyUnavailableError } from '../dependency-errors.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { assertTtl, type Counter, KeyValueError, type KeyValueStore } from './key-value-store.ts';

/**
 * Every counter: INCRBY (a negative step only on a live counter), PEXPIRE when the counter
 * has no TTL yet, its remaining TTL, then the values of KEYS[2..] (a signed-in call's
 * revocation keys, read with its rate limit):
 * `{value, ttl, {values...}}`, one round trip, atomic. One command, not a pipeline of two:
 * ioredis builds a pipeline object, a promise per command and a result array for every call,
 * which cost a signed-in call more CPU than the command. The increment runs under pcall, so a
 * Redis that refuses writes (maxmemory) still reads: its error comes back as text in the
 * value's place.
 */
const INCREMENT_SCRIPT = `
local value = 0
local ttl = -2
if tonumber(ARGV[2]) >= 0 or redis.call('EXISTS', KEYS[1]) == 1 then
  value = redis.pcall('INCRBY', KEYS[1], ARGV[2])
  if type(value) == 'table' then
    value = value.err
  else
    ttl = redis.call('PTTL', KEYS[1])
    if ttl == -1 and tonumber(ARGV[1]) > 0 then
      redis.call('PEXPIRE', KEYS[1], ARGV[1])
      ttl = tonumber(ARGV[1])
    end
  end
end
local values = {}
if #KEYS > 1 then values = redis.call('MGET', unpack(KEYS, 2)) end
return {value, ttl, values}`;

type IncrementReply = [value: number | string, ttl: number, values: (string | null)[]];
type RedisWithIncrement = Redis & {
  /** `numberOfKeys`, the counter's key, the keys to read, then the TTL (0: none) and the step. */
  incrementAndGet(...args: (string | number)[]): Promise<IncrementReply>;
};

/** The counter the script answered, or the error reply its increment got (a full Redis, a value that is not an integer). */
function counterOf([value, ttl]: IncrementReply): Counter | DependencyUnavailableError {
  if (typeof value === 'number') return { value, expiresInMs: ttl >= 0 ? ttl : undefined };
  return new DependencyUnavailableError('redis', `Redis could not serve the call: ${value}`);
}

export interface RedisStoreOptions {
  url: string;
  keyPrefix: string;
  /** A command without an answer within this long fails (a hung or overloaded Redis). */
  commandTimeoutMs?: number;
  /** Connection problems, reported at most once per outage. */
  onError?: (error: Error) => void;
}

/** Consecutive connection failures that open the circuit, and how long it then stays open. */
const BREAKER = { threshold: 3, cooldownMs: 1_000 };
const CONNECT_TIMEOUT_MS = 2_000;

/**
 * Every command is bounded: `commandTimeoutMs` for an answer, no offline queue (while the
 * connection is down a command fails at once instead of waiting for a reconnect), and a
 * circuit breaker that fails calls at once while Redis keeps failing. Whatever cannot be
 * answered surfaces as DependencyUnavailableError: a 503 for the client, never a hang.
 */
export class RedisStore implements KeyValueStore {
  readonly kind = 'redis';
  readonly client: RedisWithIncrement;
  readonly #breaker = new CircuitBreaker(BREAKER);
  /** Settles when the first connection is ready (commands before it wait, bounded, instead of failing). */
  readonly #firstConnection: Promise<void>;
  #connections = 0;

  constructor(options: RedisStoreOptions) {
    const client = new Redis(options.url, {
      keyPrefix: options.keyPrefix,
      commandTimeout: options.commandTimeoutMs ?? 500,
      connectTimeout: CONNECT_TIMEOUT_MS,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    client.defineCommand('incrementAndGet', { lua: INCREMENT_SCRIPT });
    let reported = false;
    client.on('error', (error: Error) => {
      if (!reported) options.onError?.(error);
      reported = true;
    });
    client.on('ready', () => {
      reported = false;
      this.#connections += 1;
    });
    this.#firstConnection = new Promise<void>((resolve) => {
      client.once('ready', resolve);
      setTimeout(resolve, CONNECT_TIMEOUT_MS).unref();
    });
    this.client = client as RedisWithIncrement;
  }

  /** True while repeated failures keep calls from going out (they fail at once). */
  get circuitOpen(): boolean {
    return this.#breaker.isOpen;
  }

  /** Runs one command under the breaker; every failure means Redis is unavailable. */
  async #run<T>(command: () => Promise<T>): Promise<T> {
    if (this.client.status === 'wait' || this.client.status === 'connecting' || this.client.status === 'connect') {
      await this.#firstConnection;
    }
    if (!this.#breaker.allow()) {
      throw new DependencyUnavailableError('redis', 'Redis is unavailable (circuit open after repeated failures)');
    }
    try {
      const result = await command();
      this.#breaker.succeeded();
      return result;
    } catch (error) {
      // An error reply (OOM, READONLY, LOADING, WRONGTYPE) comes from a Redis that answers: not a
      // connection failure, so it does not open the circuit. It still cannot serve the call.
      if (error instanceof ReplyError) this.#breaker.succeeded();
      else this.#breaker.failed();
      const reason = error instanceof Error ? error.message : String(error);
      throw new DependencyUnavailableError('redis', `Redis could not serve the call: ${reason}`, { cause: error });
    }
  }

  async get(key: string): Promise<string | null> {
    return this.#run(() => this.client.get(key));
  }

  async getMany(keys: string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    return this.#run(() => this.client.mget(keys));
  }

  async set(key: string, value: string, options: { ttlMs?: number } = {}): Promise<void> {
    assertTtl(options.ttlMs);
    const { ttlMs } = options;
    await this.#run(() =>
      ttlMs === undefined ? this.client.set(key, value) : this.client.set(key, value, 'PX', ttlMs),
    );
  }

  async setIfAbsent(key: string, value: string, options: { ttlMs?: number } = {}): Promise<boolean> {
    assertTtl(options.ttlMs);
    const { ttlMs } = options;
    const stored = await this.#run(() =>
      ttlMs === undefined ? this.client.set(key, value, 'NX') : this.client.set(key, value, 'PX', ttlMs, 'NX'),
    );
    return stored === 'OK';
  }

  async setMany(entries: { key: string; value: string; ttlMs?: number }[]): Promise<void> {
    for (const entry of entries) assertTtl(entry.ttlMs);
    if (entries.length === 0) return;
    await this.#run(async () => {
      const transaction = this.client.multi();
      for (const { key, value, ttlMs } of entries) {
        if (ttlMs === undefined) transaction.set(key, value);
        else transaction.set(key, value, 'PX', ttlMs);
      }
      const results = (await transaction.exec()) ?? [];
      const failed = results.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    });
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#run(() => this.client.del(key))) > 0;
  }

  async increment(key: string, options: { ttlMs?: number; by?: number } = {}): Promise<Counter> {
    assertTtl(options.ttlMs);
    const counter = counterOf(
      await this.#run(() => this.client.incrementAndGet(1, key, options.ttlMs ?? 0, options.by ?? 1)),
    );
    if (!(counter instanceof DependencyUnavailableError)) return counter;
    // The caller's mistake, not an outage.
    if (/not an integer/.test(counter.message)) throw new KeyValueError('The value is not an integer');
    throw counter;
  }

  async incrementAndGet(
    key: string,
    options: { ttlMs?: number; by?: number },
    keys: string[],
  ): Promise<{
    counter: Counter | DependencyUnavailableError;
    values: (string | null)[] | DependencyUnavailableError;
  }> {
    assertTtl(options.ttlMs);
    let reply: IncrementReply;
    try {
      reply = await this.#run(() =>
        this.client.incrementAndGet(1 + keys.length, key, ...keys, options.ttlMs ?? 0, options.by ?? 1),
      );
    } catch (error) {
      if (!(error instanceof DependencyUnavailableError)) throw error;
      return { counter: error, values: error };
    }
    // The increment's own error reply fails its part only: the values still answer.
    return { counter: counterOf(reply), values: reply[2] };
  }

  async ping(): Promise<void> {
    await this.#run(() => this.client.ping());
  }

  get connections(): number {
    return this.#connections;
  }

  /** Redis drops keys before their time only under a memory limit (`maxmemory`), by a policy other than `noeviction`. */
  async evictionRisk(): Promise<string | undefined> {
    const info = await this.#run(() => this.client.info('memory'));
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    const limit = Number(field('maxmemory') ?? 0);
    const policy = field('maxmemory_policy') ?? 'noeviction';
    if (limit === 0 || policy === 'noeviction') return undefined;
    return `its maxmemory-policy is ${policy} (under maxmemory ${field('maxmemory_human') ?? limit})`;
  }

  async close(): Promise<void> {
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }
}
