import type { Role, User } from '@app/sdk';
import { useInfiniteQuery, useMutation, useMutationState, useQuery, useQueryClient } from '@tanstack/react-query';
import { useDeferredValue, useState } from 'react';
import { api } from '../api.ts';
import { ItemError, problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { Field, FormError, Page } from '../ui.tsx';

/** A change as the administrator asked for it: a role given or taken, or the account disabled or enabled. */
type Change = { role: Role; give: boolean } | { disabled: boolean };
type UserChange = Change & { userId: string };
const CHANGE_KEY = ['users.change'];

/**
 * Sends one change. A role goes as itself ("give editor", "take reviewer"), which the server
 * applies to the roles the user has when it arrives: never a whole list made earlier, which
 * would carry a change refused meanwhile, or undo another administrator's.
 */
async function sendChange(change: UserChange): Promise<void> {
  if ('role' in change) {
    const assignment = { id: change.userId, roleId: change.role.id };
    await (change.give ? api.rbac.assignRole.mutate(assignment) : api.rbac.unassignRole.mutate(assignment));
    return;
  }
  const { results } = await api.users.updateMany.mutate({
    items: [{ id: change.userId, disabled: change.disabled }],
  });
  const result = results[0];
  // Refused alone (the user deleted meanwhile): said as the server said it.
  if (!result?.ok) throw result?.error ? new ItemError(result.error) : new Error('Not saved');
}

/**
 * Users: search, disable or enable (which ends their sessions), and their roles (with
 * roles:assign). Changes go one at a time, in the order made; a row shows what its pending
 * changes ask for. The last refused change is said above the list, even after the changes
 * queued behind it went through, until the next change is made.
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
  /** The last change the server refused (the mutation's own error is only the newest change's). */
  const [refused, setRefused] = useState<Error | null>(null);
  const update = useMutation({
    mutationKey: CHANGE_KEY,
    // One at a time, in the order made: the next starts once the list shows the last one's result.
    scope: { id: 'users.change' },
    mutationFn: sendChange,
    onError: (error) => setRefused(error),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['users.list'] }),
  });
  const change = (userId: string) => (asked: Change) => {
    setRefused(null);
    update.mutate({ userId, ...asked });
  };
  /** The changes sent or waiting their turn, oldest first. */
  const pending = useMutationState({
    filters: { mutationKey: CHANGE_KEY, status: 'pending' },
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
      {refused && <FormError problem={problemOf(refused)} />}
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
                pending.filter((waiting) => waiting.userId === user.id),
              )}
              busy={pending.some((waiting) => waiting.userId === user.id)}
              roles={roles.data}
              canWrite={can('users:write')}
              onChange={change(user.id)}
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
  for (const change of changes) {
    if ('role' in change) {
      const others = result.roles.filter((role) => role !== change.role.name);
      result = { ...result, roles: change.give ? [...others, change.role.name] : others };
    } else {
      result = { ...result, disabled: change.disabled };
    }
  }
  return result;
}

function UserRow(props: {
  /** With its pending changes applied. */
  user: User;
  /** A change of the user is on its way. */
  busy: boolean;
  /** The roles to give or take (loaded only with roles:assign). */
  roles: Role[] | undefined;
  canWrite: boolean;
  onChange: (change: Change) => void;
}) {
  const { user, roles } = props;
  return (
    <tr aria-busy={props.busy || undefined}>
      <td>{user.email}</td>
      <td>{user.name ?? '—'}</td>
      <td>
        {roles ? (
          <fieldset className="inline">
            <legend className="visually-hidden">Roles of {user.email}</legend>
            {roles.map((role) => (
              <label key={role.id}>
                <input
                  type="checkbox"
                  checked={user.roles.includes(role.name)}
                  onChange={(event) => props.onChange({ role, give: event.target.checked })}
                />{' '}
                {role.name}
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
