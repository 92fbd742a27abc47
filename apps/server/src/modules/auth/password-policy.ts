/**
 * The password rule that depends on the account, beyond the shape `newPassword` checks:
 * it must not be the email address. Sign-up refuses it as an input issue; changing and
 * resetting (where the email is known only to the service) as VALIDATION_FAILED.
 */
import { AppError } from '../../errors/index.ts';

/** `email` as stored: trimmed and lower-cased. */
export function isEmailAsPassword(password: string, email: string): boolean {
  return password.toLowerCase() === email;
}

export function assertNewPasswordAllowed(newPassword: string, email: string): void {
  if (isEmailAsPassword(newPassword, email)) {
    throw new AppError('VALIDATION_FAILED', 'The new password must not be the email address', {
      details: { field: 'newPassword' },
    });
  }
}
