/**
 * The format of `users.password_hash`: argon2id with the OWASP-recommended parameters
 * (19 MiB, 2 passes, 1 lane). Raising them here makes the server re-hash each stored
 * password at its owner's next successful login.
 */
import { hash, verify } from '@node-rs/argon2';

// Algorithm.Argon2id; the package's const enum cannot be imported under verbatimModuleSyntax.
const ARGON2ID = 2;

export const PASSWORD_HASH_OPTIONS = {
  algorithm: ARGON2ID,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, PASSWORD_HASH_OPTIONS);
}

/** Whether `password` matches, and whether the stored hash should be replaced by one with today's parameters. */
export async function verifyPassword(
  storedHash: string,
  password: string,
): Promise<{ valid: boolean; needsRehash: boolean }> {
  let valid: boolean;
  try {
    valid = await verify(storedHash, password);
  } catch {
    return { valid: false, needsRehash: false }; // not an argon2 hash at all
  }
  const o = PASSWORD_HASH_OPTIONS;
  const current = `$argon2id$v=19$m=${o.memoryCost},t=${o.timeCost},p=${o.parallelism}$`;
  return { valid, needsRehash: valid && !storedHash.startsWith(current) };
}
