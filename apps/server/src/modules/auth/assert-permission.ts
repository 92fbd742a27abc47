/**
 * The caller policy's second half (authenticate.ts is the first): the permission check
 * every transport shares (`requirePermission` for procedures; plain Fastify routes call it
 * themselves). Read on every call, so a change of roles or grants applies on the next request.
 */
import { AppError, type AppErrorCode } from '../../errors/index.ts';
import type { Services } from '../../services.ts';
import { isPermission, type Permission } from '../rbac/permissions.ts';
import { permissionsOfUser } from '../rbac/rbac.service.ts';
import { callerAccountGone, findUserRow } from '../users/users.service.ts';
import type { Caller } from './authenticate.ts';

/** Every app code `assertPermission` throws. */
export const PERMISSION_ERRORS = ['PERMISSION_DENIED', 'SESSION_REVOKED'] as const satisfies readonly AppErrorCode[];

export function permissionDenied(permission: Permission): AppError {
  return new AppError('PERMISSION_DENIED', 'Missing permission: {permission}', {
    details: { permission },
    params: { permission },
  });
}

/**
 * No one gives what they do not hold: the permissions a caller grants (to a role, or to a
 * user through a role) must all be the caller's own, so `roles:write` or `roles:assign`
 * cannot make their holder an administrator. The first one missing is refused.
 */
export function assertMayGrant(granted: ReadonlySet<string>, permissions: Iterable<string>): void {
  for (const permission of permissions) {
    // An undeclared name is UNKNOWN_PERMISSION, the service's to answer.
    if (isPermission(permission) && !granted.has(permission)) throw permissionDenied(permission);
  }
}

/** Whether the caller holds `permission` (through any role; admin holds all): for a choice, not a refusal. */
export async function hasPermission(
  deps: Pick<Services, 'db'>,
  caller: Pick<Caller, 'userId'>,
  permission: Permission,
): Promise<boolean> {
  return (await permissionsOfUser(deps, caller.userId)).has(permission);
}

/** The permissions the caller holds (through any role; admin holds all), if they include `permission`. */
export async function assertPermission(
  deps: Pick<Services, 'db'>,
  caller: Pick<Caller, 'userId'>,
  permission: Permission,
): Promise<Set<string>> {
  const granted = await permissionsOfUser(deps, caller.userId);
  if (!granted.has(permission)) {
    // A caller without roles may be a caller without an account (deleted under a live token):
    // signed out, not "forbidden". Looked up only for a refusal, never on the allowed path.
    if (!(await findUserRow(deps, caller.userId))) throw callerAccountGone();
    throw permissionDenied(permission);
  }
  return granted;
}
