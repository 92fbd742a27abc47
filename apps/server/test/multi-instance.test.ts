import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  buildTestApp,
  createTestKeyValueStore,
  login,
  registerAccount,
  type TestApp,
  uniqueEmail,
} from './helpers/index.ts';

/** Two app instances with their own pools and Redis connections, sharing Postgres and Redis: two processes. */
describe.skipIf(!process.env.REDIS_URL)('two instances sharing Postgres and Redis', () => {
  let first: TestApp;
  let second: TestApp;
  const keyPrefix = `test:${randomBytes(6).toString('hex')}:`;
  const stores = [createTestKeyValueStore(keyPrefix), createTestKeyValueStore(keyPrefix)] as const;
  beforeAll(async () => {
    const env = { RATE_LIMIT_AUTH_PER_MINUTE: '10', TRUST_PROXY: '1' };
    first = await buildTestApp({ env, overrides: { kv: stores[0] } });
    second = await buildTestApp({ env, database: first.database, overrides: { kv: stores[1] } });
  });
  afterAll(async () => {
    await second.close();
    await first.close();
    await Promise.all(stores.map((store) => store.cleanup()));
  });

  it('a logout on one instance is refused by the other on the very next request', async () => {
    const account = await registerAccount(first.app);
    const me = (app: TestApp) => app.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) });
    expect((await me(second)).statusCode).toBe(200);
    await first.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) });
    const refused = await me(second);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().appCode).toBe('SESSION_REVOKED');
  });

  it('a user disabled through one instance is signed out on the other', async () => {
    const account = await registerAccount(second.app);
    const admin = await registerAccount(first.app);
    await first.services.db
      .insertInto('user_roles')
      .values({
        user_id: admin.id,
        role_id: (
          await first.services.db.selectFrom('roles').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow()
        ).id,
      })
      .execute();
    await first.app.inject({
      method: 'PATCH',
      url: `/api/users/${account.id}`,
      headers: bearer(admin),
      payload: { disabled: true },
    });
    expect(
      (await second.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) })).json().appCode,
    ).toBe('SESSION_REVOKED');
  });

  it('counts rate limits across both instances', async () => {
    const ip = { 'x-forwarded-for': '203.0.113.77' };
    for (let i = 0; i < 10; i++) {
      const app = i % 2 === 0 ? first : second;
      expect((await login(app.app, uniqueEmail(), 'Wrong-pass-1', ip)).statusCode).toBe(401);
    }
    expect((await login(first.app, uniqueEmail(), 'Wrong-pass-1', ip)).statusCode).toBe(429);
    expect((await login(second.app, uniqueEmail(), 'Wrong-pass-1', ip)).statusCode).toBe(429);
  });
});
