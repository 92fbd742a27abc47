/**
 * Who may act on which users, beyond the permission a procedure names: no one acts on an
 * account that holds a permission they lack (renaming, disabling, archiving, restoring or
 * deleting an administrator takes being one), and no one gives or takes a role whose
 * permissions they lack (`assertMayGrant`, as for one role at a time).
 */
import type { Services } from '../../services.ts';
import { assertMayGrant, permissionDenied } from '../auth/assert-permission.ts';
import { permissionsOfRoles, rolesOfUsers } from '../rbac/rbac.service.ts';

type Deps = Pick<Services, 'db'>;

/** Every user in `userIds` holds only permissions the caller holds (unknown ids hold none). */
export async function assertMayManage(deps: Deps, granted: ReadonlySet<string>, userIds: string[]): Promise<void> {
  if (userIds.length === 0) return;
  for (const access of (await rolesOfUsers(deps, [...new Set(userIds)])).values()) {
    assertMayGrant(granted, access.permissions);
  }
}

/** A user's roles from now on, by id (`userId` absent for an account not created yet). */
export interface RoleChange {
  userId?: string;
  roleIds: string[];
}

/** Naming roles in a batch takes `roles:assign`, as assigning one does (whether or not the item is valid). */
export function assertMayAssignRoles(granted: ReadonlySet<string>, items: { roles?: unknown }[]): void {
  if (items.some((item) => item.roles !== undefined) && !granted.has('roles:assign')) {
    throw permissionDenied('roles:assign');
  }
}

/**
 * Setting users' roles takes the permissions of every role a user gains or loses, read by
 * the ids that will be written: a role renamed meanwhile cannot slip a grant past the check.
 * Returns the roles each user held as checked, by user id: the write changes those only
 * (`changeRoles`), so a role given or taken by someone else since is not undone unchecked.
 */
export async function assertMayGrantRoles(
  deps: Deps,
  granted: ReadonlySet<string>,
  changes: RoleChange[],
): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
  const heldBy = new Map<string, Set<string>>();
  if (changes.length === 0) return heldBy;
  const userIds = [...new Set(changes.flatMap((change) => (change.userId === undefined ? [] : [change.userId])))];
  const held = userIds.length
    ? await deps.db.selectFrom('user_roles').select(['user_id', 'role_id']).where('user_id', 'in', userIds).execute()
    : [];
  for (const userId of userIds) heldBy.set(userId, new Set());
  for (const row of held) heldBy.get(row.user_id)?.add(row.role_id);
  const changed = new Set<string>();
  for (const change of changes) {
    const holds = (change.userId !== undefined && heldBy.get(change.userId)) || new Set<string>();
    const named = new Set(change.roleIds);
    for (const role of named) if (!holds.has(role)) changed.add(role);
    for (const role of holds) if (!named.has(role)) changed.add(role);
  }
  assertMayGrant(granted, await permissionsOfRoles(deps, { ids: [...changed] }));
  return heldBy;
}
