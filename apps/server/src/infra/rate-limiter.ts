import { DependencyUnavailableError } from './dependency-errors.ts';
import { type Counter, type KeyValueStore, MemoryStore } from './kv/index.ts';

export interface RateLimitState {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export interface RateLimiter {
  readonly limit: number;
  /** Counts `calls` (default one) against `key`: allowed while the window holds at most `limit` calls. */
  consume(key: string, calls?: number): Promise<RateLimitState>;
  /** Whether another call would be allowed, without counting one (for limits that count failures only). */
  peek(key: string): Promise<RateLimitState>;
}

const WINDOW_MS = 60_000;

/**
 * A window of `perMinute` calls per key that starts at the key's first call, shared by
 * every process through the key-value store (one atomic INCRBY+PEXPIRE). While the shared
 * store is unavailable, a per-process store stands in (`onStoreError` is told), so there
 * is always a limit, if a looser one: each process then allows `perMinute` on its own.
 */
export function createRateLimiter(
  kv: KeyValueStore,
  options: { name: string; perMinute: number; onStoreError?: (error: unknown) => void },
): RateLimiter {
  const { perMinute: limit } = options;
  const standIn = kv.kind === 'memory' ? kv : new MemoryStore();

  async function count(key: string, by: number): Promise<RateLimitState> {
    const counterKey = `rate:${options.name}:${key}`;
    let counter: Counter;
    try {
      counter = await kv.increment(counterKey, { ttlMs: WINDOW_MS, by });
    } catch (error) {
      if (!(error instanceof DependencyUnavailableError) || standIn === kv) throw error;
      options.onStoreError?.(error);
      counter = await standIn.increment(counterKey, { ttlMs: WINDOW_MS, by });
    }
    const used = counter.value;
    return {
      allowed: by === 0 ? used < limit : used <= limit,
      limit,
      remaining: Math.max(0, limit - used),
      resetMs: counter.expiresInMs ?? WINDOW_MS,
    };
  }

  return {
    limit,
    consume: (key, calls = 1) => count(key, calls),
    peek: (key) => count(key, 0),
  };
}
