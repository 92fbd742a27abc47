/**
 * Short-lived shared state (revocation markers, rate-limit counters, one-time codes).
 * Redis in production; an in-process map with the same semantics on embedded defaults.
 * Values are strings; TTLs are in milliseconds. A store that cannot answer in time throws
 * DependencyUnavailableError (infra/dependency-errors.ts).
 */
import type { DependencyUnavailableError } from '../dependency-errors.ts';
export interface KeyValueStore {
  readonly kind: 'redis' | 'memory';
  get(key: string): Promise<string | null>;
  /** Several keys in one round trip, in order. */
  getMany(keys: string[]): Promise<(string | null)[]>;
  /** Stores `value`; with `ttlMs` the key disappears after that long, without it it never expires. */
  set(key: string, value: string, options?: { ttlMs?: number }): Promise<void>;
  /** As `set`, only when the key does not exist (atomically); true when it was stored. */
  setIfAbsent(key: string, value: string, options?: { ttlMs?: number }): Promise<boolean>;
  /** Several keys at once, all or none (one transaction). */
  setMany(entries: { key: string; value: string; ttlMs?: number }[]): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /**
   * Adds `by` (default 1; 0 reads, a negative number takes back) and returns the new value
   * with the counter's remaining lifetime; a missing key counts from 0. `ttlMs` is applied
   * only when the counter has none yet, so a window starts at its first increment. A
   * negative step takes back only from a live counter: a missing one (its window over)
   * stays missing and reads 0, so what is taken back never lowers the next window.
   */
  increment(key: string, options?: { ttlMs?: number; by?: number }): Promise<Counter>;
  /**
   * `increment(key, options)` and `getMany(keys)` in one round trip (a signed-in call's rate
   * limit and revocation check). Each part answers on its own, an unavailable store as a
   * DependencyUnavailableError in its place (one that is full still reads); never rejects
   * for an outage.
   */
  incrementAndGet(
    key: string,
    options: { ttlMs?: number; by?: number },
    keys: string[],
  ): Promise<{ counter: Counter | DependencyUnavailableError; values: (string | null)[] | DependencyUnavailableError }>;
  /** Rejects when the store cannot answer. */
  ping(): Promise<void>;
  /**
   * How many times the store has connected (an in-process one: 1). After a reconnect it may
   * not hold what it held (a failover to a replica that had not received the last writes, a
   * restart from a snapshot): a cache kept in it is to be checked again.
   */
  readonly connections: number;
  /**
   * Why the store may drop a key before it expires (Redis's eviction policy, under its
   * memory limit), or undefined when it never does: start-up refuses a store that would
   * drop a revocation marker.
   */
  evictionRisk(): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface Counter {
  value: number;
  /** Milliseconds until the counter disappears; undefined when it never does. */
  expiresInMs: number | undefined;
}

export class KeyValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyValueError';
  }
}

export function assertTtl(ttlMs: number | undefined): void {
  if (ttlMs !== undefined && (!Number.isInteger(ttlMs) || ttlMs <= 0)) {
    throw new KeyValueError(`ttlMs must be a positive whole number of milliseconds, got ${ttlMs}`);
  }
}
