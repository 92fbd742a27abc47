import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../src/client.ts';
import { verifyPassword } from '../src/password-hash.ts';
import { runSeeds } from '../src/seed.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';

describe('seeds', () => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDb({ url: database.url, poolMax: 2 });
  });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  async function accounts() {
    return db
      .selectFrom('users as u')
      .leftJoin('user_roles as ur', 'ur.user_id', 'u.id')
      .leftJoin('roles as r', 'r.id', 'ur.role_id')
      .select(['u.email', 'u.password_hash', 'u.email_verified_at', 'r.name as role'])
      .orderBy('u.email')
      .orderBy('r.name')
      .execute();
  }

  it('create the two development accounts with their roles, and can run again without change', async () => {
    await runSeeds(db, { nodeEnv: 'development' });
    const first = await accounts();
    expect(first.map((row) => `${row.email}:${row.role}`)).toEqual([
      'admin@example.com:admin',
      'admin@example.com:user',
      'user@example.com:user',
    ]);
    expect(first.every((row) => row.email_verified_at instanceof Date)).toBe(true);
    const admin = first.find((row) => row.email === 'admin@example.com');
    expect((await verifyPassword(admin?.password_hash as string, 'Adminpassword1')).valid).toBe(true);
    const user = first.find((row) => row.email === 'user@example.com');
    expect((await verifyPassword(user?.password_hash as string, 'Userpassword1')).valid).toBe(true);

    await runSeeds(db, { nodeEnv: 'development' });
    expect(await accounts()).toEqual(first);
  });

  it('are refused in production, touching nothing', async () => {
    const before = await accounts();
    await expect(runSeeds(db, { nodeEnv: 'production' })).rejects.toThrow(/refused in production/);
    expect(await accounts()).toEqual(before);
  });

  it('leave the built-in roles to the migrations (they exist in production too)', async () => {
    const roles = await db.selectFrom('roles').select(['name', 'built_in']).orderBy('name').execute();
    expect(roles).toEqual([
      { name: 'admin', built_in: true },
      { name: 'user', built_in: true },
    ]);
  });
});
