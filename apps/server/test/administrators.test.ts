/**
 * The administrators' safeguards: no change leaves a database that had an administrator who
 * can sign in with none (LAST_ADMIN), and no one acts on an account holding a permission
 * they lack. Each describe has a database of its own: it counts its administrators.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepAnAdministrator } from '../src/modules/rbac/rbac.service.ts';
import type { Services } from '../src/services.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  grantRole,
  registerAccount,
  registerAdmin,
  type TestApp,
  uniqueEmail,
  untilWaitingOnLocks,
} from './helpers/index.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

function calls(t: () => TestApp) {
  const as = (account: Account, method: Method, url: string, payload?: object) =>
    t().app.inject({ method, url, headers: bearer(account), ...(payload && { payload }) });
  const roleId = async (name: string) =>
    (await t().services.db.selectFrom('roles').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id;
  /** Gives the account a role of its own holding exactly `permissions`. */
  const giveRoleWith = async (account: Account, permissions: string[]) => {
    const { db } = t().services;
    const role = await db
      .insertInto('roles')
      .values({ name: `custom-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, description: '' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('role_permissions')
      .values(permissions.map((permission) => ({ role_id: role.id, permission })))
      .execute();
    await db.insertInto('user_roles').values({ user_id: account.id, role_id: role.id }).execute();
  };
  /** Whether the account is still signed in and still holds the admin role. */
  const isSignedInAdmin = async (account: Account) => {
    const me = await as(account, 'GET', '/api/users/me');
    return me.statusCode === 200 && (me.json() as { roles: string[] }).roles.includes('admin');
  };
  return { as, roleId, giveRoleWith, isSignedInAdmin };
}

describe('the last administrator', () => {
  let t: TestApp;
  const { as, roleId, isSignedInAdmin } = calls(() => t);
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '100000' } });
  });
  afterAll(() => t.close());

  it('cannot lose the role, be disabled, archived or deleted by any procedure, and stays signed in', async () => {
    const password = 'correct-horse-1';
    const admin = await registerAccount(t.app, { email: uniqueEmail('admin'), password });
    await grantRole(t.services.db, admin.id, 'admin');
    const adminRole = await roleId('admin');

    const refusals = [
      await as(admin, 'DELETE', `/api/users/${admin.id}/roles/${adminRole}`),
      await as(admin, 'PATCH', `/api/users/${admin.id}`, { disabled: true }),
      await as(admin, 'POST', `/api/users/${admin.id}/archive`),
      await as(admin, 'POST', '/api/users/me/archive'),
      await as(admin, 'DELETE', `/api/users/${admin.id}`),
      await as(admin, 'DELETE', '/api/users/me', { password }),
    ];
    for (const response of refusals) {
      expect(response.statusCode, response.body).toBe(409);
      expect(response.json()).toMatchObject({
        appCode: 'LAST_ADMIN',
        message: 'This would leave no administrator: make another account an admin first',
      });
    }
    // Each item of a batch on its own, atomic or not; deleting ends no session first.
    for (const atomic of [false, true]) {
      for (const item of [{ disabled: true }, { roles: ['user'] }, { roles: [] }]) {
        const response = await as(admin, 'PATCH', '/api/users/batch', { items: [{ id: admin.id, ...item }], atomic });
        expect(response.statusCode).toBe(200);
        expect(response.json().results[0]).toMatchObject({ ok: false, error: { appCode: 'LAST_ADMIN' } });
      }
      const deletion = await as(admin, 'POST', '/api/users/batch-delete', { ids: [admin.id], atomic });
      expect(deletion.json().results[0]).toMatchObject({ ok: false, error: { appCode: 'LAST_ADMIN' } });
    }
    expect(await isSignedInAdmin(admin)).toBe(true);
    const row = await t.services.db
      .selectFrom('users')
      .select(['disabled_at', 'archived_at'])
      .where('id', '=', admin.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ disabled_at: null, archived_at: null });

    // Over tRPC, in the caller's language.
    const french = await t.app.inject({
      method: 'POST',
      url: '/trpc/users.archiveMe',
      headers: { ...bearer(admin), 'content-type': 'application/json', 'accept-language': 'fr' },
      payload: '',
    });
    expect(french.statusCode).toBe(409);
    expect(french.json().error).toMatchObject({
      message: 'Il ne resterait aucun administrateur\u00a0: nommez d’abord un autre compte administrateur',
      data: { appCode: 'LAST_ADMIN' },
    });
  });

  it('may go once another can sign in; a disabled or archived holder of the role does not count', async () => {
    const me = await registerAdmin(t.app, t.services.db);
    const other = await registerAdmin(t.app, t.services.db);
    const disabled = await registerAdmin(t.app, t.services.db);
    const archived = await registerAdmin(t.app, t.services.db);
    expect((await as(me, 'PATCH', `/api/users/${disabled.id}`, { disabled: true })).statusCode).toBe(200);
    expect((await as(me, 'POST', `/api/users/${archived.id}/archive`)).statusCode).toBe(200);
    // Every other administrator this database had (the first test's) steps down.
    const admins = await t.services.db
      .selectFrom('user_roles')
      .select('user_id')
      .where('role_id', '=', await roleId('admin'))
      .execute();
    for (const { user_id } of admins) {
      if ([me.id, other.id, disabled.id, archived.id].includes(user_id)) continue;
      expect((await as(me, 'PATCH', `/api/users/${user_id}`, { disabled: true })).statusCode).toBe(200);
    }

    // Two administrators who can sign in: one may disable the other, not then themselves.
    expect((await as(me, 'PATCH', `/api/users/${other.id}`, { disabled: true })).statusCode).toBe(200);
    expect((await as(me, 'PATCH', `/api/users/${me.id}`, { disabled: true })).json().appCode).toBe('LAST_ADMIN');
    // Enabled again, the other counts again: the caller may step down.
    expect((await as(me, 'PATCH', `/api/users/${other.id}`, { disabled: false })).statusCode).toBe(200);
    expect((await as(me, 'DELETE', `/api/users/${me.id}/roles/${await roleId('admin')}`)).statusCode).toBe(200);
    expect(await isSignedInAdmin(me)).toBe(false);
  });
});

describe('two administrators removing each other at once', () => {
  let t: TestApp;
  const { as, roleId, giveRoleWith } = calls(() => t);
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '100000' } });
  });
  afterAll(() => t.close());

  const activeAdmins = async () =>
    (
      await t.services.db
        .selectFrom('user_roles as ur')
        .innerJoin('roles as r', 'r.id', 'ur.role_id')
        .innerJoin('users as u', 'u.id', 'ur.user_id')
        .select('u.id')
        .where('r.name', '=', 'admin')
        .where('u.disabled_at', 'is', null)
        .where('u.archived_at', 'is', null)
        .execute()
    ).length;

  /**
   * Sends `call` while a guarded change holds the administrators' turn (`before` done in it
   * first, `after` once released), and releases it once `call` waits for that turn.
   */
  async function whileTurnHeld<T>(
    change: { before?: (trx: Services) => Promise<void>; after?: (trx: Services) => Promise<void> },
    call: () => Promise<T>,
  ): Promise<T> {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = false;
    const held = keepAnAdministrator(t.services, async (trx) => {
      await change.before?.(trx);
      holding = true;
      await released;
      await change.after?.(trx);
    });
    await expect.poll(() => holding).toBe(true);
    const answer = call();
    try {
      await untilWaitingOnLocks(t.services.db, 1, answer);
    } finally {
      release();
      await held;
    }
    return answer;
  }

  /**
   * A removes B in a transaction held open; meanwhile B removes themself, in each way there
   * is. B's change waits for A's turn (a lock it would not wait on without the guard: it
   * would count A's uncommitted change as not made, and both would go through), then finds
   * itself the last administrator.
   */
  it.each([
    ['disabling', (b: Account) => as(b, 'PATCH', `/api/users/${b.id}`, { disabled: true })],
    ['archiving', (b: Account) => as(b, 'POST', '/api/users/me/archive')],
    ['deleting', (b: Account) => as(b, 'DELETE', '/api/users/me', { password: b.password })],
    ['taking the role', async (b: Account) => as(b, 'DELETE', `/api/users/${b.id}/roles/${await roleId('admin')}`)],
    [
      'replacing the roles in an atomic batch',
      (b: Account) => as(b, 'PATCH', '/api/users/batch', { items: [{ id: b.id, roles: ['user'] }], atomic: true }),
    ],
  ])('take turns: %s oneself while the other administrator is being disabled leaves one', async (way, removeSelf) => {
    await t.services.db.deleteFrom('user_roles').execute();
    const a = await registerAdmin(t.app, t.services.db);
    const b = await registerAdmin(t.app, t.services.db);
    const response = await whileTurnHeld(
      {
        before: async (trx) => {
          await trx.db.updateTable('users').set({ disabled_at: new Date() }).where('id', '=', a.id).execute();
        },
      },
      () => removeSelf(b),
    );
    const refusal = response.json().appCode ?? response.json().results?.[0]?.error?.appCode;
    expect(refusal, response.body).toBe('LAST_ADMIN');
    expect(await activeAdmins()).toBe(1);
    // Still signed in, except after a deletion: it ends the sessions before its turn (so that
    // a retry after a Redis outage finishes it), and B signs in again.
    expect((await as(b, 'GET', '/api/users/me')).statusCode).toBe(way === 'deleting' ? 401 : 200);
  });

  it('an atomic batch takes its turn before it writes any row: no deadlock with a change that took its turn first', async () => {
    const admin = await registerAdmin(t.app, t.services.db);
    const x = await registerAccount(t.app);
    const y = await registerAccount(t.app);
    // A guarded change (as disabling or deleting x would be): its turn first, then x's row.
    // The batch renames x (its row), then disables y (a guarded item): it must wait for its
    // turn before x's row.
    const response = await whileTurnHeld(
      {
        after: async (trx) => {
          await trx.db.updateTable('users').set({ name: 'Held' }).where('id', '=', x.id).execute();
        },
      },
      () =>
        as(admin, 'PATCH', '/api/users/batch', {
          items: [
            { id: x.id, name: 'Renamed' },
            { id: y.id, disabled: true },
          ],
          atomic: true,
        }),
    );
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ succeeded: 2, failed: 0 });
  });

  it('a batch setting roles changes only those it was checked for: a role given or taken meanwhile stays so', async () => {
    await registerAdmin(t.app, t.services.db);
    // A manager who may assign roles but holds no administrator's permission.
    const manager = await registerAccount(t.app);
    await giveRoleWith(manager, ['users:read', 'users:write', 'roles:assign']);
    const adminRole = await roleId('admin');
    const rolesOf = async (userId: string) =>
      (
        await t.services.db
          .selectFrom('user_roles as ur')
          .innerJoin('roles as r', 'r.id', 'ur.role_id')
          .select('r.name')
          .where('ur.user_id', '=', userId)
          .execute()
      )
        .map((row) => row.name)
        .sort();
    const setRoles = (userId: string, roles: string[]) => () =>
      as(manager, 'PATCH', '/api/users/batch', { items: [{ id: userId, roles }] });

    // The manager keeps x's roles as they are ("user") while an administrator makes x one:
    // before, the batch took the role away, which the manager may not do.
    const x = await registerAccount(t.app);
    const kept = await whileTurnHeld(
      {
        after: async (trx) => {
          await trx.db.insertInto('user_roles').values({ user_id: x.id, role_id: adminRole }).execute();
        },
      },
      setRoles(x.id, ['user']),
    );
    expect(kept.json(), kept.body).toMatchObject({ succeeded: 1 });
    expect(await rolesOf(x.id)).toEqual(['admin', 'user']);

    // The manager keeps y's roles as they are ("admin", "user") while an administrator takes
    // the role away: before, the batch gave it back, which the manager may not do.
    const y = await registerAdmin(t.app, t.services.db);
    const notGiven = await whileTurnHeld(
      {
        after: async (trx) => {
          await trx.db.deleteFrom('user_roles').where('user_id', '=', y.id).where('role_id', '=', adminRole).execute();
        },
      },
      setRoles(y.id, ['admin', 'user']),
    );
    expect(notGiven.json(), notGiven.body).toMatchObject({ succeeded: 1 });
    expect(await rolesOf(y.id)).toEqual(['user']);
  });

  it('a batch naming every administrator removes all but the last of them, ending no session of that one', async () => {
    await t.services.db.deleteFrom('user_roles').execute();
    const a = await registerAdmin(t.app, t.services.db);
    const b = await registerAdmin(t.app, t.services.db);
    const response = await as(a, 'POST', '/api/users/batch-delete', { ids: [b.id, a.id] });
    expect(response.json().results).toMatchObject([
      { id: b.id, ok: true },
      { id: a.id, ok: false, error: { appCode: 'LAST_ADMIN' } },
    ]);
    expect((await as(a, 'GET', '/api/users/me')).statusCode).toBe(200);
    expect(await activeAdmins()).toBe(1);
  });

  it('guards nothing in a database that has no administrator to keep', async () => {
    await t.services.db.deleteFrom('user_roles').execute();
    const manager = await registerAccount(t.app);
    const target = await registerAccount(t.app);
    await giveRoleWith(manager, ['users:write', 'users:delete']);
    expect((await as(manager, 'PATCH', `/api/users/${target.id}`, { disabled: true })).statusCode).toBe(200);
    expect((await as(manager, 'DELETE', `/api/users/${target.id}`)).statusCode).toBe(200);
  });
});

describe('acting on an account that holds more', () => {
  let t: TestApp;
  let admin: Account;
  let manager: Account;
  const { as, roleId } = calls(() => t);
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '100000' } });
    admin = await registerAdmin(t.app, t.services.db);
    manager = await registerAccount(t.app);
    const role = await as(admin, 'POST', '/api/roles', {
      name: 'manager',
      permissions: ['users:read', 'users:write', 'users:delete', 'roles:assign'],
    });
    expect(role.statusCode).toBe(200);
    expect((await as(admin, 'POST', `/api/users/${manager.id}/roles/${role.json().id}`)).statusCode).toBe(200);
  });
  afterAll(() => t.close());

  it('is refused: a users:write holder cannot rename, disable, archive, restore or delete an administrator', async () => {
    const other = await registerAdmin(t.app, t.services.db);
    const attempts = [
      await as(manager, 'PATCH', `/api/users/${other.id}`, { name: 'Mallory' }),
      await as(manager, 'PATCH', `/api/users/${other.id}`, { disabled: true }),
      await as(manager, 'POST', `/api/users/${other.id}/archive`),
      await as(manager, 'POST', `/api/users/${other.id}/restore`),
      await as(manager, 'DELETE', `/api/users/${other.id}`),
      await as(manager, 'PATCH', '/api/users/batch', { items: [{ id: other.id, disabled: true }] }),
      await as(manager, 'POST', '/api/users/batch-delete', { ids: [other.id] }),
    ];
    for (const response of attempts) {
      expect(response.statusCode, response.body).toBe(403);
      // The first permission the administrator holds and the manager lacks.
      expect(response.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'auth:manage' } });
    }
    const row = await t.services.db
      .selectFrom('users')
      .select(['name', 'disabled_at'])
      .where('id', '=', other.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ name: null, disabled_at: null });
    expect((await as(other, 'GET', '/api/users/me')).statusCode).toBe(200);
  });

  it('is allowed on accounts holding no more than the caller, and the administrator acts on anyone', async () => {
    const plain = await registerAccount(t.app);
    expect((await as(manager, 'PATCH', `/api/users/${plain.id}`, { disabled: true })).statusCode).toBe(200);
    const batch = await as(manager, 'PATCH', '/api/users/batch', { items: [{ id: plain.id, name: 'Plain' }] });
    expect(batch.json().results[0]).toMatchObject({ ok: true });
    expect((await as(manager, 'DELETE', `/api/users/${plain.id}`)).statusCode).toBe(200);
    // A role the manager can give, to an administrator: roles go by their own rule (assertMayGrant).
    const adminTarget = await registerAdmin(t.app, t.services.db);
    expect((await as(manager, 'POST', `/api/users/${adminTarget.id}/roles/${await roleId('user')}`)).statusCode).toBe(
      200,
    );
    expect((await as(admin, 'PATCH', `/api/users/${manager.id}`, { name: 'Manager' })).statusCode).toBe(200);
  });
});
