import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { KeyValueStore } from './kv/index.ts';
import { RedisStore } from './kv/index.ts';

export interface RateLimitState {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export interface RateLimiter {
  readonly limit: number;
  consume(key: string): Promise<RateLimitState>;
}

/**
 * A fixed window of `perMinute` calls per key, shared by every process through Redis
 * (in-process on embedded defaults). If Redis fails, the call is allowed and `onError`
 * is told: a Redis hiccup must not lock every user out.
 */
export function createRateLimiter(
  kv: KeyValueStore,
  options: { name: string; perMinute: number; onError?: (error: unknown) => void },
): RateLimiter {
  const settings = { keyPrefix: `rate:${options.name}`, points: options.perMinute, duration: 60 };
  const limiter =
    kv instanceof RedisStore
      ? new RateLimiterRedis({ ...settings, storeClient: kv.client })
      : new RateLimiterMemory(settings);
  const state = (res: RateLimiterRes, allowed: boolean): RateLimitState => ({
    allowed,
    limit: options.perMinute,
    remaining: Math.max(0, res.remainingPoints),
    resetMs: res.msBeforeNext,
  });
  return {
    limit: options.perMinute,
    async consume(key) {
      try {
        return state(await limiter.consume(key), true);
      } catch (error) {
        if (error instanceof RateLimiterRes) return state(error, false);
        options.onError?.(error);
        return { allowed: true, limit: options.perMinute, remaining: options.perMinute, resetMs: 60_000 };
      }
    },
  };
}
