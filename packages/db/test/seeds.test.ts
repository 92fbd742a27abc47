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

  it('can run twice at the same moment on a fresh database (pnpm dev and pnpm worker started together)', async () => {
    const fresh = await createTestDatabase();
    const processes = [createDb({ url: fresh.url, poolMax: 2 }), createDb({ url: fresh.url, poolMax: 2 })];
    try {
      await Promise.all(processes.map((each) => runSeeds(each, { nodeEnv: 'development' })));
      const links = await (processes[0] as Db)
        .selectFrom('users as u')
        .innerJoin('user_roles as ur', 'ur.user_id', 'u.id')
        .select(['u.email'])
        .execute();
      expect(links.map((link) => link.email).sort()).toEqual([
        'admin@example.com',
        'admin@example.com',
        'user@example.com',
      ]);
    } finally {
      await Promise.all(processes.map((each) => each.destroy()));
      await fresh.drop();
    }
  });

  describe('on a database never seeded', () => {
    let unseeded: TestDatabase;
    let unseededDb: Db;
    beforeAll(async () => {
      unseeded = await createTestDatabase();
      unseededDb = createDb({ url: unseeded.url, poolMax: 2 });
    });
    afterAll(async () => {
      await unseededDb.destroy();
      await unseeded.drop();
    });

    it('are refused in production, touching nothing', async () => {
      await expect(runSeeds(unseededDb, { nodeEnv: 'production' })).rejects.toThrow(/refused in production/);
      expect(await unseededDb.selectFrom('users').select('email').execute()).toEqual([]);
      expect(await unseededDb.selectFrom('user_roles').select('user_id').execute()).toEqual([]);
    });

    it('leave the built-in roles to the migrations (they exist in production too)', async () => {
      const roles = await unseededDb.selectFrom('roles').select(['name', 'built_in']).orderBy('name').execute();
      expect(roles).toEqual([
        { name: 'admin', built_in: true },
        { name: 'user', built_in: true },
      ]);
    });
  });
});
