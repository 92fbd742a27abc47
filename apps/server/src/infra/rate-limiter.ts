import { DependencyUnavailableError } from './dependency-errors.ts';
import { type Counter, type KeyValueStore, MemoryStore } from './kv/index.ts';

export interface RateLimitState {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export const RATE_LIMIT_HEADERS = ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'] as const;

/** The RateLimit-* headers of an answer counted against a limit: every procedure's, every plain route's. */
export function writeRateLimitHeaders(state: RateLimitState, setHeader: (name: string, value: string) => void): void {
  const [limit, remaining, reset] = RATE_LIMIT_HEADERS;
  setHeader(limit, String(state.limit));
  setHeader(remaining, String(state.remaining));
  setHeader(reset, String(Math.max(1, Math.ceil(state.resetMs / 1000))));
}

export interface RateLimiter {
  readonly limit: number;
  /** Counts `calls` (default one) against `key`: allowed while the window holds at most `limit` calls. */
  consume(key: string, calls?: number): Promise<RateLimitState>;
  /** Takes back one call counted against `key` (a check counted before its outcome was known). */
  giveBack(key: string): Promise<void>;
  /**
   * One call against `key`, and the store's values of `keys`, in one round trip. While the
   * store cannot count, the stand-in does; while it cannot read, `values` is its error (what
   * was to be read cannot be known).
   */
  consumeAndGet(
    key: string,
    keys: string[],
  ): Promise<{ state: RateLimitState; values: (string | null)[] | DependencyUnavailableError }>;
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

  const counterKey = (key: string) => `rate:${options.name}:${key}`;

  async function count(key: string, by: number): Promise<RateLimitState> {
    let counter: Counter;
    try {
      counter = await kv.increment(counterKey(key), { ttlMs: WINDOW_MS, by });
    } catch (error) {
      counter = await standInFor(error, key, by);
    }
    return stateOf(counter);
  }

  /** The stand-in's count while the shared store is unavailable (any other error is rethrown). */
  async function standInFor(error: unknown, key: string, by: number): Promise<Counter> {
    if (!(error instanceof DependencyUnavailableError) || standIn === kv) throw error;
    options.onStoreError?.(error);
    return standIn.increment(counterKey(key), { ttlMs: WINDOW_MS, by });
  }

  function stateOf(counter: Counter): RateLimitState {
    const used = counter.value;
    return {
      allowed: used <= limit,
      limit,
      remaining: Math.max(0, limit - used),
      resetMs: counter.expiresInMs ?? WINDOW_MS,
    };
  }

  return {
    limit,
    consume: (key, calls = 1) => count(key, calls),
    giveBack: async (key) => {
      await count(key, -1);
    },
    async consumeAndGet(key, keys) {
      const { counter, values } = await kv.incrementAndGet(counterKey(key), { ttlMs: WINDOW_MS, by: 1 }, keys);
      const counted = counter instanceof DependencyUnavailableError ? await standInFor(counter, key, 1) : counter;
      return { state: stateOf(counted), values };
    },
  };
}

/**
 * The key a client's address is limited under. An IPv6 host holds a whole /64 (it picks any
 * address in it at will), so it is limited as its /64; an IPv4 address written as IPv6
 * (`::ffff:192.0.2.1`) is the IPv4 address.
 */
export function addressKey(ip: string): string {
  if (!ip.includes(':')) return `ip:${ip}`;
  const address = ip.toLowerCase().split('%', 1)[0] as string; // without a zone (`fe80::1%eth0`)
  if (address.startsWith('::ffff:') && address.includes('.')) return `ip:${address.slice(7)}`;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const width = (parts: string[]) => parts.reduce((sum, part) => sum + (part.includes('.') ? 2 : 1), 0);
  const gap = address.indexOf('::');
  const head = groups(gap === -1 ? address : address.slice(0, gap));
  const tail = gap === -1 ? [] : groups(address.slice(gap + 2));
  // (An address a proxy passed on unchecked may be malformed: it still gets a key, never an error.)
  const missing = Math.max(0, 8 - width(head) - width(tail));
  const expanded = gap === -1 ? head : [...head, ...Array<string>(missing).fill('0'), ...tail];
  const network = expanded.slice(0, 4).map((group) => Number.parseInt(group, 16).toString(16));
  return `ip:${network.join(':')}::/64`;
}
