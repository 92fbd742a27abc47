/**
 * The addresses an account signed in from lately. The per-account failure limit counts wrong
 * secrets from every address together, so strangers spread over enough addresses can use it
 * up; an address the account signed in from within KNOWN_ADDRESS_DAYS is not held back by it
 * (only by its own per-address limit), so the owner at home or at work still gets in
 * (OWASP's "device cookie" idea, keyed on the address: no client has anything to keep).
 *
 * Kept in the key-value store under a hash of the account and the address's limit key (an
 * IPv6 client's /64), never the address itself. A store that cannot answer, or that lost its
 * keys, knows no address: the account's limit then holds everyone, as it did before.
 */
import { createHash } from 'node:crypto';
import type { KeyValueStore } from '../infra/kv/index.ts';
import { addressKey } from '../infra/rate-limiter.ts';

export const KNOWN_ADDRESS_DAYS = 30;
const KNOWN_ADDRESS_TTL_MS = KNOWN_ADDRESS_DAYS * 86_400_000;

function knownAddressKey(account: string, ip: string): string {
  return `known-address:${createHash('sha256')
    .update(`${account}\n${addressKey(ip)}`)
    .digest('base64url')}`;
}

/** Whether `account` signed in from `ip`'s network within KNOWN_ADDRESS_DAYS; false when the store cannot tell. */
export async function isKnownAddress(kv: KeyValueStore, account: string, ip: string): Promise<boolean> {
  try {
    return (await kv.get(knownAddressKey(account, ip))) !== null;
  } catch {
    return false;
  }
}

/** Records a sign-in to `account` from `ip` for the next KNOWN_ADDRESS_DAYS; best effort (a failed write is only a shorter memory). */
export async function rememberAddress(kv: KeyValueStore, account: string, ip: string): Promise<void> {
  await kv.set(knownAddressKey(account, ip), '1', { ttlMs: KNOWN_ADDRESS_TTL_MS }).catch(() => undefined);
}
