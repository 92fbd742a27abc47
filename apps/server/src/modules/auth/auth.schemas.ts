import { z } from 'zod';
import { PROVIDER_IDS } from '../../infra/oauth/provider.ts';
import { email, id, isoDateTime, newPassword, password, text } from '../common-schemas.ts';
import { name, userOutput } from '../users/users.schemas.ts';
import { refusingEmailAsPassword } from './password-policy.ts';

export const registerInput = refusingEmailAsPassword(z.object({ email, password: newPassword, name: name.optional() }));

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

/** A sign-in that may have created the account (one-time codes, providers). */
export const signInResult = authResult
  .extend({ created: z.boolean().meta({ description: 'true when this sign-in created the account' }) })
  .meta({ id: 'SignInResult' });

export const oauthProvidersOutput = z.array(
  z.object({ id: z.enum(PROVIDER_IDS), name: z.string().meta({ description: 'What to show on the button' }) }),
);
export const oauthExchangeInput = z.object({
  code: text.min(1).max(200).meta({ description: 'The `code` the callback returned to your `redirectTo`' }),
  codeVerifier: text
    .min(43)
    .max(128)
    .optional()
    .meta({ description: 'The PKCE verifier of the `codeChallenge` given at the start (required when one was given)' }),
});
export const idTokenInput = z.object({
  provider: z.enum(['google', 'apple', 'oidc']),
  idToken: text.min(1).max(20_000),
  nonce: text
    .min(1)
    .max(500)
    .optional()
    .meta({ description: 'The nonce the app sent to the provider (Apple: the raw one, before hashing)' }),
});
export const identityOutput = z
  .object({
    provider: z.enum(PROVIDER_IDS),
    email: z.string().nullable().meta({ description: 'The email the provider gave at the last sign-in' }),
    createdAt: isoDateTime,
    lastUsedAt: isoDateTime,
  })
  .meta({ id: 'Identity' });
export const unlinkIdentityInput = z.object({ provider: z.enum(PROVIDER_IDS) });

export const reviewCodeOutput = z.object({ email: z.string(), code: z.string(), expiresAt: isoDateTime });

export type AuthResult = z.infer<typeof authResult>;
