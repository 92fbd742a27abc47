import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { FormError, Page } from '../ui.tsx';

/** The Revoke buttons of the sessions' rows, in order. */
const revokeButtonsIn = (rows: HTMLElement | null) => [...(rows?.querySelectorAll('button') ?? [])];

export function Sessions() {
  const { signOut } = useSession();
  const queryClient = useQueryClient();
  const sessions = useQuery({ queryKey: ['auth.sessions'], queryFn: () => api.auth.sessions.query() });
  const revoke = useMutation({
    mutationFn: (id: string) => api.auth.revokeSession.mutate({ id }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['auth.sessions'] }),
  });
  const everywhere = useMutation({ mutationFn: () => signOut(true) });
  // A revoked session's row goes, its focused button with it: the focus moves to the nearest
  // row's button (or to "Sign out everywhere"), not back to the top of the page.
  const rows = useRef<HTMLTableSectionElement>(null);
  const everywhereButton = useRef<HTMLButtonElement>(null);
  const revoked = useRef<{ id: string; index: number } | null>(null);
  useEffect(() => {
    const gone = revoked.current;
    if (!gone || !sessions.data || sessions.data.some((session) => session.id === gone.id)) return;
    revoked.current = null;
    if (document.activeElement !== document.body) return; // taken elsewhere meanwhile
    const buttons = revokeButtonsIn(rows.current);
    (buttons[gone.index] ?? buttons[gone.index - 1] ?? everywhereButton.current)?.focus();
  }, [sessions.data]);
  return (
    <Page title="Sessions">
      <p>Where your account is signed in. Revoking a session signs that device out at once.</p>
      {revoke.error && <FormError problem={problemOf(revoke.error)} />}
      {everywhere.error && <FormError problem={problemOf(everywhere.error)} />}
      {sessions.isPending ? (
        <p aria-busy="true">Loading…</p>
      ) : sessions.isError ? (
        <FormError problem={problemOf(sessions.error)} />
      ) : (
        <table>
          <caption className="visually-hidden">Your active sessions</caption>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Address</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody ref={rows}>
            {sessions.data.map((session) => (
              <tr key={session.id} aria-current={session.current || undefined}>
                <td>
                  {session.userAgent ?? 'Unknown device'}
                  {session.current && <strong> (this device)</strong>}
                </td>
                <td>{session.ip ?? '—'}</td>
                <td>
                  <time dateTime={session.lastUsedAt}>{new Date(session.lastUsedAt).toLocaleString()}</time>
                </td>
                <td>
                  {!session.current && (
                    <button
                      type="button"
                      aria-label={`Revoke ${session.userAgent ?? 'Unknown device'}, last used ${new Date(session.lastUsedAt).toLocaleString()}`}
                      // Not `disabled`: a disabled button loses the focus, which a failed revoke would leave lost.
                      aria-disabled={(revoke.isPending && revoke.variables === session.id) || undefined}
                      onClick={(event) => {
                        if (revoke.isPending && revoke.variables === session.id) return;
                        revoked.current = {
                          id: session.id,
                          index: revokeButtonsIn(rows.current).indexOf(event.currentTarget),
                        };
                        revoke.mutate(session.id);
                      }}
                    >
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <button type="button" ref={everywhereButton} onClick={() => everywhere.mutate()} disabled={everywhere.isPending}>
        Sign out everywhere
      </button>
    </Page>
  );
}
