import { type Database, isUniqueViolation } from '@app/db';
import { type ExpressionBuilder, sql } from 'kysely';
import { jsonArrayFrom } from 'kysely/helpers/postgres';
import { AppError } from '../../errors/index.ts';
import type { Services } from '../../services.ts';
import { assertMayGrant } from '../auth/assert-permission.ts';
import { ADMIN_ROLE, ALL_PERMISSIONS, isPermission, PERMISSIONS, type Permission } from './permissions.ts';

export interface RoleDto {
  id: string;
  name: string;
  description: string;
  builtIn: boolean;
  permissions: Permission[];
}

type Deps = Pick<Services, 'db'>;

const roleNameTaken = (name: string) =>
  new AppError('ROLE_NAME_TAKEN', 'A role named "{name}" already exists', { params: { name } });

/** The permissions a set of roles grants: everything for admin, else the union of the grants. */
function grantedBy(roleName: string, grants: string[]): Permission[] {
  return (roleName === ADMIN_ROLE ? [...ALL_PERMISSIONS] : grants.filter(isPermission)).sort();
}

export interface Access {
  roles: string[];
  permissions: Permission[];
}

/** A role a user holds, with the permissions granted to it (as `accessColumn` reads them). */
export interface HeldRole {
  name: string;
  grants: string[];
}

/** The roles a user holds and the permissions they grant. */
function accessFrom(roles: Iterable<HeldRole>): Access {
  const names: string[] = [];
  const permissions = new Set<Permission>();
  for (const role of roles) {
    names.push(role.name);
    for (const permission of grantedBy(role.name, role.grants)) permissions.add(permission);
  }
  return { roles: names.sort(), permissions: [...permissions].sort() };
}

/**
 * The roles of the `users` row a query selects, with their grants, as one JSON column
 * (`access`): a user with their roles and permissions in one statement. Read it with
 * `accessOf`.
 */
export function accessColumn(eb: ExpressionBuilder<Database, 'users'>) {
  return jsonArrayFrom(
    eb
      .selectFrom('user_roles as ur')
      .innerJoin('roles as r', 'r.id', 'ur.role_id')
      .select([
        'r.name',
        sql<
          string[]
        >`coalesce((select array_agg(rp.permission) from role_permissions rp where rp.role_id = r.id), '{}')`.as(
          'grants',
        ),
      ])
      .whereRef('ur.user_id', '=', 'users.id'),
  ).as('access');
}

/** The `access` column's roles and permissions. */
export const accessOf = (row: { access: HeldRole[] }): Access => accessFrom(row.access);

/** Roles and permissions of each user in `userIds`, in one query. */
export async function rolesOfUsers(deps: Deps, userIds: string[]): Promise<Map<string, Access>> {
  const result = new Map<string, Access>();
  if (userIds.length === 0) return result;
  const rows = await deps.db
    .selectFrom('user_roles as ur')
    .innerJoin('roles as r', 'r.id', 'ur.role_id')
    .leftJoin('role_permissions as rp', 'rp.role_id', 'r.id')
    .select(['ur.user_id', 'r.name', 'rp.permission'])
    .where('ur.user_id', 'in', userIds)
    .execute();
  const byUser = new Map<string, Map<string, HeldRole>>();
  for (const row of rows) {
    const roles = byUser.get(row.user_id) ?? new Map<string, HeldRole>();
    byUser.set(row.user_id, roles);
    const role = roles.get(row.name) ?? { name: row.name, grants: [] };
    roles.set(row.name, role);
    if (row.permission) role.grants.push(row.permission);
  }
  for (const id of userIds) result.set(id, accessFrom(byUser.get(id)?.values() ?? []));
  return result;
}

export async function permissionsOfUser(deps: Deps, userId: string): Promise<Set<Permission>> {
  return new Set((await rolesOfUsers(deps, [userId])).get(userId)?.permissions ?? []);
}

/** Every declared permission; with `includeRoles`, the roles that grant each (in one query). */
export async function listPermissions(
  deps: Deps,
  input: { includeRoles?: boolean | undefined } = {},
): Promise<{ name: Permission; description: string; roles?: string[] }[]> {
  const permissions = ALL_PERMISSIONS.map((name) => ({ name, description: PERMISSIONS[name] }));
  if (!input.includeRoles) return permissions;
  const roles = await listRoles(deps);
  return permissions.map((permission) => ({
    ...permission,
    roles: roles.filter((role) => role.permissions.includes(permission.name)).map((role) => role.name),
  }));
}

/** Every permission the roles named (by id or by name) grant; unknown roles grant none. */
export async function permissionsOfRoles(deps: Deps, roles: { ids?: string[]; names?: string[] }): Promise<string[]> {
  if (!roles.ids?.length && !roles.names?.length) return [];
  const named = (await listRoles(deps)).filter(
    (role) => roles.ids?.includes(role.id) || roles.names?.includes(role.name),
  );
  return [...new Set(named.flatMap((role) => role.permissions))];
}

/** The role exists (a 404 otherwise): for listings that name one. */
export async function assertRoleExists(deps: Deps, id: string): Promise<void> {
  const role = await deps.db.selectFrom('roles').select('id').where('id', '=', id).executeTakeFirst();
  if (!role) throw new AppError('NOT_FOUND', 'No such role');
}

function assertKnown(permissions: string[]): void {
  const unknown = permissions.filter((p) => !isPermission(p));
  if (unknown.length > 0) {
    throw new AppError('UNKNOWN_PERMISSION', 'Unknown permission(s): {unknown}', {
      details: { unknown },
      params: { unknown: unknown.join(', ') },
    });
  }
}

export async function listRoles(deps: Deps): Promise<RoleDto[]> {
  const roles = await deps.db.selectFrom('roles').selectAll().orderBy('name').execute();
  const grants = await deps.db.selectFrom('role_permissions').selectAll().execute();
  return roles.map((role) => ({
    id: role.id,
    name: role.name,
    description: role.description,
    builtIn: role.built_in,
    permissions: grantedBy(
      role.name,
      grants.filter((g) => g.role_id === role.id).map((g) => g.permission),
    ),
  }));
}

async function getRole(deps: Deps, id: string): Promise<RoleDto> {
  const role = (await listRoles(deps)).find((r) => r.id === id);
  if (!role) throw new AppError('NOT_FOUND', 'No such role');
  return role;
}

export async function createRole(
  deps: Deps,
  input: { name: string; description?: string; permissions: string[] },
): Promise<RoleDto> {
  assertKnown(input.permissions);
  try {
    const id = await deps.db.transaction().execute(async (trx) => {
      const role = await trx
        .insertInto('roles')
        .values({ name: input.name, description: input.description ?? '' })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (input.permissions.length > 0) {
        await trx
          .insertInto('role_permissions')
          .values([...new Set(input.permissions)].map((permission) => ({ role_id: role.id, permission })))
          .execute();
      }
      return role.id;
    });
    return getRole(deps, id);
  } catch (error) {
    if (isUniqueViolation(error)) throw roleNameTaken(input.name);
    throw error;
  }
}

/**
 * `granted`: the caller's permissions. Replacing the grants gives the added ones and takes
 * the removed ones back from every holder: both only for permissions the caller holds (the
 * ones kept, the caller may lack: a full list sent back unchanged is no grant).
 */
export async function updateRole(
  deps: Deps,
  input: { id: string; name?: string; description?: string; permissions?: string[] },
  granted: ReadonlySet<string>,
): Promise<RoleDto> {
  const { id } = input;
  const role = await getRole(deps, id);
  if (role.builtIn && input.name !== undefined && input.name !== role.name) {
    throw new AppError('BUILT_IN_ROLE', 'The built-in role "{role}" cannot be renamed', {
      params: { role: role.name },
    });
  }
  if (role.name === ADMIN_ROLE && input.permissions !== undefined) {
    throw new AppError('BUILT_IN_ROLE', 'The admin role holds every permission; its grants cannot be changed');
  }
  if (input.permissions) assertKnown(input.permissions);
  try {
    await deps.db.transaction().execute(async (trx) => {
      // One change of a role at a time: two replacing its permissions together would each
      // delete only the grants they saw, and insert into the other's (merged lists, or a
      // duplicate grant answered as a taken name).
      await trx.selectFrom('roles').select('id').where('id', '=', id).forUpdate().execute();
      if (input.name !== undefined || input.description !== undefined) {
        await trx
          .updateTable('roles')
          .set({
            ...(input.name !== undefined && { name: input.name }),
            ...(input.description !== undefined && { description: input.description }),
          })
          .where('id', '=', id)
          .execute();
      }
      if (input.permissions) {
        // Read under the lock: a grant another change made meanwhile is not taken back unchecked.
        const current = new Set(
          (await trx.selectFrom('role_permissions').select('permission').where('role_id', '=', id).execute()).map(
            (row) => row.permission,
          ),
        );
        const wanted = new Set(input.permissions);
        assertMayGrant(granted, [
          ...[...wanted].filter((permission) => !current.has(permission)),
          ...[...current].filter((permission) => !wanted.has(permission)),
        ]);
        await trx.deleteFrom('role_permissions').where('role_id', '=', id).execute();
        if (input.permissions.length > 0) {
          await trx
            .insertInto('role_permissions')
            .values([...new Set(input.permissions)].map((permission) => ({ role_id: id, permission })))
            .execute();
        }
      }
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw roleNameTaken(input.name ?? role.name);
    throw error;
  }
  return getRole(deps, id);
}

export async function deleteRole(deps: Deps, id: string): Promise<void> {
  const role = await getRole(deps, id);
  if (role.builtIn)
    throw new AppError('BUILT_IN_ROLE', 'The built-in role "{role}" cannot be deleted', {
      params: { role: role.name },
    });
  await deps.db.deleteFrom('roles').where('id', '=', id).execute();
}

type Assignment = { userId: string; roleId: string };

async function assertUserAndRole(deps: Deps, { userId, roleId }: Assignment): Promise<void> {
  const [user, role] = await Promise.all([
    deps.db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst(),
    deps.db.selectFrom('roles').select('id').where('id', '=', roleId).executeTakeFirst(),
  ]);
  if (!user) throw new AppError('NOT_FOUND', 'No such user');
  if (!role) throw new AppError('NOT_FOUND', 'No such role');
}

/** Idempotent: assigning a role the user has is a no-op. */
export async function assignRole(deps: Deps, assignment: Assignment): Promise<void> {
  await assertUserAndRole(deps, assignment);
  await deps.db
    .insertInto('user_roles')
    .values({ user_id: assignment.userId, role_id: assignment.roleId })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** Idempotent: taking away a role the user does not have is a no-op. Never the last administrator's admin role. */
export async function unassignRole(deps: Deps, assignment: Assignment): Promise<void> {
  await assertUserAndRole(deps, assignment);
  await keepAnAdministrator(deps, (trx) =>
    trx.db
      .deleteFrom('user_roles')
      .where('user_id', '=', assignment.userId)
      .where('role_id', '=', assignment.roleId)
      .execute(),
  );
}

/** The holders of the admin role who can sign in (neither disabled nor archived). */
export async function administratorIds(deps: Deps): Promise<string[]> {
  const rows = await deps.db
    .selectFrom('user_roles as ur')
    .innerJoin('roles as r', 'r.id', 'ur.role_id')
    .innerJoin('users as u', 'u.id', 'ur.user_id')
    .select('u.id')
    .where('r.name', '=', ADMIN_ROLE)
    .where('u.disabled_at', 'is', null)
    .where('u.archived_at', 'is', null)
    .execute();
  return rows.map((row) => row.id);
}

export const lastAdministrator = () =>
  new AppError('LAST_ADMIN', 'This would leave no administrator: make another account an admin first');

/**
 * Every change that can take an administrator away (taking the admin role, replacing a
 * user's roles, disabling, archiving, deleting) runs through here, in the caller's
 * transaction or one of its own: such changes take turns (the admin role's row is locked
 * first), and one that would leave a database that had an administrator who can sign in with
 * none is refused with LAST_ADMIN, unwritten. Two administrators disabling each other at
 * once leave one. (`pnpm db:grant-admin` is the way back from outside the API.)
 */
export async function keepAnAdministrator<D extends Deps, T>(deps: D, change: (trx: D) => Promise<T>): Promise<T> {
  if (!deps.db.isTransaction) {
    return deps.db.transaction().execute((trx) => keepAnAdministrator({ ...deps, db: trx }, change));
  }
  // FOR NO KEY UPDATE: the guarded changes wait for each other, not a plain role assignment's key check.
  await deps.db.selectFrom('roles').select('id').where('name', '=', ADMIN_ROLE).forNoKeyUpdate().execute();
  const before = (await administratorIds(deps)).length;
  const result = await change(deps);
  if (before > 0 && (await administratorIds(deps)).length === 0) throw lastAdministrator();
  return result;
}

/**
 * Applies a change of a user's roles that was checked against `held`, the roles seen then:
 * takes away those of `held` not in `roleIds`, gives those of `roleIds` not in `held`, and
 * leaves any other alone. A role given or taken by someone else since the check stays as
 * they left it: the change never gives or takes a role the check did not see it change.
 */
export async function changeRoles(
  deps: Deps,
  input: { userId: string; held: ReadonlySet<string>; roleIds: string[] },
): Promise<void> {
  const named = new Set(input.roleIds);
  const lost = [...input.held].filter((roleId) => !named.has(roleId));
  const gained = [...named].filter((roleId) => !input.held.has(roleId));
  if (lost.length > 0) {
    await deps.db.deleteFrom('user_roles').where('user_id', '=', input.userId).where('role_id', 'in', lost).execute();
  }
  if (gained.length === 0) return;
  await deps.db
    .insertInto('user_roles')
    .values(gained.map((roleId) => ({ user_id: input.userId, role_id: roleId })))
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** The role every new account starts with (called in the transaction that creates the user). */
export async function assignDefaultRole(deps: Deps, userId: string): Promise<void> {
  const role = await deps.db.selectFrom('roles').select('id').where('name', '=', 'user').executeTakeFirstOrThrow();
  await deps.db
    .insertInto('user_roles')
    .values({ user_id: userId, role_id: role.id })
    .onConflict((oc) => oc.doNothing())
    .execute();
}
