/**
 * Bulk user administration. The boundary only checks each item's shape loosely (types and
 * bounds), so that one bad row does not fail the call: each item is then validated on its
 * own, with the rules of the single-user procedures, and answered on its own.
 */
import { z } from 'zod';
import { APP_ERROR_CODES, type AppErrorCode } from '../../errors/index.ts';
import { refusingEmailAsPassword } from '../auth/password-policy.ts';
import { email, id, newPassword, text } from '../common-schemas.ts';
import { roleName } from '../rbac/rbac.schemas.ts';
import { name, userOutput } from './users.schemas.ts';

/** Most items one batch call takes. */
export const BATCH_MAX_ITEMS = 100;
const MAX_ROLES = 20;

const atomic = z
  .boolean()
  .default(false)
  .meta({ description: 'All or nothing: one transaction, and when any item fails none is written' });
const looseString = text.max(1000);
const looseRoles = z.array(text.max(100)).max(MAX_ROLES).optional().meta({
  description:
    'Role names: the user holds exactly these (needs roles:assign too, and the permissions of the roles it gains or loses)',
});

export const createManyInput = z.object({
  items: z
    .array(
      z.object({
        email: looseString.meta({ description: 'An email address no account uses yet' }),
        name: looseString.nullable().optional().meta({ description: '1-100 characters' }),
        password: looseString
          .optional()
          .meta({ description: '8-128 characters with a letter and a digit; without one, sign-in is by email code' }),
        emailVerified: z.boolean().optional().meta({ description: 'Whether the address counts as verified' }),
        roles: looseRoles.meta({ description: 'Role names (needs roles:assign too); the default role when absent' }),
      }),
    )
    .min(1)
    .max(BATCH_MAX_ITEMS),
  atomic,
});

export const updateManyInput = z.object({
  items: z
    .array(
      z.object({
        id: looseString.meta({ description: 'The user' }),
        name: looseString.nullable().optional().meta({ description: '1-100 characters, or null' }),
        disabled: z.boolean().optional().meta({ description: "Disabling ends the user's sessions at once" }),
        roles: looseRoles,
      }),
    )
    .min(1)
    .max(BATCH_MAX_ITEMS),
  atomic,
});

export const deleteManyInput = z.object({
  ids: z.array(looseString).min(1).max(BATCH_MAX_ITEMS).meta({ description: 'The users to delete' }),
  atomic,
});

/** The rules each item is held to (those of the single-user procedures). */
export const newUserItem = refusingEmailAsPassword(
  z.object({
    email,
    name: name.nullable().optional(),
    password: newPassword.optional(),
    emailVerified: z.boolean().optional(),
    roles: z.array(roleName).max(MAX_ROLES).optional(),
  }),
);
export const userChangesItem = z.object({
  id,
  name: name.nullable().optional(),
  disabled: z.boolean().optional(),
  roles: z.array(roleName).max(MAX_ROLES).optional(),
});
export const userIdItem = id;

const itemError = z
  .object({
    appCode: z.enum(Object.keys(APP_ERROR_CODES) as [AppErrorCode, ...AppErrorCode[]]),
    message: z.string(),
    issues: z
      .array(z.object({ path: z.array(z.union([z.string(), z.int()])), message: z.string(), code: z.string() }))
      .optional()
      .meta({ description: 'With VALIDATION_FAILED: where and why, within the item' }),
  })
  .meta({
    id: 'BatchItemError',
    description:
      'Why an item was not written. `BATCH_ABORTED`: the item was valid, but the batch was atomic and another item failed.',
  });

const counts = {
  succeeded: z.int().meta({ description: 'Items written' }),
  failed: z.int().meta({ description: 'Items not written' }),
};

export const userBatchOutput = z.object({
  results: z.array(
    z.object({
      index: z.int().meta({ description: 'The position of the item in the request' }),
      ok: z.boolean(),
      user: userOutput.optional().meta({ description: 'The user as written, when ok' }),
      error: itemError.optional(),
    }),
  ),
  ...counts,
});

export const deleteBatchOutput = z.object({
  results: z.array(
    z.object({
      index: z.int(),
      id: z.string().meta({ description: 'The id as given' }),
      ok: z.boolean(),
      error: itemError.optional(),
    }),
  ),
  ...counts,
});

export type BatchItemError = z.infer<typeof itemError>;
