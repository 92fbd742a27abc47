/**
 * Where one-time codes are kept: the key-value store, one live code per email (its keyed
 * hash and times), until it expires. The sign-in checks them; the email job sends a code
 * only while it is still the live one.
 */
import type { Services } from '../../services.ts';

type Deps = Pick<Services, 'kv' | 'clock'>;

export interface StoredCode {
  hash: string;
  issuedAt: number;
  expiresAt: number;
}

export const codeKey = (email: string) => `otp:${email}`;

export async function readCode(deps: Deps, key: string): Promise<StoredCode | undefined> {
  const raw = await deps.kv.get(key);
  if (!raw) return undefined;
  const stored = JSON.parse(raw) as StoredCode;
  return stored.expiresAt > deps.clock.now() ? stored : undefined;
}

export async function writeCode(deps: Deps, key: string, stored: StoredCode): Promise<void> {
  await deps.kv.set(key, JSON.stringify(stored), { ttlMs: Math.max(1, stored.expiresAt - deps.clock.now()) });
}

/** Stores `stored` again unless another code took its place meanwhile (atomically). */
export async function restoreCode(deps: Deps, key: string, stored: StoredCode): Promise<void> {
  const ttlMs = stored.expiresAt - deps.clock.now();
  if (ttlMs > 0) await deps.kv.setIfAbsent(key, JSON.stringify(stored), { ttlMs });
}
