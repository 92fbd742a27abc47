/**
 * Auth-aware mode: the client keeps the tokens in a pluggable store, sends the bearer
 * token, refreshes once when a call answers 401 (concurrent calls wait for that one
 * refresh), retries the call once, and reports a session that cannot be refreshed.
 */

import { createTRPCClient, httpLink, TRPCClientError, type TRPCLink } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import { observable } from '@trpc/server/observable';
import type { AppRouter } from './router.gen.ts';

export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

/** Where the client keeps the tokens: memory, localStorage, secure storage on mobile... */
export interface TokenStore {
  get(): Tokens | null | Promise<Tokens | null>;
  set(tokens: Tokens | null): void | Promise<void>;
}

export function memoryTokenStore(initial: Tokens | null = null): TokenStore {
  let tokens = initial;
  return {
    get: () => tokens,
    set: (next) => {
      tokens = next;
    },
  };
}

export type SessionEndReason = 'refresh-failed' | 'session-revoked';

/** A refresh's outcome: `unreachable` is why it could not be made while the session stands. */
export type Refreshed =
  | {
      refreshed: true;
      /** When this refresh stored new tokens: the refresh token it traded, and the one it stored. */
      renewed?: { from: string; into: string };
    }
  | { refreshed: false; unreachable?: unknown };

export interface AuthOptions {
  tokenStore: TokenStore;
  /** Called once when the session cannot continue (the store has been cleared). */
  onSessionEnded?: (reason: SessionEndReason) => void;
  /**
   * How long a refresh may take (15 s by default), in two tries of half as long: a try whose
   * answer was lost is sent again at once, within the server's grace window
   * (REFRESH_REUSE_GRACE_SECONDS, 10 s: keep this under twice that). Past it, the calls that
   * wait for it fail with the timeout and the session stands.
   */
  refreshTimeoutMs?: number;
}

/** Procedures that sign in: their result (an AuthResult) is stored. */
const SIGN_IN_PATHS = new Set([
  'auth.register',
  'auth.login',
  'auth.refresh',
  'auth.otp.verify',
  'auth.oauth.exchange',
  'auth.oauth.signInWithIdToken',
]);
/** Procedures that end the session on success: the store is cleared. */
const SIGN_OUT_PATHS = new Set(['auth.logout', 'auth.logoutAll', 'users.deleteMe', 'users.archiveMe']);
/**
 * The 401s a refresh can cure: an access token expired, missing or unreadable. Others (a
 * wrong current password, say) are the answer: refreshing and sending the call again would
 * only count a second failure.
 */
const REFRESHABLE = new Set(['TOKEN_EXPIRED', 'UNAUTHORIZED', undefined]);

function tokensOf(data: unknown): Tokens | undefined {
  const value = data as Partial<Tokens> | undefined;
  return typeof value?.accessToken === 'string' && typeof value.refreshToken === 'string'
    ? { accessToken: value.accessToken, refreshToken: value.refreshToken }
    : undefined;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Base64url to a string of one character a byte (no `atob`: React Native before 0.74 lacks it). */
function base64UrlBytes(text: string): string {
  let bytes = '';
  let value = 0;
  let bits = 0;
  for (const char of text) {
    const digit = BASE64URL.indexOf(char);
    if (digit === -1) throw new SyntaxError('not base64url');
    value = ((value << 6) | digit) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += String.fromCharCode((value >> bits) & 0xff);
    }
  }
  return bytes;
}

/** What an access token says of its session: the account (`sub`) and the session (`sid`). */
interface SessionClaims {
  sub?: unknown;
  sid?: unknown;
}

/** An access token's claims, read without checking the token (the server does); none when unreadable. */
function claimsOf(tokens: Tokens): SessionClaims {
  try {
    const claims = JSON.parse(base64UrlBytes(tokens.accessToken.split('.')[1] ?? '')) as unknown;
    return typeof claims === 'object' && claims !== null ? claims : {};
  } catch {
    return {};
  }
}

/**
 * The account tokens sign in (the access token's `sub`, its user id), read without checking
 * the token (the server checks it at every call), to tell one account's tokens from
 * another's; undefined when it cannot be read.
 */
export function accountOf(tokens: Tokens): string | undefined {
  const { sub } = claimsOf(tokens);
  return typeof sub === 'string' ? sub : undefined;
}

/**
 * Whether `current` and `sent` carry the same `claim` (`sub`: one account; `sid`: one session,
 * however often refreshed); false when it cannot be read, unless they are the same tokens.
 */
function sameClaim(claim: keyof SessionClaims, current: Tokens | null, sent: Tokens): boolean {
  if (!current) return false;
  if (current.refreshToken === sent.refreshToken) return true;
  const value = claimsOf(current)[claim];
  return typeof value === 'string' && value === claimsOf(sent)[claim];
}
const sameAccount = (current: Tokens | null, sent: Tokens) => sameClaim('sub', current, sent);
const sameSession = (current: Tokens | null, sent: Tokens) => sameClaim('sid', current, sent);

function errorCode(error: unknown): { status?: number; appCode?: string } {
  const data = (error as TRPCClientError<AnyTRPCRouter>).data as { httpStatus?: number; appCode?: string } | undefined;
  return { status: data?.httpStatus, appCode: data?.appCode };
}

type SessionOptions = AuthOptions & {
  trpcUrl: string;
  fetch?: typeof globalThis.fetch;
  /** The client's own headers (no `Authorization`), sent with the refresh too. */
  headers?: () => Promise<Record<string, string>>;
};

/** The refresh, and the end of the session, in flight for each token store. */
const refreshes = new WeakMap<TokenStore, Promise<Refreshed>>();
const endings = new WeakMap<TokenStore, Promise<void>>();

/**
 * Refreshes the stored tokens, one refresh at a time (every caller that hits a 401
 * meanwhile waits for the same one); a refused refresh ends the session. The refresh call
 * goes through a plain link of its own.
 */
export function sessionKeeper(options: SessionOptions) {
  const refresher = createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: options.trpcUrl,
        ...(options.headers && { headers: options.headers }),
        ...(options.fetch && { fetch: options.fetch }),
      }),
    ],
  });
  const store = options.tokenStore;

  /**
   * Clears the store and tells `onSessionEnded`, once for the session however many calls meet
   * its end. With `session` (the tokens a call was sent with), only while the store still holds
   * that session: a sign-in made meanwhile is not ended by an answer about the one before.
   */
  const endSession = async (reason: SessionEndReason, session?: Tokens | null) => {
    const ending = endings.get(store);
    if (ending) return ending;
    const ended = (async () => {
      const current = await store.get();
      if (!current || (session && current.refreshToken !== session.refreshToken)) return;
      await store.set(null);
      options.onSessionEnded?.(reason);
    })().finally(() => endings.delete(store));
    endings.set(store, ended);
    return ended;
  };
  /** Whether the store still holds the session `tokens` came from (no sign-in or sign-out since). */
  const stillHolds = async (tokens: Tokens) => (await store.get())?.refreshToken === tokens.refreshToken;

  /**
   * The refresh call, in two tries of half of `refreshTimeoutMs` each. A try whose answer did
   * not come (the network, no answer in time) may still have rotated the tokens on the
   * server: the second, sent at once with the same token, is within the server's grace window
   * (REFRESH_REUSE_GRACE_SECONDS, 10 s) and gets the same new tokens back, where a later one
   * would be taken for reuse and end the session.
   */
  const refreshAnswer = async (refreshToken: string) => {
    const tryMs = Math.max(1, Math.floor((options.refreshTimeoutMs ?? 15_000) / 2));
    try {
      return await withDeadline(tryMs, (signal) => refresher.auth.refresh.mutate({ refreshToken }, { signal }));
    } catch (error) {
      if (errorCode(error).status !== undefined) throw error;
      return withDeadline(tryMs, (signal) => refresher.auth.refresh.mutate({ refreshToken }, { signal }));
    }
  };

  /**
   * One refresh at a time per token store (the client's calls and its uploads alike): every
   * caller that hits a 401 meanwhile waits for the same one. A sign-in or a sign-out while it
   * runs wins: its answer then neither overwrites nor clears the store. Answers whether the
   * tokens were refreshed; when not, `unreachable` is why, if the session still stands (the
   * network, a 503, a 429, no answer within `refreshTimeoutMs`): the call then fails with that
   * reason, not with its own 401.
   *
   * `sentWith` is the session the refused call was sent with: when the store already holds
   * newer tokens (another tab or process refreshed meanwhile, sharing the store), the call
   * goes again with those, and no refresh is made.
   */
  const refreshOnce = (sentWith?: Tokens | null): Promise<Refreshed> => {
    const running = refreshes.get(store);
    if (running) return running;
    const refreshing = (async (): Promise<Refreshed> => {
      const tokens = await store.get();
      if (!tokens) return { refreshed: false };
      if (sentWith && tokens.refreshToken !== sentWith.refreshToken) return { refreshed: true };
      try {
        const result = await refreshAnswer(tokens.refreshToken);
        if (!(await stillHolds(tokens))) return { refreshed: true };
        await store.set({ accessToken: result.accessToken, refreshToken: result.refreshToken });
        return { refreshed: true, renewed: { from: tokens.refreshToken, into: result.refreshToken } };
      } catch (error) {
        const { status, appCode } = errorCode(error);
        // Only a definite "no" from the server ends the session; a network error does not.
        if (status === 401 || status === 403) {
          // Another tab sharing the store rotated the tokens first (the server refuses a
          // token read before two rotations): the call goes again with the store's.
          const current = await store.get();
          if (current && current.refreshToken !== tokens.refreshToken) return { refreshed: true };
          await endSession(appCode === 'SESSION_REVOKED' ? 'session-revoked' : 'refresh-failed', tokens);
          return { refreshed: false };
        }
        return { refreshed: false, unreachable: error };
      }
    })().finally(() => refreshes.delete(store));
    refreshes.set(store, refreshing);
    return refreshing;
  };

  /**
   * `refreshOnce`, for a call sent with `sentWith`: it goes again only as the account it was
   * sent for. Tokens of another account in the store (signed in meanwhile, in another tab or
   * on this client) are not the call's to use: sent with them, a write would land in that
   * account. It fails with its own 401 instead.
   */
  const refreshFor = async (sentWith?: Tokens | null): Promise<Refreshed> => {
    const refresh = await refreshOnce(sentWith);
    if (!refresh.refreshed || !sentWith) return refresh;
    const current = await store.get();
    // The store holds what this refresh made of the call's own session (whatever its access
    // token said), or tokens of the call's account.
    const renewedItsSession =
      refresh.renewed?.from === sentWith.refreshToken && current?.refreshToken === refresh.renewed.into;
    return renewedItsSession || sameAccount(current, sentWith) ? refresh : { refreshed: false };
  };
  return { refreshOnce: refreshFor, endSession };
}

/**
 * `call` given a signal that aborts after `ms` (a timer, not `AbortSignal.timeout`, which
 * React Native and older Safari lack).
 */
async function withDeadline<T>(ms: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(Object.assign(new Error(`The refresh got no answer within ${ms} ms`), { name: 'TimeoutError' })),
    ms,
  );
  try {
    return await call(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

export const ABORTED = Symbol('aborted');

/** `promise`'s value, or ABORTED as soon as `signal` aborts. */
export function unlessAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | null | undefined,
): Promise<T | typeof ABORTED> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The link that stores tokens and refreshes them (`trpcUrl` is the tRPC endpoint). */
export function authLink(options: SessionOptions): TRPCLink<AppRouter> {
  const { refreshOnce, endSession } = sessionKeeper(options);
  /**
   * Whether a sign-out sent with `sent` ended the session the store holds: the one it was
   * sent for (`auth.logout`), or any of that account's (the others). A sign-in made while it
   * was on its way (another tab, another account) is not cleared by its answer.
   */
  const endedBy = async (path: string, sent: Tokens | null) => {
    const current = await options.tokenStore.get();
    if (!sent) return false;
    return path === 'auth.logout' ? sameSession(current, sent) : sameAccount(current, sent);
  };

  return () =>
    ({ op, next }) =>
      observable((observer) => {
        let retried = false;
        let closed = false;
        let subscription: { unsubscribe(): void } | undefined;
        // Storing tokens may be async: the result, and completion, wait for it, so the
        // caller's next call already sends the new token.
        let stored: Promise<void> = Promise.resolve();
        const attempt = () => {
          // The session the call goes out for (its token is read from the store as it is sent).
          const sentFor = Promise.resolve()
            .then(() => options.tokenStore.get())
            .catch(() => null);
          subscription = next(op).subscribe({
            next: (value) => {
              stored = (async () => {
                const data = 'data' in value.result ? value.result.data : undefined;
                const tokens = SIGN_IN_PATHS.has(op.path) ? tokensOf(data) : undefined;
                if (tokens) await options.tokenStore.set(tokens);
                if (SIGN_OUT_PATHS.has(op.path) && (await endedBy(op.path, await sentFor))) {
                  await options.tokenStore.set(null);
                }
                observer.next(value);
              })();
            },
            error: async (error) => {
              try {
                const { status, appCode } = errorCode(error);
                if (status === 401 && appCode === 'SESSION_REVOKED') {
                  await endSession('session-revoked', await sentFor);
                } else if (status === 401 && REFRESHABLE.has(appCode) && !retried && !SIGN_IN_PATHS.has(op.path)) {
                  // The caller may abort while the call waits for the refresh (it had no request out to abort).
                  const refresh = await unlessAborted(refreshOnce(await sentFor), op.signal);
                  // Torn down (unsubscribed) meanwhile: nothing is sent again.
                  if (closed) return;
                  if (refresh === ABORTED) {
                    observer.error(TRPCClientError.from(op.signal?.reason as Error));
                    return;
                  }
                  if (refresh.refreshed) {
                    retried = true;
                    attempt();
                    return;
                  }
                  if (refresh.unreachable !== undefined) {
                    observer.error(TRPCClientError.from(refresh.unreachable as Error));
                    return;
                  }
                }
                observer.error(error);
              } catch (storeError) {
                // The token store failed (storage full, the keychain locked): the call fails with it.
                observer.error(TRPCClientError.from(storeError as Error));
              }
            },
            complete: () => {
              // A store that failed to save the result fails the call, instead of leaving it unsettled.
              stored.then(
                () => observer.complete(),
                (storeError: unknown) => observer.error(TRPCClientError.from(storeError as Error)),
              );
            },
          });
        };
        attempt();
        return () => {
          closed = true;
          subscription?.unsubscribe();
        };
      });
}
