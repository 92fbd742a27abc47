import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import { authedProcedure, passwordCheckingProcedure, requirePermission } from '../../trpc/procedures.ts';
import { ok } from '../common-schemas.ts';
import {
  deleteMeInput,
  listUsersInput,
  listUsersOutput,
  setAvatarInput,
  updateMeInput,
  updateUserInput,
  userIdInput,
  userOutput,
} from './users.schemas.ts';
import * as users from './users.service.ts';

const tags = ['users'];

export const usersRouter = router({
  me: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/users/me', tags, summary: 'Your account' } })
    .input(z.void())
    .output(userOutput)
    .query(({ ctx }) => users.getMe(ctx.services, ctx.caller.userId)),

  updateMe: authedProcedure
    .meta({ openapi: { method: 'PATCH', path: '/users/me', tags, summary: 'Change your name' } })
    .input(updateMeInput)
    .output(userOutput)
    .mutation(({ ctx, input }) => users.updateMe(ctx.services, { userId: ctx.caller.userId, name: input.name })),

  setAvatar: authedProcedure
    .meta({
      openapi: {
        method: 'PUT',
        path: '/users/me/avatar',
        tags,
        summary: 'Use one of your uploaded images as your picture',
      },
      errors: ['NOT_AN_IMAGE'],
    })
    .input(setAvatarInput)
    .output(userOutput)
    .mutation(({ ctx, input }) => users.setAvatar(ctx.services, { userId: ctx.caller.userId, fileId: input.fileId })),

  removeAvatar: authedProcedure
    .meta({ openapi: { method: 'DELETE', path: '/users/me/avatar', tags, summary: 'Remove your picture' } })
    .input(z.void())
    .output(userOutput)
    .mutation(({ ctx }) => users.removeAvatar(ctx.services, ctx.caller.userId)),

  deleteMe: passwordCheckingProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/users/me',
        tags,
        summary: 'Delete your account and its data',
        description: 'Accounts with a password confirm with it, in the JSON body (never in the URL).',
      },
      errors: ['INVALID_CREDENTIALS'],
    })
    .input(deleteMeInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await users.deleteMe(ctx.services, { userId: ctx.caller.userId, password: input.password });
      return { ok: true as const };
    }),

  list: requirePermission('users:read')
    .meta({ openapi: { method: 'GET', path: '/users', tags, summary: 'Users, newest first' } })
    .input(listUsersInput)
    .output(listUsersOutput)
    .query(({ ctx, input }) => users.listUsers(ctx.services, input)),

  get: requirePermission('users:read')
    .meta({ openapi: { method: 'GET', path: '/users/{id}', tags, summary: 'One user' }, errors: ['NOT_FOUND'] })
    .input(userIdInput)
    .output(userOutput)
    .query(({ ctx, input }) => users.getUser(ctx.services, input.id)),

  update: requirePermission('users:write')
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/users/{id}',
        tags,
        summary: 'Rename, disable or enable a user (disabling ends their sessions)',
      },
      errors: ['NOT_FOUND'],
    })
    .input(updateUserInput)
    .output(userOutput)
    .mutation(({ ctx, input }) => users.updateUser(ctx.services, input)),

  delete: requirePermission('users:delete')
    .meta({
      openapi: { method: 'DELETE', path: '/users/{id}', tags, summary: 'Delete a user and their data' },
      errors: ['NOT_FOUND'],
    })
    .input(userIdInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await users.deleteUser(ctx.services, input.id);
      return { ok: true as const };
    }),
});
