/**
 * The password rule that depends on the account, beyond the shape `newPassword` checks:
 * it must not be the email address. Sign-up and an admin's batch refuse it as an input issue;
 * changing and resetting (where the email is known only to the service) as VALIDATION_FAILED.
 */
import type { z } from 'zod';
import { AppError } from '../../errors/index.ts';

/** `email` as stored: trimmed and lower-cased. */
export function isEmailAsPassword(password: string, email: string): boolean {
  return password.toLowerCase() === email;
}

/** Refuses, as an issue of `password`, an input (sign-up, a batch's new user) whose password (when given) is its email. */
export function refusingEmailAsPassword<S extends z.ZodType<{ email: string; password?: string | undefined }>>(
  schema: S,
): S {
  return schema.refine((input) => input.password === undefined || !isEmailAsPassword(input.password, input.email), {
    path: ['password'],
    error: 'must not be the email address',
  });
}

export function assertNewPasswordAllowed(newPassword: string, email: string): void {
  if (isEmailAsPassword(newPassword, email)) {
    throw new AppError('VALIDATION_FAILED', 'The new password must not be the email address', {
      details: { field: 'newPassword' },
    });
  }
}
