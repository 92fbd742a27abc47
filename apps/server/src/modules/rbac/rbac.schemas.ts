import { z } from 'zod';
import { id, text } from '../common-schemas.ts';
import { ALL_PERMISSIONS } from './permissions.ts';

export const roleName = text
  .trim()
  .toLowerCase()
  .regex(/^[a-z][a-z0-9_-]{1,49}$/, { error: 'must be 2-50 characters: a letter, then letters, digits, - or _' });
const permissionList = z.array(text.max(100)).max(200);

export const roleOutput = z
  .object({
    id,
    name: z.string(),
    description: z.string(),
    builtIn: z.boolean(),
    permissions: z.array(z.enum(ALL_PERMISSIONS)),
  })
  .meta({ id: 'Role' });

export const createRoleInput = z.object({
  name: roleName,
  description: text.max(500).optional(),
  permissions: permissionList.default([]),
});
export const updateRoleInput = z.object({
  id,
  name: roleName.optional(),
  description: text.max(500).optional(),
  permissions: permissionList.optional(),
});
export const roleIdInput = z.object({ id });
export const assignmentInput = z.object({ id: id.meta({ description: 'The user' }), roleId: id });
export const permissionOutput = z.object({
  name: z.enum(ALL_PERMISSIONS),
  description: z.string(),
  roles: z
    .array(z.string())
    .optional()
    .meta({ description: 'The roles that grant it (with `includeRoles`); admin grants every permission' }),
});
export const listPermissionsInput = z
  .object({ includeRoles: z.boolean().optional().meta({ description: 'Also list the roles that grant each' }) })
  .optional();
