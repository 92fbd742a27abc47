import type { User } from '@app/sdk';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useDeferredValue, useState } from 'react';
import { api } from '../api.ts';
import { ItemError, problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { Field, FormError, Page } from '../ui.tsx';

/** Users: search, disable or enable (which ends their sessions), and their roles (with roles:assign). */
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
    mutationFn: async (item: { id: string; disabled?: boolean; roles?: string[] }) => {
      const { results } = await api.users.updateMany.mutate({ items: [item] });
      const result = results[0];
      // Refused alone (the user deleted meanwhile, a role it may not give): said as the server said it.
      if (!result?.ok) throw result?.error ? new ItemError(result.error) : new Error('Not saved');
      return result.user;
    },
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['users.list'] }),
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
              user={user}
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

function UserRow(props: {
  user: User;
  roleNames: string[] | undefined;
  canWrite: boolean;
  onChange: (change: { disabled?: boolean; roles?: string[] }) => void;
}) {
  const { user, roleNames } = props;
  return (
    <tr>
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
