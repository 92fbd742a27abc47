/**
 * The caller policy's second half (authenticate.ts is the first): the permission check
 * every transport shares (`requirePermission` for procedures; plain Fastify routes call it
 * themselves). Read on every call, so a change of roles or grants applies on the next request.
 */
import { AppError, type AppErrorCode } from '../../errors/index.ts';
import type { Services } from '../../services.ts';
import type { Permission } from '../rbac/permissions.ts';
import { permissionsOfUser } from '../rbac/rbac.service.ts';
import type { Caller } from './authenticate.ts';

/** Every app code `assertPermission` throws. */
export const PERMISSION_ERRORS = ['PERMISSION_DENIED'] as const satisfies readonly AppErrorCode[];

/** The permissions the caller holds (through any role; admin holds all), if they include `permission`. */
export async function assertPermission(
  deps: Pick<Services, 'db'>,
  caller: Pick<Caller, 'userId'>,
  permission: Permission,
): Promise<Set<string>> {
  const granted = await permissionsOfUser(deps, caller.userId);
  if (!granted.has(permission)) {
    throw new AppError('PERMISSION_DENIED', `Missing permission: ${permission}`, { details: { permission } });
  }
  return granted;
}
