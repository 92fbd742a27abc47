import { z } from 'zod';
import { LOCALES } from '../../i18n/locale.ts';
import { id, isoDateTime, lineOfText, pageInput, text } from '../common-schemas.ts';
import { ALL_PERMISSIONS } from '../rbac/permissions.ts';

export const userOutput = z
  .object({
    id,
    email: z.string(),
    name: z.string().nullable(),
    emailVerified: z.boolean(),
    disabled: z.boolean().meta({ description: 'An administrator blocked the account: no sign-in, still listed' }),
    archived: z
      .boolean()
      .meta({ description: 'Archived (by its owner or an administrator): no sign-in, hidden from lists, data kept' }),
    locale: z
      .enum(LOCALES)
      .nullable()
      .meta({ description: 'The language of emails to this user; null: the language of each request' }),
    roles: z.array(z.string()),
    permissions: z.array(z.enum(ALL_PERMISSIONS)),
    avatarUrl: z.string().nullable().meta({ description: 'The profile picture (public), or null' }),
    createdAt: isoDateTime,
    updatedAt: isoDateTime,
  })
  .meta({ id: 'User' });

export const name = lineOfText.min(1).max(100);

export const locale = z.enum(LOCALES);
export const updateMeInput = z.object({
  name: name.nullable().optional(),
  locale: locale
    .nullable()
    .optional()
    .meta({ description: 'The language of your emails (null: the language of each request)' }),
});
export const deleteMeInput = z.object({
  password: text.max(128).optional().meta({ description: 'Required when the account has a password' }),
});
const includeArchived = z
  .boolean()
  .default(false)
  .meta({ description: 'Archived accounts too (they are left out by default)' });
export const listUsersInput = z.object({
  ...pageInput,
  role: text
    .trim()
    .toLowerCase()
    .max(50)
    .optional()
    .meta({ description: 'Only the users holding this role (by name; empty: every user)' }),
  includeArchived,
});
export const roleMembersInput = z.object({ id, limit: pageInput.limit, cursor: pageInput.cursor, includeArchived });
export const listUsersOutput = z.object({ items: z.array(userOutput), nextCursor: id.nullable() });
export const userIdInput = z.object({ id });
export const setAvatarInput = z.object({ fileId: id.meta({ description: 'An image you uploaded' }) });
export const updateUserInput = z.object({ id, name: name.nullable().optional(), disabled: z.boolean().optional() });

export type UserDto = z.infer<typeof userOutput>;
