import { assertTtl, type Counter, KeyValueError, type KeyValueStore } from './key-value-store.ts';

interface Entry {
  value: string;
  /** Epoch ms; undefined = never expires. */
  expiresAt: number | undefined;
}

const SWEEP_INTERVAL_MS = 60_000;

/** Single-process stand-in for Redis, used when REDIS_URL is unset. */
export class MemoryStore implements KeyValueStore {
  readonly kind = 'memory';
  readonly connections = 1;
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    // Expired entries are dropped on read; the sweep frees the ones nobody reads again.
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.#entries.delete(key);
    }
  }

  async get(key: string): Promise<string | null> {
    return this.#live(key)?.value ?? null;
  }

  async getMany(keys: string[]): Promise<(string | null)[]> {
    return keys.map((key) => this.#live(key)?.value ?? null);
  }

  async set(key: string, value: string, options: { ttlMs?: number } = {}): Promise<void> {
    assertTtl(options.ttlMs);
    this.#entries.set(key, { value, expiresAt: options.ttlMs === undefined ? undefined : this.#now() + options.ttlMs });
  }

  async setIfAbsent(key: string, value: string, options: { ttlMs?: number } = {}): Promise<boolean> {
    if (this.#live(key) !== undefined) return false;
    await this.set(key, value, options);
    return true;
  }

  async setMany(entries: { key: string; value: string; ttlMs?: number }[]): Promise<void> {
    for (const entry of entries) assertTtl(entry.ttlMs);
    for (const { key, value, ttlMs } of entries) await this.set(key, value, { ttlMs });
  }

  async delete(key: string): Promise<boolean> {
    const existed = this.#live(key) !== undefined;
    this.#entries.delete(key);
    return existed;
  }

  async incrementAndGet(
    key: string,
    options: { ttlMs?: number; by?: number },
    keys: string[],
  ): Promise<{ counter: Counter; values: (string | null)[] }> {
    return { counter: await this.increment(key, options), values: await this.getMany(keys) };
  }

  async increment(key: string, options: { ttlMs?: number; by?: number } = {}): Promise<Counter> {
    assertTtl(options.ttlMs);
    const by = options.by ?? 1;
    const live = this.#live(key);
    if (by < 0 && live === undefined) return { value: 0, expiresInMs: undefined };
    const entry = live ?? { value: '0', expiresAt: undefined };
    const current = Number(entry.value);
    if (!Number.isSafeInteger(current) || !/^-?\d+$/.test(entry.value)) {
      throw new KeyValueError(`Cannot increment "${key}": its value is not an integer`);
    }
    entry.value = String(current + by);
    const now = this.#now(); // read once: a new window is then exactly ttlMs long
    if (entry.expiresAt === undefined && options.ttlMs !== undefined) entry.expiresAt = now + options.ttlMs;
    this.#entries.set(key, entry);
    return {
      value: current + by,
      expiresInMs: entry.expiresAt === undefined ? undefined : entry.expiresAt - now,
    };
  }

  /** The live keys (tests look at what was stored). */
  keys(): string[] {
    return [...this.#entries.keys()].filter((key) => this.#live(key) !== undefined);
  }

  async ping(): Promise<void> {}

  /** (It drops no key before its time: it has no memory limit of its own.) */
  async evictionRisk(): Promise<string | undefined> {
    return undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#entries.clear();
  }
}
