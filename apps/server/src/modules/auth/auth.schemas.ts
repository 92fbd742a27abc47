import { z } from 'zod';
import { email, id, isoDateTime, newPassword, password, text } from '../common-schemas.ts';
import { name, userOutput } from '../users/users.schemas.ts';
import { isEmailAsPassword, PASSWORD_IS_EMAIL } from './password-policy.ts';

export const registerInput = z
  .object({ email, password: newPassword, name: name.optional() })
  .refine((input) => !isEmailAsPassword(input.password, input.email), {
    path: ['password'],
    error: PASSWORD_IS_EMAIL,
  });

export const loginInput = z.object({ email, password });

export const refreshInput = z.object({ refreshToken: text.min(1).max(200) });

export const changePasswordInput = z.object({ currentPassword: password, newPassword });

export const sessionIdInput = z.object({ id });

/** A token from an email link: 43 URL-safe characters. */
const emailToken = text.min(20).max(200);
export const verifyEmailInput = z.object({ token: emailToken });
export const forgotPasswordInput = z.object({ email });
export const resetPasswordInput = z.object({ token: emailToken, newPassword });

export const otpRequestInput = z.object({ email });
export const otpRequestOutput = z.object({
  ok: z.literal(true),
  devCode: z
    .string()
    .optional()
    .meta({ description: 'The code itself: only outside production, when no email provider is configured' }),
});
export const otpVerifyInput = z.object({
  email,
  code: text.trim().regex(/^\d{6}$/, { error: 'must be 6 digits' }),
});

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

export const otpVerifyOutput = authResult.extend({ created: z.boolean() }).meta({ id: 'OtpAuthResult' });

export const reviewCodeOutput = z.object({ email: z.string(), code: z.string(), expiresAt: isoDateTime });

export type AuthResult = z.infer<typeof authResult>;
