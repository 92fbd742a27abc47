/**
 * Who is signed in: `users.me`, cached by TanStack Query. Sign-in pages call `signedIn` with
 * the AuthResult; a session that ends anywhere (another tab signed out, revoked, refused
 * refresh) clears it and sends the person to the sign-in page with a message (a page made
 * for signed-out visitors stays, its message kept for the sign-in page). Another tab
 * signing into another account (the tabs share the tokens) makes this one that account too,
 * with nothing kept of the last one: a tab never shows one account while acting as another.
 */
import type { Permission, User } from '@app/sdk';
import { type QueryClient, useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { useNavigate } from 'react-router';
import {
  api,
  forgetTokens,
  hasTokens,
  onSessionEnded,
  onSessionEndedElsewhere,
  onStoredSessionChange,
  storedAccountId,
} from './api.ts';
import { type Problem, problemOf } from './errors.ts';

export const meKey = ['users.me'] as const;

/**
 * The signed-in user as a change of it answered (a new name, a picture). Kept only while the
 * stored tokens still sign that account in: a change sent before another tab signed this
 * browser into another account answers after the switch, and would show the last account again.
 */
export function showChangedUser(queryClient: QueryClient, changed: User): void {
  if (storedAccountId() === changed.id) queryClient.setQueryData(meKey, changed);
}

interface Session {
  user: User | null;
  loading: boolean;
  /** Why the last session ended, to show on the sign-in page (cleared by the next sign-in). */
  endedMessage: string | null;
  /**
   * Why the signed-in account could not be read while the session stands (the network, a
   * 503, a 429): the person is still signed in, and `retry` asks again.
   */
  unavailable: Problem | null;
  retry(): void;
  signedIn(user: User): void;
  /** Signs this browser out (always), or every session of the account (rejects, changing nothing, when that fails). */
  signOut(everywhere?: boolean): Promise<void>;
  can(permission: Permission): boolean;
}

const SessionContext = createContext<Session | null>(null);

const ENDED_MESSAGES = {
  'session-revoked': 'Your session has ended (signed out elsewhere, or revoked). Please sign in again.',
  'refresh-failed': 'Your session has expired. Please sign in again.',
  'other-tab': 'You signed out in another tab.',
} as const;

/** How long signing out here waits for the server's answer before forgetting the tokens anyway. */
const SIGN_OUT_WAIT_MS = 5_000;

/**
 * Tells the server this browser signs out, waiting SIGN_OUT_WAIT_MS at most, whatever the
 * answer: the call's signal aborts it, and a timer ends the wait whatever the link does with
 * the signal (a batched call is aborted only with every call of its batch).
 */
async function signOutHere(): Promise<void> {
  const signal = AbortSignal.timeout(SIGN_OUT_WAIT_MS);
  const given = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  await Promise.race([api.auth.logout.mutate(undefined, { signal }).catch(() => {}), given]);
}
/** The pages that serve a signed-out visitor (routes.tsx): an ended session does not leave them. */
const SIGNED_OUT_PAGES = new Set(['/sign-in', '/sign-up', '/forgot-password', '/reset-password', '/oauth/return']);

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [endedMessage, setEndedMessage] = useState<string | null>(null);
  const me = useQuery({
    queryKey: meKey,
    queryFn: () => (hasTokens() ? api.users.me.query() : null),
    staleTime: 60_000,
    retry: false,
  });

  const end = useCallback(
    (reason: keyof typeof ENDED_MESSAGES) => {
      setEndedMessage(ENDED_MESSAGES[reason]);
      queryClient.clear();
      queryClient.setQueryData(meKey, null);
      // A page made for signed-out visitors stays (a reset that ended this session says so and
      // links to sign-in); any other goes to sign-in, and signing in again comes back to it (an
      // email's link, a deep link), as when RequireUser sends a signed-out visitor to sign in.
      const { pathname, search, hash } = window.location;
      if (SIGNED_OUT_PAGES.has(pathname)) return;
      navigate('/sign-in', { state: { from: `${pathname}${search}${hash}` } });
    },
    [queryClient, navigate],
  );

  /** Another account signs this browser in now: the last one's data and queued changes go, its pages load again. */
  const switchAccount = useCallback(() => {
    queryClient.getMutationCache().clear();
    void queryClient.resetQueries();
  }, [queryClient]);

  useEffect(() => onSessionEnded((reason) => end(reason)), [end]);
  // The session ended in another tab for a reason of the server's (revoked, expired): this
  // tab, signed out as that tab cleared the tokens, says that reason rather than "another tab".
  useEffect(
    () =>
      onSessionEndedElsewhere((reason) =>
        setEndedMessage((shown) => (shown === ENDED_MESSAGES['other-tab'] ? ENDED_MESSAGES[reason] : shown)),
      ),
    [],
  );
  useEffect(
    () =>
      onStoredSessionChange((stored) => {
        const user = queryClient.getQueryData<User | null>(meKey);
        // No account shown here, or the same one (its tokens refreshed, or signed in again): nothing to change.
        if (!user || stored?.accountId === user.id) return;
        if (stored === null) end('other-tab');
        else switchAccount();
      }),
    [end, switchAccount, queryClient],
  );

  const session = useMemo<Session>(() => {
    const user = me.data ?? null;
    // A 401 or 403 means the tokens no longer sign anyone in (the sign-in page); anything else
    // (the network, a 503, a 429) leaves the person signed in, to try again.
    const status = (me.error as { data?: { httpStatus?: number } } | null)?.data?.httpStatus;
    const signedOut = status === 401 || status === 403;
    return {
      user,
      loading: me.isPending,
      endedMessage,
      unavailable: me.isError && hasTokens() && !signedOut ? problemOf(me.error) : null,
      retry: () => void me.refetch(),
      signedIn(next) {
        setEndedMessage(null);
        queryClient.setQueryData(meKey, next);
      },
      async signOut(everywhere = false) {
        // Everywhere: a failure (the server away) ends no session, this one included, and is
        // the caller's to show. Here only: this browser forgets the tokens whatever the answer,
        // and waits for it SIGN_OUT_WAIT_MS at most (a server that never answers keeps no one
        // signed in on a shared computer).
        const account = storedAccountId();
        if (everywhere) await api.auth.logoutAll.mutate();
        else await signOutHere();
        // Another account signed in meanwhile (another tab): it stays, and this tab shows it.
        const stored = storedAccountId();
        if (stored !== undefined && stored !== account) return;
        forgetTokens();
        queryClient.clear();
        queryClient.setQueryData(meKey, null);
        navigate('/sign-in');
      },
      can: (permission) => user?.permissions.includes(permission) ?? false,
    };
  }, [me.data, me.isPending, me.isError, me.error, me.refetch, endedMessage, queryClient, navigate]);

  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionProvider');
  return session;
}
