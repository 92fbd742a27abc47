import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import { requirePermission } from '../../trpc/procedures.ts';
import { assertMayGrant } from '../auth/assert-permission.ts';
import { ok } from '../common-schemas.ts';
import { listUsersOutput, roleMembersInput } from '../users/users.schemas.ts';
import { listUsers } from '../users/users.service.ts';
import {
  assignmentInput,
  createRoleInput,
  listPermissionsInput,
  permissionOutput,
  roleIdInput,
  roleOutput,
  updateRoleInput,
} from './rbac.schemas.ts';
import * as rbac from './rbac.service.ts';

const tags = ['roles'];
const done = { ok: true as const };

export const rbacRouter = router({
  roles: router({
    list: requirePermission('roles:read')
      .meta({
        openapi: { method: 'GET', path: '/roles', tags, summary: 'Every role with its permissions' },
      })
      .input(z.void())
      .output(z.array(roleOutput))
      .query(({ ctx }) => rbac.listRoles(ctx.services)),

    members: requirePermission('users:read')
      .meta({
        openapi: {
          method: 'GET',
          path: '/roles/{id}/members',
          tags,
          summary: "A role's users, newest first (needs users:read: it lists users)",
        },
        errors: ['NOT_FOUND'],
      })
      .input(roleMembersInput)
      .output(listUsersOutput)
      .query(async ({ ctx, input }) => {
        await rbac.assertRoleExists(ctx.services, input.id);
        return listUsers(ctx.services, {
          limit: input.limit,
          cursor: input.cursor,
          roleId: input.id,
          includeArchived: input.includeArchived,
        });
      }),

    create: requirePermission('roles:write')
      .meta({
        openapi: {
          method: 'POST',
          path: '/roles',
          tags,
          summary: 'Create a role',
        },
        errors: ['UNKNOWN_PERMISSION', 'ROLE_NAME_TAKEN'],
      })
      .input(createRoleInput)
      .output(roleOutput)
      .mutation(({ ctx, input }) => {
        assertMayGrant(ctx.permissions, input.permissions);
        return rbac.createRole(ctx.services, input);
      }),

    update: requirePermission('roles:write')
      .meta({
        openapi: {
          method: 'PATCH',
          path: '/roles/{id}',
          tags,
          summary: 'Rename a role, describe it, or replace its permissions',
        },
        errors: ['NOT_FOUND', 'BUILT_IN_ROLE', 'ROLE_NAME_TAKEN', 'UNKNOWN_PERMISSION'],
      })
      .input(updateRoleInput)
      .output(roleOutput)
      .mutation(({ ctx, input }) => rbac.updateRole(ctx.services, input, ctx.permissions)),

    delete: requirePermission('roles:write')
      .meta({
        openapi: {
          method: 'DELETE',
          path: '/roles/{id}',
          tags,
          summary: 'Delete a role (not a built-in one)',
        },
        errors: ['NOT_FOUND', 'BUILT_IN_ROLE'],
      })
      .input(roleIdInput)
      .output(ok)
      .mutation(async ({ ctx, input }) => {
        // Its holders lose its permissions: only for a role the caller could give.
        assertMayGrant(ctx.permissions, await rbac.permissionsOfRoles(ctx.services, { ids: [input.id] }));
        await rbac.deleteRole(ctx.services, input.id);
        return done;
      }),
  }),

  permissions: router({
    list: requirePermission('roles:read')
      .meta({
        openapi: {
          method: 'GET',
          path: '/permissions',
          tags,
          summary: 'Every permission the code declares',
        },
      })
      .input(listPermissionsInput)
      .output(z.array(permissionOutput))
      .query(({ ctx, input }) => rbac.listPermissions(ctx.services, { includeRoles: input?.includeRoles })),
  }),

  assignRole: requirePermission('roles:assign')
    .meta({
      openapi: {
        method: 'POST',
        path: '/users/{id}/roles/{roleId}',
        tags,
        summary: 'Give a user a role (idempotent)',
      },
      errors: ['NOT_FOUND'],
    })
    .input(assignmentInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      assertMayGrant(ctx.permissions, await rbac.permissionsOfRoles(ctx.services, { ids: [input.roleId] }));
      await rbac.assignRole(ctx.services, { userId: input.id, roleId: input.roleId });
      return done;
    }),

  unassignRole: requirePermission('roles:assign')
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/users/{id}/roles/{roleId}',
        tags,
        summary: 'Take a role from a user (idempotent)',
      },
      errors: ['NOT_FOUND', 'LAST_ADMIN'],
    })
    .input(assignmentInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      // Taking a role away is giving it back: only for roles the caller could give.
      assertMayGrant(ctx.permissions, await rbac.permissionsOfRoles(ctx.services, { ids: [input.roleId] }));
      await rbac.unassignRole(ctx.services, { userId: input.id, roleId: input.roleId });
      return done;
    }),
});
