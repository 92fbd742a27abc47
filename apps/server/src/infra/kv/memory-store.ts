import { assertTtl, KeyValueError, type KeyValueStore } from './key-value-store.ts';

interface Entry {
  value: string;
  /** Epoch ms; undefined = never expires. */
  expiresAt: number | undefined;
}

const SWEEP_INTERVAL_MS = 60_000;

/** Single-process stand-in for Redis, used when REDIS_URL is unset. */
export class MemoryStore implements KeyValueStore {
  readonly kind = 'memory';
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

  async set(key: string, value: string, options: { ttlMs?: number } = {}): Promise<void> {
    assertTtl(options.ttlMs);
    this.#entries.set(key, { value, expiresAt: options.ttlMs === undefined ? undefined : this.#now() + options.ttlMs });
  }

  async delete(key: string): Promise<boolean> {
    const existed = this.#live(key) !== undefined;
    this.#entries.delete(key);
    return existed;
  }

  async increment(key: string, options: { ttlMs?: number } = {}): Promise<number> {
    assertTtl(options.ttlMs);
    const entry = this.#live(key);
    if (!entry) {
      const expiresAt = options.ttlMs === undefined ? undefined : this.#now() + options.ttlMs;
      this.#entries.set(key, { value: '1', expiresAt });
      return 1;
    }
    const current = Number(entry.value);
    if (!Number.isSafeInteger(current) || !/^-?\d+$/.test(entry.value)) {
      throw new KeyValueError(`Cannot increment "${key}": its value is not an integer`);
    }
    entry.value = String(current + 1);
    return current + 1;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#entries.clear();
  }
}
