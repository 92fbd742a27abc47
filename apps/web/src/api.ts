/**
 * The one API client of the app: the SDK in auth mode. Tokens live in localStorage (so a
 * reload keeps the session; another tab shares it); one refresh on a 401 is the SDK's.
 * When the session ends (signed out elsewhere, revoked, refresh refused) `onSessionEnded`
 * listeners hear it and the app goes to the sign-in page with a message; when another tab
 * changes the stored session, `onStoredSessionChange` listeners hear whose it now is.
 */
import {
  accountOf,
  type ClientOptions,
  createClient,
  type SessionEndReason,
  type TokenStore,
  type Tokens,
} from '@app/sdk';
import { HttpStatusError } from './errors.ts';

const STORAGE_KEY = 'app.tokens';

const localTokenStore = {
  get(): Tokens | null {
    try {
      const raw = localStorage.getItem(STORAGE_KEY);
      return raw ? (JSON.parse(raw) as Tokens) : null;
    } catch {
      return null;
    }
  },
  set(tokens: Tokens | null) {
    if (tokens) localStorage.setItem(STORAGE_KEY, JSON.stringify(tokens));
    else localStorage.removeItem(STORAGE_KEY);
  },
} satisfies TokenStore;

type Listener = (reason: SessionEndReason) => void;
const listeners = new Set<Listener>();

/** Called when the session can no longer continue; returns an unsubscribe function. */
export function onSessionEnded(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Where a tab says why the SDK ended the session (the other tabs read it: `onSessionEndedElsewhere`). */
const ENDED_KEY = 'app.session-ended';

/**
 * Calls `listener` with the reason each time another tab's session ended for a reason of the
 * server's (its tokens cleared by the SDK: revoked, or the refresh refused); returns an
 * unsubscribe function.
 */
export function onSessionEndedElsewhere(listener: Listener): () => void {
  return onOtherTabWrite(ENDED_KEY, (value) => {
    let reason: unknown;
    try {
      reason = (JSON.parse(value ?? 'null') as { reason?: unknown } | null)?.reason;
    } catch {}
    if (reason === 'session-revoked' || reason === 'refresh-failed') listener(reason);
  });
}

/**
 * Calls `listener` with the new value each time another tab writes `key` in localStorage (or
 * clears the whole storage: null); returns an unsubscribe function.
 */
function onOtherTabWrite(key: string, listener: (value: string | null) => void): () => void {
  const onStorage = (event: StorageEvent) => {
    if (event.storageArea !== localStorage || (event.key !== null && event.key !== key)) return;
    listener(event.newValue);
  };
  window.addEventListener('storage', onStorage);
  return () => window.removeEventListener('storage', onStorage);
}

/** The account the stored tokens sign in (undefined when there are none, or they cannot be read). */
export function storedAccountId(): string | undefined {
  const tokens = localTokenStore.get();
  return tokens ? accountOf(tokens) : undefined;
}

/** The session stored now: null when none, else the account it signs in. */
export type StoredSession = { accountId: string | undefined } | null;

/**
 * Calls `listener` with the stored session each time another tab changes it (a sign-in, a
 * sign-out, a refresh of the same account's tokens); returns an unsubscribe function.
 */
export function onStoredSessionChange(listener: (session: StoredSession) => void): () => void {
  return onOtherTabWrite(STORAGE_KEY, () => {
    const tokens = localTokenStore.get();
    listener(tokens && { accountId: accountOf(tokens) });
  });
}

/** The API's base URL: the page's own origin (the dev server proxies /trpc and /api; production serves both). */
export const apiUrl = import.meta.env.VITE_API_URL ?? window.location.origin;

const isJson = (response: Response) =>
  /^application\/([\w.-]+\+)?json\b/i.test(response.headers.get('content-type') ?? '');

/**
 * fetch, except that an error answer which is not the API's JSON (a proxy's 413 page, a
 * gateway's 502) fails with its status: the client would fail reading it as JSON, and say
 * nothing of the status.
 */
const fetchKeepingStatus: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  if (!response.ok && !isJson(response)) throw new HttpStatusError(response.status);
  return response;
};

/** The client's options: `uploadFile` takes the same, so an upload refreshes and ends sessions like any call. */
export const clientOptions: ClientOptions = {
  url: apiUrl,
  fetch: fetchKeepingStatus,
  headers: () => ({ 'accept-language': navigator.language }),
  auth: {
    tokenStore: localTokenStore,
    onSessionEnded: (reason) => {
      // Written anew each time (with the time), so the other tabs hear every ending.
      try {
        localStorage.setItem(ENDED_KEY, JSON.stringify({ reason, at: Date.now() }));
      } catch {}
      for (const listener of listeners) listener(reason);
    },
  },
};

export const api = createClient(clientOptions);

/** Whether tokens are stored (a session may exist; `users.me` says whether it is alive). */
export const hasTokens = () => localTokenStore.get() !== null;

/** Forget the tokens without calling the API (the session already ended). */
export const forgetTokens = () => localTokenStore.set(null);
