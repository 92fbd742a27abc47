import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import { authedProcedure, passwordCheckingProcedure, requirePermission } from '../../trpc/procedures.ts';
import { ok } from '../common-schemas.ts';
import {
  deleteMeInput,
  listUsersInput,
  listUsersOutput,
  updateMeInput,
  updateUserInput,
  userIdInput,
  userOutput,
} from './users.schemas.ts';
import * as users from './users.service.ts';

const tags = ['users'];

export const usersRouter = router({
  me: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/users/me', tags, protect: true, summary: 'Your account' } })
    .input(z.void())
    .output(userOutput)
    .query(({ ctx }) => users.getMe(ctx.services.db, ctx.caller.userId)),

  updateMe: authedProcedure
    .meta({ openapi: { method: 'PATCH', path: '/users/me', tags, protect: true, summary: 'Change your name' } })
    .input(updateMeInput)
    .output(userOutput)
    .mutation(({ ctx, input }) => users.updateMe(ctx.services, ctx.caller.userId, { name: input.name })),

  deleteMe: passwordCheckingProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/users/me',
        tags,
        protect: true,
        summary: 'Delete your account and its data',
        description: 'Accounts with a password confirm with it, in the JSON body (never in the URL).',
        errorResponses: { 401: 'INVALID_CREDENTIALS' },
      },
    })
    .input(deleteMeInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await users.deleteMe(ctx.services, ctx.caller.userId, input.password);
      return { ok: true as const };
    }),

  list: requirePermission('users:read')
    .meta({ openapi: { method: 'GET', path: '/users', tags, protect: true, summary: 'Users, newest first' } })
    .input(listUsersInput)
    .output(listUsersOutput)
    .query(({ ctx, input }) => users.listUsers(ctx.services.db, input)),

  get: requirePermission('users:read')
    .meta({ openapi: { method: 'GET', path: '/users/{id}', tags, protect: true, summary: 'One user' } })
    .input(userIdInput)
    .output(userOutput)
    .query(({ ctx, input }) => users.getUser(ctx.services.db, input.id)),

  update: requirePermission('users:write')
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/users/{id}',
        tags,
        protect: true,
        summary: 'Rename, disable or enable a user (disabling ends their sessions)',
      },
    })
    .input(updateUserInput)
    .output(userOutput)
    .mutation(({ ctx, input }) => users.updateUser(ctx.services, input.id, input)),

  delete: requirePermission('users:delete')
    .meta({
      openapi: { method: 'DELETE', path: '/users/{id}', tags, protect: true, summary: 'Delete a user and their data' },
    })
    .input(userIdInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await users.deleteUser(ctx.services, input.id);
      return { ok: true as const };
    }),
});
