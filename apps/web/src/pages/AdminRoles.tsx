import type { Permission, Role } from '@app/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { FormError, Notice, Page } from '../ui.tsx';

const rolesQuery = { queryKey: ['rbac.roles.list'], queryFn: () => api.rbac.roles.list.query() };

/** Roles and the permissions each grants (admin holds all; built-in roles cannot be renamed). */
export function AdminRoles() {
  const roles = useQuery(rolesQuery);
  const permissions = useQuery({
    queryKey: ['rbac.permissions.list'],
    queryFn: () => api.rbac.permissions.list.query(),
  });
  return (
    <Page title="Roles">
      {roles.isError && <FormError problem={problemOf(roles.error)} />}
      {permissions.isError && <FormError problem={problemOf(permissions.error)} />}
      {roles.data && permissions.data
        ? roles.data.map((role) => <RoleForm key={role.id} role={role} all={permissions.data} />)
        : !roles.isError && !permissions.isError && <p aria-busy="true">Loading…</p>}
    </Page>
  );
}

/**
 * One role's permissions. The form keeps only the boxes ticked or cleared in it: the others
 * show the role as last read, and a save applies this form's changes to the role as it is
 * then (read again), so it never undoes what another administrator changed meanwhile.
 */
function RoleForm({ role, all }: { role: Role; all: { name: Permission; description: string }[] }) {
  const { can } = useSession();
  const queryClient = useQueryClient();
  const [changes, setChanges] = useState<ReadonlyMap<Permission, boolean>>(new Map());
  const isGranted = (permission: Permission) => changes.get(permission) ?? role.permissions.includes(permission);
  const save = useMutation({
    mutationFn: async (sent: ReadonlyMap<Permission, boolean>) => {
      const current = (await queryClient.fetchQuery({ ...rolesQuery, staleTime: 0 })).find((r) => r.id === role.id);
      const permissions = new Set(current?.permissions ?? role.permissions);
      for (const [permission, on] of sent) {
        if (on) permissions.add(permission);
        else permissions.delete(permission);
      }
      return api.rbac.roles.update.mutate({ id: role.id, permissions: [...permissions] });
    },
    onSuccess: (saved, sent) => {
      queryClient.setQueryData<Role[]>(rolesQuery.queryKey, (list) =>
        list?.map((listed) => (listed.id === saved.id ? saved : listed)),
      );
      // What was sent is saved; a box changed again meanwhile stays changed.
      setChanges((current) => new Map([...current].filter(([permission, on]) => sent.get(permission) !== on)));
    },
  });
  const locked = role.name === 'admin' || !can('roles:write');
  return (
    <form
      aria-labelledby={`role-${role.id}`}
      onSubmit={(event) => {
        event.preventDefault();
        save.mutate(changes);
      }}
    >
      <fieldset disabled={locked || save.isPending}>
        <legend id={`role-${role.id}`}>
          {role.name} {role.description && <small>— {role.description}</small>}
        </legend>
        {save.error && <FormError problem={problemOf(save.error)} />}
        {save.isSuccess && <Notice>Saved.</Notice>}
        {all.map((permission) => (
          <label key={permission.name} className="check">
            <input
              type="checkbox"
              checked={isGranted(permission.name)}
              onChange={(event) => {
                const { checked } = event.target;
                // A box put back as the role has it is no change: another administrator's stays.
                setChanges((current) => {
                  const next = new Map(current);
                  if (checked === role.permissions.includes(permission.name)) next.delete(permission.name);
                  else next.set(permission.name, checked);
                  return next;
                });
              }}
            />{' '}
            <code>{permission.name}</code> {permission.description}
          </label>
        ))}
        {!locked && <button type="submit">Save {role.name}</button>}
      </fieldset>
    </form>
  );
}
