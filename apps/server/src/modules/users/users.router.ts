import { z } from 'zod';
import { itemError } from '../../errors/index.ts';
import type { Locale } from '../../i18n/locale.ts';
import { router } from '../../trpc/init.ts';
import {
  authedProcedure,
  countBatchItems,
  passwordCheckingProcedure,
  requirePermission,
} from '../../trpc/procedures.ts';
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
import {
  createManyInput,
  deleteBatchOutput,
  deleteManyInput,
  updateManyInput,
  userBatchOutput,
} from './users-batch.schemas.ts';
import * as batch from './users-batch.service.ts';
import { assertMayManage } from './users-policy.ts';

const tags = ['users'];

const batchDescription =
  'Up to 100 items, each validated and answered on its own (`results[i]` is `{ index, ok, … }` for `items[i]`, ' +
  'with `error: { appCode, message, issues? }` when not written): every item is checked before anything is ' +
  'written. `atomic: true` writes all in one transaction or none (the valid items then carry `BATCH_ABORTED`). ' +
  'Counts as one call per item against the rate limit.';

/** A batch's answer: each item's outcome (what `describe` adds to it), errors in the caller's language, and the counts. */
function batchAnswer<Value, Extra>(
  locale: Locale,
  outcomes: batch.Outcome<Value>[],
  describe: (outcome: batch.Outcome<Value>, index: number) => Extra,
) {
  const results = outcomes.map((outcome, index) => ({
    index,
    ok: outcome.ok,
    ...describe(outcome, index),
    ...(!outcome.ok && { error: itemError(outcome.error, locale) }),
  }));
  const succeeded = outcomes.filter((outcome) => outcome.ok).length;
  return { results, succeeded, failed: outcomes.length - succeeded };
}

export const usersRouter = router({
  me: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/users/me', tags, summary: 'Your account' } })
    .input(z.void())
    .output(userOutput)
    .query(({ ctx }) => users.getMe(ctx.services, ctx.caller.userId)),

  updateMe: authedProcedure
    .meta({
      openapi: { method: 'PATCH', path: '/users/me', tags, summary: 'Change your name or the language of your emails' },
    })
    .input(updateMeInput)
    .output(userOutput)
    .mutation(({ ctx, input }) => users.updateMe(ctx.services, { userId: ctx.caller.userId, ...input })),

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
      errors: ['INVALID_CREDENTIALS', 'LAST_ADMIN', 'SERVICE_UNAVAILABLE'],
    })
    .input(deleteMeInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await users.deleteMe(ctx.services, { userId: ctx.caller.userId, password: input.password });
      return { ok: true as const };
    }),

  archiveMe: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/users/me/archive',
        tags,
        summary:
          'Archive your account: you are signed out everywhere and cannot sign in until an administrator restores it',
        description: 'Your data stays. Deleting the account (`DELETE /api/users/me`) removes it instead.',
      },
      errors: ['LAST_ADMIN'],
    })
    .input(z.void())
    .output(ok)
    .mutation(async ({ ctx }) => {
      await users.archiveMe(ctx.services, ctx.caller.userId);
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
      errors: ['NOT_FOUND', 'LAST_ADMIN'],
    })
    .input(updateUserInput)
    .output(userOutput)
    .mutation(async ({ ctx, input }) => {
      await assertMayManage(ctx.services, ctx.permissions, [input.id]);
      return users.updateUser(ctx.services, input);
    }),

  archive: requirePermission('users:write')
    .meta({
      openapi: {
        method: 'POST',
        path: '/users/{id}/archive',
        tags,
        summary: 'Archive a user: no sign-in by any method, sessions end at once, hidden from lists, data kept',
      },
      errors: ['NOT_FOUND', 'LAST_ADMIN'],
    })
    .input(userIdInput)
    .output(userOutput)
    .mutation(async ({ ctx, input }) => {
      await assertMayManage(ctx.services, ctx.permissions, [input.id]);
      return users.archiveUser(ctx.services, input.id);
    }),

  restore: requirePermission('users:write')
    .meta({
      openapi: {
        method: 'POST',
        path: '/users/{id}/restore',
        tags,
        summary: 'Restore an archived user as they were (they sign in again)',
      },
      errors: ['NOT_FOUND'],
    })
    .input(userIdInput)
    .output(userOutput)
    .mutation(async ({ ctx, input }) => {
      await assertMayManage(ctx.services, ctx.permissions, [input.id]);
      return users.restoreUser(ctx.services, input.id);
    }),

  createMany: requirePermission('users:write')
    .meta({
      openapi: { method: 'POST', path: '/users/batch', tags, summary: 'Create users', description: batchDescription },
      errors: ['SERVICE_UNAVAILABLE'],
    })
    .input(createManyInput)
    .output(userBatchOutput)
    .mutation(async ({ ctx, input }) => {
      await countBatchItems(ctx, input.items.length);
      const outcomes = await batch.createMany(ctx.services, input, ctx.permissions);
      return batchAnswer(ctx.locale, outcomes, (outcome) => (outcome.ok ? { user: outcome.value } : {}));
    }),

  updateMany: requirePermission('users:write')
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/users/batch',
        tags,
        summary: "Rename, disable or enable users and set their roles (disabling ends the user's sessions)",
        description: batchDescription,
      },
    })
    .input(updateManyInput)
    .output(userBatchOutput)
    .mutation(async ({ ctx, input }) => {
      await countBatchItems(ctx, input.items.length);
      const outcomes = await batch.updateMany(ctx.services, input, ctx.permissions);
      return batchAnswer(ctx.locale, outcomes, (outcome) => (outcome.ok ? { user: outcome.value } : {}));
    }),

  deleteMany: requirePermission('users:delete')
    .meta({
      openapi: {
        method: 'POST',
        path: '/users/batch-delete',
        tags,
        summary: 'Delete users and their data (their sessions end first)',
        description: batchDescription,
      },
    })
    .input(deleteManyInput)
    .output(deleteBatchOutput)
    .mutation(async ({ ctx, input }) => {
      await countBatchItems(ctx, input.ids.length);
      const outcomes = await batch.deleteMany(ctx.services, input, ctx.permissions);
      return batchAnswer(ctx.locale, outcomes, (_, index) => ({ id: String(input.ids[index]) }));
    }),

  delete: requirePermission('users:delete')
    .meta({
      openapi: { method: 'DELETE', path: '/users/{id}', tags, summary: 'Delete a user and their data' },
      errors: ['NOT_FOUND', 'LAST_ADMIN'],
    })
    .input(userIdInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await assertMayManage(ctx.services, ctx.permissions, [input.id]);
      await users.deleteUser(ctx.services, input.id);
      return { ok: true as const };
    }),
});
