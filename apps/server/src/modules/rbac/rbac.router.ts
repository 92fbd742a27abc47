import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import { requirePermission } from '../../trpc/procedures.ts';
import { ok } from '../common-schemas.ts';
import {
  assignmentInput,
  createRoleInput,
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
        openapi: { method: 'GET', path: '/roles', tags, protect: true, summary: 'Every role with its permissions' },
      })
      .input(z.void())
      .output(z.array(roleOutput))
      .query(({ ctx }) => rbac.listRoles(ctx.services.db)),

    create: requirePermission('roles:write')
      .meta({
        openapi: {
          method: 'POST',
          path: '/roles',
          tags,
          protect: true,
          summary: 'Create a role',
          errorResponses: { 400: 'Invalid input or UNKNOWN_PERMISSION', 409: 'ROLE_NAME_TAKEN' },
        },
      })
      .input(createRoleInput)
      .output(roleOutput)
      .mutation(({ ctx, input }) => rbac.createRole(ctx.services.db, input)),

    update: requirePermission('roles:write')
      .meta({
        openapi: {
          method: 'PATCH',
          path: '/roles/{id}',
          tags,
          protect: true,
          summary: 'Rename a role, describe it, or replace its permissions',
          errorResponses: { 403: 'BUILT_IN_ROLE', 404: 'No such role', 409: 'ROLE_NAME_TAKEN' },
        },
      })
      .input(updateRoleInput)
      .output(roleOutput)
      .mutation(({ ctx, input }) => rbac.updateRole(ctx.services.db, input.id, input)),

    delete: requirePermission('roles:write')
      .meta({
        openapi: {
          method: 'DELETE',
          path: '/roles/{id}',
          tags,
          protect: true,
          summary: 'Delete a role (not a built-in one)',
          errorResponses: { 403: 'BUILT_IN_ROLE', 404: 'No such role' },
        },
      })
      .input(roleIdInput)
      .output(ok)
      .mutation(async ({ ctx, input }) => {
        await rbac.deleteRole(ctx.services.db, input.id);
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
          protect: true,
          summary: 'Every permission the code declares',
        },
      })
      .input(z.void())
      .output(z.array(permissionOutput))
      .query(() => rbac.listPermissions()),
  }),

  assignRole: requirePermission('roles:assign')
    .meta({
      openapi: {
        method: 'POST',
        path: '/users/{id}/roles/{roleId}',
        tags,
        protect: true,
        summary: 'Give a user a role (idempotent)',
      },
    })
    .input(assignmentInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await rbac.assignRole(ctx.services.db, input.id, input.roleId);
      return done;
    }),

  unassignRole: requirePermission('roles:assign')
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/users/{id}/roles/{roleId}',
        tags,
        protect: true,
        summary: 'Take a role from a user (idempotent)',
      },
    })
    .input(assignmentInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await rbac.unassignRole(ctx.services.db, input.id, input.roleId);
      return done;
    }),
});
