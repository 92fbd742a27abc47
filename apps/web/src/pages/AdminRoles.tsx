import type { Permission, Role } from '@app/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { FormError, Notice, Page } from '../ui.tsx';

/** Roles and the permissions each grants (admin holds all; built-in roles cannot be renamed). */
export function AdminRoles() {
  const roles = useQuery({ queryKey: ['rbac.roles.list'], queryFn: () => api.rbac.roles.list.query() });
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

function RoleForm({ role, all }: { role: Role; all: { name: Permission; description: string }[] }) {
  const { can } = useSession();
  const queryClient = useQueryClient();
  const [granted, setGranted] = useState(new Set<Permission>(role.permissions));
  const save = useMutation({
    mutationFn: () => api.rbac.roles.update.mutate({ id: role.id, permissions: [...granted] }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['rbac.roles.list'] }),
  });
  const locked = role.name === 'admin' || !can('roles:write');
  return (
    <form
      aria-labelledby={`role-${role.id}`}
      onSubmit={(event) => {
        event.preventDefault();
        save.mutate();
      }}
    >
      <fieldset disabled={locked}>
        <legend id={`role-${role.id}`}>
          {role.name} {role.description && <small>— {role.description}</small>}
        </legend>
        {save.error && <FormError problem={problemOf(save.error)} />}
        {save.isSuccess && <Notice>Saved.</Notice>}
        {all.map((permission) => (
          <label key={permission.name} className="check">
            <input
              type="checkbox"
              checked={granted.has(permission.name)}
              onChange={(event) => {
                const next = new Set(granted);
                if (event.target.checked) next.add(permission.name);
                else next.delete(permission.name);
                setGranted(next);
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
