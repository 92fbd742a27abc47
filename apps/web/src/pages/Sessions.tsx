import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { FormError, Page } from '../ui.tsx';

export function Sessions() {
  const { signOut } = useSession();
  const queryClient = useQueryClient();
  const sessions = useQuery({ queryKey: ['auth.sessions'], queryFn: () => api.auth.sessions.query() });
  const revoke = useMutation({
    mutationFn: (id: string) => api.auth.revokeSession.mutate({ id }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['auth.sessions'] }),
  });
  const everywhere = useMutation({ mutationFn: () => signOut(true) });
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
          <tbody>
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
                    <button type="button" onClick={() => revoke.mutate(session.id)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <button type="button" onClick={() => everywhere.mutate()} disabled={everywhere.isPending}>
        Sign out everywhere
      </button>
    </Page>
  );
}
