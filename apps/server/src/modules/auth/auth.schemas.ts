import { z } from 'zod';
import { email, id, isoDateTime, newPassword, password } from '../common-schemas.ts';
import { name, userOutput } from '../users/users.schemas.ts';

export const registerInput = z
  .object({ email, password: newPassword, name: name.optional() })
  .refine((input) => input.password.toLowerCase() !== input.email, {
    path: ['password'],
    error: 'must not be the email address',
  });

export const loginInput = z.object({ email, password });

export const refreshInput = z.object({ refreshToken: z.string().min(1).max(200) });

export const changePasswordInput = z.object({ currentPassword: password, newPassword });

export const sessionIdInput = z.object({ id });

export const authResult = z
  .object({
    accessToken: z.string(),
    refreshToken: z.string(),
    tokenType: z.literal('Bearer'),
    accessTokenExpiresAt: isoDateTime,
    refreshTokenExpiresAt: isoDateTime,
    user: userOutput,
  })
  .meta({ id: 'AuthResult' });

export const sessionOutput = z
  .object({
    id,
    createdAt: isoDateTime,
    lastUsedAt: isoDateTime,
    userAgent: z.string().nullable(),
    ip: z.string().nullable(),
    current: z.boolean(),
  })
  .meta({ id: 'Session' });

export type AuthResult = z.infer<typeof authResult>;
