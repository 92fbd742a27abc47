import type { KeyValueStore } from './key-value-store.ts';
import { MemoryStore } from './memory-store.ts';
import { RedisStore } from './redis-store.ts';

export { type Counter, KeyValueError, type KeyValueStore } from './key-value-store.ts';
export { MemoryStore } from './memory-store.ts';
export { RedisStore } from './redis-store.ts';

/** Redis when a URL is configured, else the in-process store. */
export function createKeyValueStore(options: {
  redisUrl: string | undefined;
  keyPrefix: string;
  commandTimeoutMs?: number;
  onError?: (error: Error) => void;
}): KeyValueStore {
  if (!options.redisUrl) return new MemoryStore();
  return new RedisStore({
    url: options.redisUrl,
    keyPrefix: options.keyPrefix,
    commandTimeoutMs: options.commandTimeoutMs,
    onError: options.onError,
  });
}
