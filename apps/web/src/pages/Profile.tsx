import { uploadFile } from '@app/sdk';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { api, clientOptions, forgetTokens } from '../api.ts';
import { problemOf } from '../errors.ts';
import { meKey, showChangedUser, useSession } from '../session.tsx';
import { Field, FormError, Notice, Page } from '../ui.tsx';

export function Profile() {
  return (
    <Page title="Profile">
      <NameForm />
      <Avatar />
      <Identities />
      <ChangePassword />
      <DeleteAccount />
    </Page>
  );
}

function NameForm() {
  const { user } = useSession();
  const queryClient = useQueryClient();
  const [name, setName] = useState(user?.name ?? '');
  const save = useMutation({
    mutationFn: () => api.users.updateMe.mutate({ name: name.trim() || null }),
    onSuccess: (next) => showChangedUser(queryClient, next),
  });
  const problem = save.error ? problemOf(save.error) : null;
  return (
    <form
      noValidate
      aria-labelledby="name-heading"
      onSubmit={(event) => {
        event.preventDefault();
        save.mutate();
      }}
    >
      <h2 id="name-heading">Your name</h2>
      <p>Signed in as {user?.email}</p>
      <FormError problem={problem} />
      {save.isSuccess && <Notice>Saved.</Notice>}
      <Field
        label="Name"
        autoComplete="name"
        value={name}
        onChange={(e) => setName(e.target.value)}
        error={problem?.fields.name}
      />
      <button type="submit" disabled={save.isPending}>
        Save name
      </button>
    </form>
  );
}

function Avatar() {
  const { user } = useSession();
  const queryClient = useQueryClient();
  const [progress, setProgress] = useState<number | null>(null);
  const upload = useMutation({
    mutationFn: async (file: File) => {
      setProgress(0);
      const stored = await uploadFile(clientOptions, file, {
        onProgress: ({ loaded, total }) => setProgress(total ? Math.round((loaded / total) * 100) : null),
      });
      return api.users.setAvatar.mutate({ fileId: stored.id });
    },
    onSuccess: (next) => showChangedUser(queryClient, next),
    onSettled: () => setProgress(null),
  });
  const remove = useMutation({
    mutationFn: () => api.users.removeAvatar.mutate(),
    onSuccess: (next) => showChangedUser(queryClient, next),
  });
  const failure = upload.error ?? remove.error;
  return (
    <section aria-labelledby="avatar-heading">
      <h2 id="avatar-heading">Picture</h2>
      {user?.avatarUrl ? (
        <img src={user.avatarUrl} alt="Your profile" width={96} height={96} className="avatar" />
      ) : (
        <p>No picture yet.</p>
      )}
      {failure && <FormError problem={problemOf(failure)} />}
      <div className="field">
        <label htmlFor="avatar-file">Upload a picture (PNG, JPEG, GIF, WebP or AVIF)</label>
        <input
          id="avatar-file"
          type="file"
          accept="image/png,image/jpeg,image/gif,image/webp,image/avif"
          disabled={upload.isPending}
          onChange={(event) => {
            const file = event.target.files?.[0];
            if (file) upload.mutate(file);
            event.target.value = '';
          }}
        />
      </div>
      {progress !== null && (
        <progress max={100} value={progress} aria-label="Upload progress">
          {progress}%
        </progress>
      )}
      {user?.avatarUrl && (
        <button type="button" onClick={() => remove.mutate()} disabled={remove.isPending}>
          Remove picture
        </button>
      )}
    </section>
  );
}

function Identities() {
  const queryClient = useQueryClient();
  const identities = useQuery({ queryKey: ['auth.identities'], queryFn: () => api.auth.identities.list.query() });
  const unlink = useMutation({
    mutationFn: (provider: Parameters<typeof api.auth.identities.unlink.mutate>[0]['provider']) =>
      api.auth.identities.unlink.mutate({ provider }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: ['auth.identities'] }),
  });
  // Hidden when none is linked; a failed read is said (it is not "none").
  const unread = identities.isError && !identities.data;
  if (!unread && !identities.data?.length) return null;
  return (
    <section aria-labelledby="identities-heading">
      <h2 id="identities-heading">Linked sign-in providers</h2>
      {unread && (
        <Notice>
          They could not be read: {problemOf(identities.error).message}{' '}
          <button type="button" onClick={() => void identities.refetch()}>
            Try again
          </button>
        </Notice>
      )}
      {unlink.error && <FormError problem={problemOf(unlink.error)} />}
      {identities.data && (
        <ul>
          {identities.data.map((identity) => (
            <li key={identity.provider}>
              {identity.provider} {identity.email && `(${identity.email})`}{' '}
              <button type="button" disabled={unlink.isPending} onClick={() => unlink.mutate(identity.provider)}>
                Unlink
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function ChangePassword() {
  const [form, setForm] = useState({ currentPassword: '', newPassword: '' });
  const change = useMutation({
    mutationFn: () => api.auth.changePassword.mutate(form),
    onSuccess: () => setForm({ currentPassword: '', newPassword: '' }),
  });
  const problem = change.error ? problemOf(change.error) : null;
  return (
    <form
      noValidate
      aria-labelledby="password-heading"
      onSubmit={(event) => {
        event.preventDefault();
        change.mutate();
      }}
    >
      <h2 id="password-heading">Change password</h2>
      <FormError problem={problem} />
      {change.isSuccess && <Notice>Password changed. Your other sessions have ended.</Notice>}
      <Field
        label="Current password"
        type="password"
        autoComplete="current-password"
        value={form.currentPassword}
        onChange={(e) => setForm({ ...form, currentPassword: e.target.value })}
        error={problem?.fields.currentPassword}
      />
      <Field
        label="New password"
        type="password"
        autoComplete="new-password"
        hint="At least 8 characters, with a letter and a digit."
        value={form.newPassword}
        onChange={(e) => setForm({ ...form, newPassword: e.target.value })}
        error={problem?.fields.newPassword}
      />
      <button type="submit" disabled={change.isPending}>
        Change password
      </button>
    </form>
  );
}

function DeleteAccount() {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [password, setPassword] = useState('');
  const remove = useMutation({
    mutationFn: () => api.users.deleteMe.mutate(password ? { password } : {}),
    onSuccess: () => {
      forgetTokens();
      queryClient.clear();
      queryClient.setQueryData(meKey, null);
      navigate('/sign-up', { replace: true });
    },
  });
  const problem = remove.error ? problemOf(remove.error) : null;
  return (
    <form
      noValidate
      aria-labelledby="delete-heading"
      onSubmit={(event) => {
        event.preventDefault();
        if (window.confirm('Delete your account and all its data? This cannot be undone.')) remove.mutate();
      }}
    >
      <h2 id="delete-heading">Delete account</h2>
      <FormError problem={problem} />
      <Field
        label="Password (accounts with a password)"
        type="password"
        autoComplete="current-password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        error={problem?.fields.password}
      />
      <button type="submit" className="danger" disabled={remove.isPending}>
        Delete my account
      </button>
    </form>
  );
}
