import { createDb } from '@app/db';
import { createTestDatabase } from '@app/db/testing';
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyValueStore } from '../src/infra/kv/index.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  createTestKeyValueStore,
  registerAccount,
  registerAdmin,
  type TestApp,
} from './helpers/index.ts';

/**
 * What one call costs the backends, counted on a quiet app: SQL statements (a Kysely
 * plugin) and key-value round trips (every store method is one round trip: a pipeline or a
 * script at most). The signed-in path's budget: one round trip for the rate limit and the
 * revocation check together, one statement for a user with its roles and permissions.
 */
describe('backend round trips per call', () => {
  let t: TestApp;
  let account: Account;
  const counts = { sql: 0, kv: 0 };
  const kvCalls: string[] = [];

  beforeAll(async () => {
    const database = await createTestDatabase();
    const counting: KyselyPlugin = {
      transformQuery: (args) => {
        counts.sql += 1;
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    const store = createTestKeyValueStore();
    const counted = new Proxy(store, {
      get(target, property) {
        // (Read on the store itself: its getters read its private fields.)
        const value = Reflect.get(target, property);
        if (typeof value !== 'function' || ['close', 'cleanup', 'ping'].includes(String(property))) {
          return typeof value === 'function' ? value.bind(target) : value;
        }
        return (...args: unknown[]) => {
          counts.kv += 1;
          kvCalls.push(String(property));
          return value.apply(target, args);
        };
      },
    }) as KeyValueStore;
    t = await buildTestApp({
      database,
      overrides: { db: createDb({ url: database.url, poolMax: 2 }).withPlugin(counting), kv: counted },
    });
    account = await registerAccount(t.app);
    // The first signed-in call finds no revocation cache and builds it (in the background).
    await t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) });
    while ((await store.get('revoked-sessions:cached')) === null) await new Promise((r) => setTimeout(r, 20));
    await t.settle();
  });
  afterAll(async () => {
    await t.close();
  });

  /** The SQL statements and key-value round trips `call` costs (background jobs settled first). */
  async function cost(call: () => Promise<{ statusCode: number }>, status = 200) {
    await t.settle();
    const before = { ...counts };
    kvCalls.length = 0;
    const response = await call();
    expect(response.statusCode).toBe(status);
    return { sql: counts.sql - before.sql, kv: counts.kv - before.kv, kvCalls: [...kvCalls] };
  }

  it('users.me: one key-value round trip (rate limit and revocation together) and one SQL statement', async () => {
    const rest = await cost(() => t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) }));
    expect(rest).toEqual({ sql: 1, kv: 1, kvCalls: ['incrementAndGet'] });
    const trpc = await cost(() => t.app.inject({ method: 'GET', url: '/trpc/users.me', headers: bearer(account) }));
    expect(trpc).toEqual({ sql: 1, kv: 1, kvCalls: ['incrementAndGet'] });
  });

  it('notes.list and notes.create: one round trip and one statement each', async () => {
    const created = await cost(() =>
      t.app.inject({ method: 'POST', url: '/api/notes', headers: bearer(account), payload: { title: 'Counted' } }),
    );
    expect(created).toEqual({ sql: 1, kv: 1, kvCalls: ['incrementAndGet'] });
    const listed = await cost(() => t.app.inject({ method: 'GET', url: '/api/notes', headers: bearer(account) }));
    expect(listed).toEqual({ sql: 1, kv: 1, kvCalls: ['incrementAndGet'] });
  });

  it('a refused token costs one round trip (its rate limit) and no SQL', async () => {
    const refused = await cost(
      () => t.app.inject({ method: 'GET', url: '/api/users/me', headers: { authorization: 'Bearer nonsense' } }),
      401,
    );
    expect(refused).toEqual({ sql: 0, kv: 1, kvCalls: ['incrementAndGet'] });
  });

  it('an admin call adds one statement for the caller’s permissions; a page of users is one more', async () => {
    const admin = await registerAdmin(t.app, t.services.db);
    const page = await cost(() => t.app.inject({ method: 'GET', url: '/api/users?limit=20', headers: bearer(admin) }));
    expect(page).toEqual({ sql: 2, kv: 1, kvCalls: ['incrementAndGet'] });
  });

  it('reports what signing in costs', async () => {
    const signIn = await cost(() =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { email: account.email, password: account.password },
      }),
    );
    console.log(
      `auth.login: ${signIn.sql} SQL statements, ${signIn.kv} key-value round trips (${signIn.kvCalls.join(', ')})`,
    );
    expect(signIn.sql).toBeLessThanOrEqual(4);
    // The address's limits, the account's failure count taken before the password is checked,
    // and given back after it was right.
    expect(signIn.kv).toBeLessThanOrEqual(4);
  });
});
