import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../src/infra/dependency-errors.ts';
import { CircuitBreaker } from '../src/infra/kv/circuit-breaker.ts';
import { KeyValueError, type KeyValueStore, MemoryStore } from '../src/infra/kv/index.ts';
import { createTestKeyValueStore } from './helpers/index.ts';

/** The contract every store meets, so the embedded default behaves like production. */
function contract(name: string, makeStore: () => KeyValueStore & { cleanup?: () => Promise<void> }, skip = false) {
  describe.skipIf(skip)(`${name} key-value store`, () => {
    const store = skip ? (undefined as never) : makeStore();
    afterAll(async () => {
      if (store?.cleanup) await store.cleanup();
      else await store?.close();
    });

    it('gets what was set, and null for a missing key', async () => {
      expect(await store.get('missing')).toBeNull();
      await store.set('greeting', 'hello');
      expect(await store.get('greeting')).toBe('hello');
      await store.set('greeting', 'hello again');
      expect(await store.get('greeting')).toBe('hello again');
    });

    // Margins generous enough for a loaded CI machine: these check semantics, not timing.
    it('forgets a key after its TTL, keeps one without', async () => {
      await store.set('short', 'lived', { ttlMs: 400 });
      await store.set('forever', 'kept');
      expect(await store.get('short')).toBe('lived');
      await sleep(600);
      expect(await store.get('short')).toBeNull();
      expect(await store.get('forever')).toBe('kept');
    });

    it('sets a key only when it is absent, with its TTL, and says whether it did', async () => {
      expect(await store.setIfAbsent('claimed', 'first', { ttlMs: 400 })).toBe(true);
      expect(await store.setIfAbsent('claimed', 'second')).toBe(false);
      expect(await store.get('claimed')).toBe('first');
      await sleep(600);
      expect(await store.setIfAbsent('claimed', 'third')).toBe(true);
      expect(await store.get('claimed')).toBe('third');
    });

    it('deletes, and says whether the key existed', async () => {
      await store.set('doomed', '1');
      expect(await store.delete('doomed')).toBe(true);
      expect(await store.delete('doomed')).toBe(false);
      expect(await store.get('doomed')).toBeNull();
    });

    it('increments from zero and keeps the window of the first increment', async () => {
      expect(await store.increment('counter', { ttlMs: 800 })).toEqual({ value: 1, expiresInMs: 800 });
      await sleep(300);
      const second = await store.increment('counter', { ttlMs: 800 }); // does not extend the TTL
      expect(second.value).toBe(2);
      expect(second.expiresInMs).toBeLessThan(800);
      expect(second.expiresInMs).toBeGreaterThan(0);
      expect((await store.increment('counter', { ttlMs: 800 })).value).toBe(3);
      await sleep(700); // past the first increment's window, though not past the last one's
      expect(await store.get('counter')).toBeNull();
      expect((await store.increment('counter', { ttlMs: 800 })).value).toBe(1);
    });

    it('reads a counter with by: 0 and takes back with a negative step', async () => {
      expect((await store.increment('stepped', { ttlMs: 5_000, by: 0 })).value).toBe(0);
      expect((await store.increment('stepped', { ttlMs: 5_000 })).value).toBe(1);
      expect((await store.increment('stepped', { ttlMs: 5_000 })).value).toBe(2);
      const back = await store.increment('stepped', { by: -1 });
      expect(back.value).toBe(1);
      expect(back.expiresInMs).toBeGreaterThan(0); // keeps its window
      expect((await store.increment('stepped', { by: 0 })).value).toBe(1);
    });

    it('takes back nothing from a counter whose window is over: the next window starts at zero', async () => {
      expect((await store.increment('ended', { ttlMs: 300 })).value).toBe(1);
      await sleep(500);
      expect(await store.increment('ended', { ttlMs: 300, by: -1 })).toEqual({ value: 0, expiresInMs: undefined });
      expect(await store.get('ended')).toBeNull();
      expect((await store.increment('ended', { ttlMs: 5_000 })).value).toBe(1);
    });

    it('increments a key without TTL forever, and refuses a non-integer value', async () => {
      expect(await store.increment('plain')).toEqual({ value: 1, expiresInMs: undefined });
      expect((await store.increment('plain')).value).toBe(2);
      await store.set('word', 'abc');
      await expect(store.increment('word')).rejects.toBeInstanceOf(KeyValueError);
      expect(await store.get('word')).toBe('abc');
    });

    it('gets and sets several keys at once', async () => {
      await store.setMany([
        { key: 'many:a', value: '1' },
        { key: 'many:b', value: '2', ttlMs: 400 },
      ]);
      expect(await store.getMany(['many:a', 'many:missing', 'many:b'])).toEqual(['1', null, '2']);
      await sleep(600);
      expect(await store.getMany(['many:a', 'many:b'])).toEqual(['1', null]);
      expect(await store.getMany([])).toEqual([]);
    });

    it('increments a counter and reads other keys in one call', async () => {
      await store.set('read:a', 'one');
      const first = await store.incrementAndGet('calls', { ttlMs: 5_000 }, ['read:a', 'read:missing']);
      expect(first).toEqual({ counter: { value: 1, expiresInMs: 5_000 }, values: ['one', null] });
      const second = await store.incrementAndGet('calls', { ttlMs: 5_000, by: 2 }, []);
      expect(second.values).toEqual([]);
      expect(second.counter).toMatchObject({ value: 3 });
      expect((second.counter as { expiresInMs: number }).expiresInMs).toBeLessThanOrEqual(5_000);
      expect((second.counter as { expiresInMs: number }).expiresInMs).toBeGreaterThan(0);
      expect((await store.increment('calls', { by: 0 })).value).toBe(3);
      await expect(store.incrementAndGet('calls', { ttlMs: 0 }, [])).rejects.toBeInstanceOf(KeyValueError);
    });

    it('rejects a TTL that is not a positive whole number', async () => {
      await expect(store.set('bad', 'ttl', { ttlMs: 0 })).rejects.toBeInstanceOf(KeyValueError);
      await expect(store.set('bad', 'ttl', { ttlMs: 1.5 })).rejects.toBeInstanceOf(KeyValueError);
      expect(await store.get('bad')).toBeNull();
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}

contract('memory', () => new MemoryStore());
contract('Redis', () => createTestKeyValueStore(), !process.env.REDIS_URL);

describe.skipIf(!process.env.REDIS_URL)('Redis key-value store, one part refused', () => {
  const store = createTestKeyValueStore();
  afterAll(() => store.cleanup());

  it('still reads when the increment is refused (an error reply fails its part only)', async () => {
    await store.set('not-a-counter', 'abc');
    await store.set('read:b', 'two');
    const { counter, values } = await store.incrementAndGet('not-a-counter', { ttlMs: 5_000 }, ['read:b']);
    expect(counter).toBeInstanceOf(DependencyUnavailableError);
    expect((counter as Error).message).toMatch(/not an integer/);
    expect(values).toEqual(['two']);
    expect(await store.get('not-a-counter')).toBe('abc');
  });
});

describe('memory store with a controlled clock', () => {
  it('expires exactly at the TTL', async () => {
    let now = 1_000;
    const store = new MemoryStore({ now: () => now });
    await store.set('k', 'v', { ttlMs: 500 });
    now = 1_499;
    expect(await store.get('k')).toBe('v');
    now = 1_500;
    expect(await store.get('k')).toBeNull();
    await store.close();
  });

  it('answers a new window as exactly its TTL even when the clock ticks during the call', async () => {
    let now = 1_000;
    const store = new MemoryStore({ now: () => now++ }); // every read of the clock is a millisecond later
    expect(await store.increment('ticking', { ttlMs: 800 })).toEqual({ value: 1, expiresInMs: 800 });
    await store.close();
  });
});

describe('circuit breaker', () => {
  it('opens after the threshold, fails fast while open, then lets one probe through', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ threshold: 3, cooldownMs: 1_000, now: () => now });
    for (let i = 0; i < 2; i++) {
      expect(breaker.allow()).toBe(true);
      breaker.failed();
    }
    expect(breaker.isOpen).toBe(false);
    expect(breaker.allow()).toBe(true);
    breaker.failed(); // the third failure in a row
    expect(breaker.isOpen).toBe(true);
    expect(breaker.allow()).toBe(false);
    now = 999;
    expect(breaker.allow()).toBe(false);
    now = 1_000;
    expect(breaker.allow()).toBe(true); // the probe
    expect(breaker.allow()).toBe(false); // one probe at a time
    breaker.failed();
    expect(breaker.allow()).toBe(false); // open again for a full cooldown
    now = 2_000;
    expect(breaker.allow()).toBe(true);
    breaker.succeeded();
    expect(breaker.isOpen).toBe(false);
    expect(breaker.allow()).toBe(true);
  });

  it('counts consecutive failures only: a success in between starts over', () => {
    const breaker = new CircuitBreaker({ threshold: 2, cooldownMs: 1_000 });
    breaker.failed();
    breaker.succeeded();
    breaker.failed();
    expect(breaker.isOpen).toBe(false);
  });
});
