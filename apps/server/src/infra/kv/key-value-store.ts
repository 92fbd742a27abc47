/**
 * Short-lived shared state (revocation markers, rate-limit counters, one-time codes).
 * Redis in production; an in-process map with the same semantics on embedded defaults.
 * Values are strings; TTLs are in milliseconds.
 */
export interface KeyValueStore {
  readonly kind: 'redis' | 'memory';
  get(key: string): Promise<string | null>;
  /** Stores `value`; with `ttlMs` the key disappears after that long, without it it never expires. */
  set(key: string, value: string, options?: { ttlMs?: number }): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /**
   * Adds 1 and returns the new value; a missing key counts from 0. `ttlMs` is applied only
   * when this call creates the key, so a counter's window starts at its first increment.
   */
  increment(key: string, options?: { ttlMs?: number }): Promise<number>;
  /** Rejects when the store cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
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
