/** Where services hash and check passwords; the hash format lives in @app/db, which the seeds share. */
import { hashPassword, verifyPassword } from '@app/db';

export { hashPassword };

let dummyHash: Promise<string> | undefined;

/**
 * Verifies `password` against `storedHash`, or against a dummy hash when there is none
 * (unknown email, account without a password), so both cases cost the same time and an
 * attacker cannot tell which emails have accounts.
 */
export async function checkPassword(
  storedHash: string | null | undefined,
  password: string,
): Promise<{ valid: boolean; needsRehash: boolean }> {
  dummyHash ??= hashPassword('dummy-password-for-constant-time-checks');
  const result = await verifyPassword(storedHash ?? (await dummyHash), password);
  return storedHash ? result : { valid: false, needsRehash: false };
}
