import type { User } from '@app/sdk';
import { useInfiniteQuery, useMutation, useMutationState, useQuery, useQueryClient } from '@tanstack/react-query';
import { useDeferredValue, useState } from 'react';
import { api } from '../api.ts';
import { ItemError, problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { Field, FormError, Page } from '../ui.tsx';

type UserChange = { id: string; disabled?: boolean; roles?: string[] };
const UPDATE_KEY = ['users.updateMany'];

/**
 * Users: search, disable or enable (which ends their sessions), and their roles (with
 * roles:assign). A change sends the user's whole role list, which the server takes as is, so
 * changes go one at a time, each built on the ones before it: a row shows what its pending
 * changes ask for, and the next tick starts from that, not from the list as last read.
 */
export function AdminUsers() {
  const { can } = useSession();
  const [search, setSearch] = useState('');
  const deferred = useDeferredValue(search.trim());
  const queryClient = useQueryClient();
  const users = useInfiniteQuery({
    queryKey: ['users.list', deferred],
    queryFn: ({ pageParam }) =>
      api.users.list.query({
        limit: 20,
        ...(pageParam && { cursor: pageParam }),
        ...(deferred && { search: deferred }),
      }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const roles = useQuery({
    queryKey: ['rbac.roles.list'],
    queryFn: () => api.rbac.roles.list.query(),
    enabled: can('roles:read') && can('roles:assign'),
  });
  const update = useMutation({
    mutationKey: UPDATE_KEY,
    // One at a time, in the order made: the next starts once the list shows the last one's result.
    scope: { id: 'users.updateMany' },
    mutationFn: async (item: UserChange) => {
      const { results } = await api.users.updateMany.mutate({ items: [item] });
      const result = results[0];
      // Refused alone (the user deleted meanwhile, a role it may not give): said as the server said it.
      if (!result?.ok) throw result?.error ? new ItemError(result.error) : new Error('Not saved');
      return result.user;
    },
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['users.list'] }),
  });
  /** The changes sent or waiting their turn, oldest first. */
  const pending = useMutationState({
    filters: { mutationKey: UPDATE_KEY, status: 'pending' },
    select: (mutation) => mutation.state.variables as UserChange,
  });
  const items = users.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <Page title="Users">
      <search>
        <Field
          label="Search by email or name"
          type="search"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
      </search>
      {update.error && <FormError problem={problemOf(update.error)} />}
      {users.isError && <FormError problem={problemOf(users.error)} />}
      <table>
        <caption className="visually-hidden">Users</caption>
        <thead>
          <tr>
            <th scope="col">Email</th>
            <th scope="col">Name</th>
            <th scope="col">Roles</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {items.map((user) => (
            <UserRow
              key={user.id}
              user={withChanges(
                user,
                pending.filter((change) => change.id === user.id),
              )}
              busy={pending.some((change) => change.id === user.id)}
              roleNames={roles.data?.map((role) => role.name)}
              canWrite={can('users:write')}
              onChange={(change) => update.mutate({ id: user.id, ...change })}
            />
          ))}
        </tbody>
      </table>
      {users.hasNextPage && (
        <button type="button" onClick={() => users.fetchNextPage()}>
          Show more
        </button>
      )}
    </Page>
  );
}

/** The user as its pending changes will leave it. */
function withChanges(user: User, changes: UserChange[]): User {
  let result = user;
  for (const { roles, disabled } of changes) {
    if (roles) result = { ...result, roles };
    if (disabled !== undefined) result = { ...result, disabled };
  }
  return result;
}

function UserRow(props: {
  /** With its pending changes applied. */
  user: User;
  /** A change of the user is on its way. */
  busy: boolean;
  roleNames: string[] | undefined;
  canWrite: boolean;
  onChange: (change: { disabled?: boolean; roles?: string[] }) => void;
}) {
  const { user, roleNames } = props;
  return (
    <tr aria-busy={props.busy || undefined}>
      <td>{user.email}</td>
      <td>{user.name ?? '—'}</td>
      <td>
        {roleNames && props.canWrite ? (
          <fieldset className="inline">
            <legend className="visually-hidden">Roles of {user.email}</legend>
            {roleNames.map((role) => (
              <label key={role}>
                <input
                  type="checkbox"
                  checked={user.roles.includes(role)}
                  onChange={(event) =>
                    props.onChange({
                      roles: event.target.checked ? [...user.roles, role] : user.roles.filter((r) => r !== role),
                    })
                  }
                />{' '}
                {role}
              </label>
            ))}
          </fieldset>
        ) : (
          user.roles.join(', ')
        )}
      </td>
      <td>
        {user.disabled ? 'Disabled' : 'Active'}{' '}
        {props.canWrite && (
          <button
            type="button"
            onClick={() => props.onChange({ disabled: !user.disabled })}
            aria-label={`${user.disabled ? 'Enable' : 'Disable'} ${user.email}`}
          >
            {user.disabled ? 'Enable' : 'Disable'}
          </button>
        )}
      </td>
    </tr>
  );
}
