import { createDb } from '@app/db';
import { createTestDatabase } from '@app/db/testing';
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_PERMISSIONS, type Permission } from '../src/modules/rbac/permissions.ts';
import { type Account, bearer, buildTestApp, registerAccount, registerAdmin, type TestApp } from './helpers/index.ts';

describe('RBAC', () => {
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    t = await buildTestApp();
    admin = await registerAdmin(t.app, t.services.db);
  });
  afterAll(() => t.close());

  const as = (account: Account, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    t.app.inject({ method, url, headers: bearer(account), ...(payload && { payload }) });

  async function createRole(name: string, permissions: string[]) {
    const response = await as(admin, 'POST', '/api/roles', { name, permissions });
    expect(response.statusCode).toBe(200);
    return response.json() as { id: string; name: string; permissions: string[] };
  }

  async function assign(userId: string, roleId: string) {
    expect((await as(admin, 'POST', `/api/users/${userId}/roles/${roleId}`)).statusCode).toBe(200);
  }

  /** Each protected REST call and the permission it needs; `target` is a fresh user for each run. */
  const matrix: { permission: Permission; call: (caller: Account, target: Account) => ReturnType<typeof as> }[] = [
    { permission: 'users:read', call: (c) => as(c, 'GET', '/api/users') },
    { permission: 'users:read', call: (c, target) => as(c, 'GET', `/api/users/${target.id}`) },
    { permission: 'users:write', call: (c, target) => as(c, 'PATCH', `/api/users/${target.id}`, { name: 'Renamed' }) },
    { permission: 'users:delete', call: (c, target) => as(c, 'DELETE', `/api/users/${target.id}`) },
    { permission: 'roles:read', call: (c) => as(c, 'GET', '/api/roles') },
    { permission: 'roles:read', call: (c) => as(c, 'GET', '/api/permissions') },
    {
      permission: 'roles:write',
      call: (c) => as(c, 'POST', '/api/roles', { name: `r-${Math.random().toString(36).slice(2, 10)}` }),
    },
    {
      permission: 'roles:assign',
      call: async (c, target) => {
        const roles = (await as(admin, 'GET', '/api/roles')).json() as { id: string; name: string }[];
        return as(c, 'POST', `/api/users/${target.id}/roles/${roles.find((r) => r.name === 'user')?.id}`);
      },
    },
  ];

  describe.each(matrix.map((row, index) => ({ ...row, index })))(
    '$permission (case $index)',
    ({ permission, call }) => {
      it('is refused to a plain user with 403 naming the permission', async () => {
        const user = await registerAccount(t.app);
        const response = await call(user, await registerAccount(t.app));
        expect(response.statusCode).toBe(403);
        expect(response.json()).toMatchObject({
          appCode: 'PERMISSION_DENIED',
          message: `Missing permission: ${permission}`,
          details: { permission },
        });
      });

      it('is allowed to an admin', async () => {
        const response = await call(admin, await registerAccount(t.app));
        expect(response.statusCode).toBe(200);
      });

      it('is allowed to a custom role holding exactly that permission, and refused to one without it', async () => {
        const holder = await registerAccount(t.app);
        const role = await createRole(`with-${Math.random().toString(36).slice(2, 10)}`, [permission]);
        await assign(holder.id, role.id);
        expect((await call(holder, await registerAccount(t.app))).statusCode).toBe(200);

        const other = await registerAccount(t.app);
        const otherPermission = ALL_PERMISSIONS.find((p) => p !== permission) as Permission;
        const otherRole = await createRole(`without-${Math.random().toString(36).slice(2, 10)}`, [otherPermission]);
        await assign(other.id, otherRole.id);
        expect((await call(other, await registerAccount(t.app))).statusCode).toBe(403);
      });
    },
  );

  it('applies role changes on the very next request', async () => {
    const user = await registerAccount(t.app);
    const role = await createRole('auditors', []);
    await assign(user.id, role.id);
    expect((await as(user, 'GET', '/api/users')).statusCode).toBe(403);
    await as(admin, 'PATCH', `/api/roles/${role.id}`, { permissions: ['users:read'] });
    expect((await as(user, 'GET', '/api/users')).statusCode).toBe(200);
    expect((await as(user, 'GET', '/api/users/me')).json().permissions).toEqual(['users:read']);
    await as(admin, 'DELETE', `/api/users/${user.id}/roles/${role.id}`);
    expect((await as(user, 'GET', '/api/users')).statusCode).toBe(403);
  });

  describe('no one gives what they do not hold', () => {
    const roleIdOf = async (name: string) =>
      ((await as(admin, 'GET', '/api/roles')).json() as { id: string; name: string }[]).find((r) => r.name === name)
        ?.id as string;
    const holding = async (permissions: Permission[]) => {
      const holder = await registerAccount(t.app);
      await assign(holder.id, (await createRole(`grantor-${Math.random().toString(36).slice(2, 10)}`, permissions)).id);
      return holder;
    };
    /** Refused, naming a permission the caller lacks (`permission` when only one is missing). */
    const deniedFor = (response: { statusCode: number; json(): unknown }, permission?: string) => {
      expect(response.statusCode).toBe(403);
      const body = response.json() as { appCode: string; details: { permission: string } };
      expect(body.appCode).toBe('PERMISSION_DENIED');
      if (permission) expect(body.details.permission).toBe(permission);
      else expect(['users:read', 'users:delete', 'auth:manage', 'jobs:manage']).toContain(body.details.permission);
    };

    it('roles:assign cannot make its holder (or anyone) an administrator, nor take the role from one', async () => {
      const assigner = await holding(['roles:assign', 'roles:read']);
      const adminRole = await roleIdOf('admin');
      deniedFor(await as(assigner, 'POST', `/api/users/${assigner.id}/roles/${adminRole}`));
      expect((await as(assigner, 'GET', '/api/users/me')).json().roles).not.toContain('admin');
      deniedFor(await as(assigner, 'DELETE', `/api/users/${admin.id}/roles/${adminRole}`));
      // A role within its own permissions it may give and take.
      const readers = await createRole(`readers-${Date.now()}`, ['roles:read']);
      const target = await registerAccount(t.app);
      expect((await as(assigner, 'POST', `/api/users/${target.id}/roles/${readers.id}`)).statusCode).toBe(200);
      expect((await as(assigner, 'DELETE', `/api/users/${target.id}/roles/${readers.id}`)).statusCode).toBe(200);
    });

    it('roles:write cannot put permissions it lacks into a role (the built-in user role included)', async () => {
      const writer = await holding(['roles:write', 'roles:read']);
      const userRole = await roleIdOf('user');
      deniedFor(
        await as(writer, 'PATCH', `/api/roles/${userRole}`, { permissions: [...ALL_PERMISSIONS] }),
        'users:read',
      );
      deniedFor(
        await as(writer, 'POST', '/api/roles', { name: `mine-${Date.now()}`, permissions: ['users:delete'] }),
        'users:delete',
      );
      const own = await as(writer, 'POST', '/api/roles', { name: `own-${Date.now()}`, permissions: ['roles:read'] });
      expect(own.statusCode).toBe(200);
      expect((await as(writer, 'PATCH', `/api/roles/${userRole}`, { description: 'Everyone' })).statusCode).toBe(200);
    });

    it('roles:write cannot take permissions it lacks from a role’s holders (replacing its grants, or deleting it)', async () => {
      const writer = await holding(['roles:write', 'roles:read']);
      const auditors = await createRole(`auditors-${Date.now()}`, ['jobs:manage', 'roles:read']);
      deniedFor(await as(writer, 'PATCH', `/api/roles/${auditors.id}`, { permissions: [] }), 'jobs:manage');
      deniedFor(await as(writer, 'DELETE', `/api/roles/${auditors.id}`), 'jobs:manage');
      const kept = ((await as(admin, 'GET', '/api/roles')).json() as { id: string; permissions: string[] }[]).find(
        (role) => role.id === auditors.id,
      );
      expect(kept?.permissions).toContain('jobs:manage');
      // Its name and description are no grant; a role within its own permissions it may rewrite and delete.
      expect((await as(writer, 'PATCH', `/api/roles/${auditors.id}`, { description: 'Audits' })).statusCode).toBe(200);
      const readers = await createRole(`readers-${Date.now()}`, ['roles:read']);
      expect((await as(writer, 'PATCH', `/api/roles/${readers.id}`, { permissions: [] })).statusCode).toBe(200);
      expect((await as(writer, 'DELETE', `/api/roles/${readers.id}`)).statusCode).toBe(200);
    });

    it('roles:write checks only the permissions a replacement adds or removes, not those it keeps', async () => {
      const writer = await holding(['roles:write', 'roles:read', 'email:send-test']);
      const auditors = await createRole(`keepers-${Date.now()}`, ['jobs:manage']);
      const grantsOf = async () =>
        ((await as(admin, 'GET', '/api/roles')).json() as { id: string; permissions: string[] }[])
          .find((role) => role.id === auditors.id)
          ?.permissions.sort();
      // The list sent back whole, unchanged (a form that always sends it): no grant.
      expect(
        (await as(writer, 'PATCH', `/api/roles/${auditors.id}`, { permissions: ['jobs:manage'] })).statusCode,
      ).toBe(200);
      // Adding one it holds, keeping one it lacks.
      const added = await as(writer, 'PATCH', `/api/roles/${auditors.id}`, {
        permissions: ['jobs:manage', 'email:send-test'],
      });
      expect(added.statusCode).toBe(200);
      expect(await grantsOf()).toEqual(['email:send-test', 'jobs:manage']);
      // Taking away the one it lacks stays refused, and so does swapping it for another it lacks.
      deniedFor(
        await as(writer, 'PATCH', `/api/roles/${auditors.id}`, { permissions: ['email:send-test'] }),
        'jobs:manage',
      );
      deniedFor(
        await as(writer, 'PATCH', `/api/roles/${auditors.id}`, { permissions: ['jobs:manage', 'users:delete'] }),
        'users:delete',
      );
      expect(await grantsOf()).toEqual(['email:send-test', 'jobs:manage']);
    });

    it('a batch sets only roles whose permissions the caller holds', async () => {
      const manager = await holding(['users:read', 'users:write', 'roles:assign']);
      // However the name is written: the item reads `ADMIN` and ` Admin` as `admin`.
      for (const admin of ['admin', 'ADMIN', ' Admin ']) {
        const response = await as(manager, 'PATCH', '/api/users/batch', {
          items: [{ id: manager.id, roles: [admin] }],
        });
        deniedFor(response);
        expect((await as(manager, 'GET', '/api/users/me')).json().roles).not.toContain('admin');
        const created = await as(manager, 'POST', '/api/users/batch', {
          items: [{ email: `batch-admin-${Date.now()}@example.com`, roles: [admin] }],
        });
        deniedFor(created);
      }
    });

    it('a batch that replaces a user’s roles takes away only roles whose permissions the caller holds', async () => {
      const manager = await holding(['users:read', 'users:write', 'roles:assign']);
      const auditors = await createRole(`auditors-${Date.now()}`, ['jobs:manage']);
      const readers = await createRole(`readers-${Date.now()}`, ['users:read']);
      const target = await registerAccount(t.app);
      const setRoles = (by: Account, roles: string[]) =>
        as(by, 'PATCH', '/api/users/batch', { items: [{ id: target.id, roles }] });
      const rolesOfTarget = async () =>
        ((await as(admin, 'GET', `/api/users/${target.id}`)).json() as { roles: string[] }).roles.sort();
      expect((await setRoles(admin, [auditors.name])).statusCode).toBe(200);
      // Giving readers is within the manager's permissions; taking auditors (jobs:manage) away is not.
      deniedFor(await setRoles(manager, [readers.name]), 'jobs:manage');
      expect(await rolesOfTarget()).toEqual([auditors.name]);
      // Keeping the role it could not give, it may add and take away roles within its own permissions.
      expect((await setRoles(manager, [auditors.name, readers.name])).statusCode).toBe(200);
      expect(await rolesOfTarget()).toEqual([auditors.name, readers.name].sort());
      expect((await setRoles(manager, [auditors.name])).statusCode).toBe(200);
      expect(await rolesOfTarget()).toEqual([auditors.name]);
      // Other tests list the roles granting each permission: these leave none behind.
      for (const role of [auditors, readers]) {
        expect((await as(admin, 'DELETE', `/api/roles/${role.id}`)).statusCode).toBe(200);
      }
    });
  });

  it('applies concurrent replacements of a role’s permissions one after the other', async () => {
    const role = await createRole(`contended-${Date.now()}`, []);
    const lists: Permission[][] = [['users:read'], ['roles:read', 'notes:read-any'], ['files:read-any'], []];
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(
        lists.map((permissions) => as(admin, 'PATCH', `/api/roles/${role.id}`, { permissions })),
      );
      expect(answers.map((answer) => answer.statusCode)).toEqual(lists.map(() => 200));
      const kept = ((await as(admin, 'GET', '/api/roles')).json() as { id: string; permissions: string[] }[]).find(
        (r) => r.id === role.id,
      )?.permissions;
      // Exactly one of the lists, never a mix of two.
      expect(lists.map((list) => [...list].sort().join())).toContain([...(kept ?? [])].sort().join());
    }
    // Other tests list the roles granting each permission: this one leaves none behind.
    expect((await as(admin, 'DELETE', `/api/roles/${role.id}`)).statusCode).toBe(200);
  });

  it('takes a role id in capitals as the same role', async () => {
    const role = await createRole(`capitals-${Date.now()}`, []);
    const updated = await as(admin, 'PATCH', `/api/roles/${role.id.toUpperCase()}`, { permissions: ['users:read'] });
    expect(updated.statusCode).toBe(200);
    expect(updated.json()).toMatchObject({ id: role.id, permissions: ['users:read'] });
    expect((await as(admin, 'DELETE', `/api/roles/${role.id.toUpperCase()}`)).statusCode).toBe(200);
    expect((await as(admin, 'GET', '/api/roles')).json().map((r: { id: string }) => r.id)).not.toContain(role.id);
  });

  describe('relation listings', () => {
    it('lists the roles that grant each permission, on request', async () => {
      const role = await createRole(`grants-${Date.now()}`, ['notes:read-any']);
      const plain = (await as(admin, 'GET', '/api/permissions')).json() as { name: string; roles?: string[] }[];
      expect(plain.every((p) => p.roles === undefined)).toBe(true);
      const withRoles = (await as(admin, 'GET', '/api/permissions?includeRoles=true')).json() as {
        name: string;
        roles: string[];
      }[];
      expect(withRoles.find((p) => p.name === 'notes:read-any')?.roles.sort()).toEqual(['admin', role.name].sort());
      expect(withRoles.find((p) => p.name === 'files:delete-any')?.roles).toEqual(['admin']);
      // The same over tRPC.
      const trpc = await t.app.inject({
        method: 'GET',
        url: `/trpc/rbac.permissions.list?input=${encodeURIComponent(JSON.stringify({ includeRoles: true }))}`,
        headers: bearer(admin),
      });
      expect(trpc.json().result.data).toEqual(withRoles);
    });

    it("lists a role's members page by page, and filters users by role", async () => {
      const role = await createRole(`members-${Date.now()}`, []);
      const members = [await registerAccount(t.app), await registerAccount(t.app), await registerAccount(t.app)];
      await registerAccount(t.app); // not a member
      for (const member of members) await assign(member.id, role.id);
      const first = (await as(admin, 'GET', `/api/roles/${role.id}/members?limit=2`)).json() as {
        items: { id: string; roles: string[] }[];
        nextCursor: string;
      };
      expect(first.items.map((u) => u.id)).toEqual([members[2]?.id, members[1]?.id]);
      expect(first.items.every((u) => u.roles.includes(role.name))).toBe(true);
      const second = (
        await as(admin, 'GET', `/api/roles/${role.id}/members?limit=2&cursor=${first.nextCursor}`)
      ).json();
      expect(second).toEqual({ items: [expect.objectContaining({ id: members[0]?.id })], nextCursor: null });

      const filtered = (await as(admin, 'GET', `/api/users?role=${role.name}`)).json() as { items: { id: string }[] };
      expect(filtered.items.map((u) => u.id)).toEqual(members.map((m) => m.id).reverse());
      expect((await as(admin, 'GET', '/api/users?role=no-such-role')).json().items).toEqual([]);
      // An empty filter (a form's blank field) filters nothing, as an empty search does.
      const blank = (await as(admin, 'GET', '/api/users?role=%20&limit=100')).json() as { items: { id: string }[] };
      expect(blank.items.length).toBeGreaterThan(members.length);

      const trpc = await t.app.inject({
        method: 'GET',
        url: `/trpc/rbac.roles.members?input=${encodeURIComponent(JSON.stringify({ id: role.id }))}`,
        headers: bearer(admin),
      });
      expect(trpc.json().result.data.items.map((u: { id: string }) => u.id)).toEqual(
        members.map((m) => m.id).reverse(),
      );
    });

    it('reads the roles and permissions of a whole page in one query, however many users it holds', async () => {
      const database = await createTestDatabase();
      let queries = 0;
      const counter: KyselyPlugin = {
        transformQuery: (args) => {
          queries += 1;
          return args.node;
        },
        transformResult: async (args) => args.result,
      };
      const counted = await buildTestApp({
        database,
        overrides: { db: createDb({ url: database.url, poolMax: 2 }).withPlugin(counter) },
      });
      try {
        const owner = await registerAdmin(counted.app, counted.services.db);
        const made = await counted.app.inject({
          method: 'POST',
          url: '/api/users/batch',
          headers: bearer(owner),
          payload: {
            items: Array.from({ length: 12 }, (_, i) => ({
              email: `page-${i}@example.com`,
              roles: i % 2 ? ['user', 'admin'] : ['user'],
            })),
          },
        });
        expect(made.json()).toMatchObject({ succeeded: 12, failed: 0 });
        const queriesFor = async (limit: number) => {
          const before = queries;
          const page = await counted.app.inject({
            method: 'GET',
            url: `/api/users?limit=${limit}`,
            headers: bearer(owner),
          });
          expect(page.json().items).toHaveLength(limit);
          return queries - before;
        };
        const [few, many] = [await queriesFor(1), await queriesFor(13)];
        expect(many).toBe(few);
        // The caller's permissions, the page, and the page's roles and permissions.
        expect(many).toBeLessThanOrEqual(3);
      } finally {
        await counted.close();
        await database.drop();
      }
    });

    it('answers 404 for an unknown role, and 403 without users:read', async () => {
      const missing = await as(admin, 'GET', '/api/roles/01900000-0000-7000-8000-000000000000/members');
      expect([missing.statusCode, missing.json().appCode]).toEqual([404, 'NOT_FOUND']);
      const roles = (await as(admin, 'GET', '/api/roles')).json() as { id: string; name: string }[];
      const user = await registerAccount(t.app);
      const denied = await as(user, 'GET', `/api/roles/${roles[0]?.id}/members`);
      expect(denied.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'users:read' } });
    });
  });

  it('lists every declared permission with a description', async () => {
    const list = (await as(admin, 'GET', '/api/permissions')).json() as { name: string; description: string }[];
    expect(list.map((p) => p.name)).toEqual(ALL_PERMISSIONS);
    expect(list.every((p) => p.description.length > 5)).toBe(true);
  });

  it('shows admin holding every permission and the user role by default', async () => {
    const roles = (await as(admin, 'GET', '/api/roles')).json() as {
      name: string;
      builtIn: boolean;
      permissions: string[];
    }[];
    expect(roles.find((r) => r.name === 'admin')).toMatchObject({
      builtIn: true,
      permissions: [...ALL_PERMISSIONS].sort(),
    });
    expect(roles.find((r) => r.name === 'user')).toMatchObject({ builtIn: true });
    expect((await as(admin, 'GET', '/api/users/me')).json().permissions).toEqual([...ALL_PERMISSIONS].sort());
  });

  describe('roles', () => {
    it('refuses a duplicate name with 409, an unknown permission and a bad name with 400', async () => {
      await createRole('editors', ['users:read']);
      const duplicate = await as(admin, 'POST', '/api/roles', { name: 'Editors' });
      expect(duplicate.statusCode).toBe(409);
      expect(duplicate.json().appCode).toBe('ROLE_NAME_TAKEN');
      const unknown = await as(admin, 'POST', '/api/roles', {
        name: 'ghosts',
        permissions: ['users:read', 'nukes:launch'],
      });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json()).toMatchObject({ appCode: 'UNKNOWN_PERMISSION', details: { unknown: ['nukes:launch'] } });
      for (const name of ['a', 'has space', "x'; drop table roles; --", '9lives']) {
        expect((await as(admin, 'POST', '/api/roles', { name })).statusCode).toBe(400);
      }
      const renamedOnto = await createRole('writers', []);
      expect((await as(admin, 'PATCH', `/api/roles/${renamedOnto.id}`, { name: 'editors' })).statusCode).toBe(409);
      const granted = await as(admin, 'PATCH', `/api/roles/${renamedOnto.id}`, { permissions: ['nukes:launch'] });
      expect(granted.statusCode).toBe(400);
      expect(granted.json()).toMatchObject({ appCode: 'UNKNOWN_PERMISSION', details: { unknown: ['nukes:launch'] } });
    });

    it('protects the built-in roles', async () => {
      const roles = (await as(admin, 'GET', '/api/roles')).json() as { id: string; name: string }[];
      const adminRole = roles.find((r) => r.name === 'admin') as { id: string };
      const userRole = roles.find((r) => r.name === 'user') as { id: string };
      for (const id of [adminRole.id, userRole.id]) {
        const response = await as(admin, 'DELETE', `/api/roles/${id}`);
        expect(response.statusCode).toBe(403);
        expect(response.json().appCode).toBe('BUILT_IN_ROLE');
      }
      expect((await as(admin, 'PATCH', `/api/roles/${userRole.id}`, { name: 'members' })).json().appCode).toBe(
        'BUILT_IN_ROLE',
      );
      expect((await as(admin, 'PATCH', `/api/roles/${adminRole.id}`, { permissions: [] })).json().appCode).toBe(
        'BUILT_IN_ROLE',
      );
      // The user role's grants may change: that is how every account gets a permission.
      const updated = await as(admin, 'PATCH', `/api/roles/${userRole.id}`, { description: 'Everyone' });
      expect(updated.json()).toMatchObject({ name: 'user', description: 'Everyone' });
    });

    it('deletes a custom role, taking it from its users; a missing one is 404', async () => {
      const user = await registerAccount(t.app);
      const role = await createRole('temporary', ['users:read']);
      await assign(user.id, role.id);
      expect((await as(admin, 'DELETE', `/api/roles/${role.id}`)).statusCode).toBe(200);
      expect((await as(user, 'GET', '/api/users/me')).json().roles).toEqual(['user']);
      expect((await as(admin, 'DELETE', `/api/roles/${role.id}`)).statusCode).toBe(404);
      expect((await as(admin, 'PATCH', `/api/roles/${role.id}`, { description: 'x' })).statusCode).toBe(404);
    });

    it('assigns and unassigns idempotently; unknown user or role is 404', async () => {
      const user = await registerAccount(t.app);
      const role = await createRole('twice', []);
      await assign(user.id, role.id);
      await assign(user.id, role.id);
      expect((await as(user, 'GET', '/api/users/me')).json().roles).toEqual(['twice', 'user']);
      for (let i = 0; i < 2; i++)
        expect((await as(admin, 'DELETE', `/api/users/${user.id}/roles/${role.id}`)).statusCode).toBe(200);
      expect((await as(user, 'GET', '/api/users/me')).json().roles).toEqual(['user']);
      const missing = '01900000-0000-7000-8000-000000000000';
      expect((await as(admin, 'POST', `/api/users/${missing}/roles/${role.id}`)).statusCode).toBe(404);
      expect((await as(admin, 'POST', `/api/users/${user.id}/roles/${missing}`)).statusCode).toBe(404);
      expect((await as(admin, 'DELETE', `/api/users/${missing}/roles/${role.id}`)).statusCode).toBe(404);
      expect((await as(admin, 'POST', `/api/users/${user.id}/roles/not-a-uuid`)).statusCode).toBe(400);
    });
  });
});
