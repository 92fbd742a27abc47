import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { Field, FormError, Notice, Page } from '../ui.tsx';

/** The target of the reset email's link: `/reset-password?token=…`. */
export function ResetPassword() {
  const token = useSearchParams()[0].get('token') ?? '';
  const [newPassword, setNewPassword] = useState('');
  const { user, retry } = useSession();
  const reset = useMutation({
    mutationFn: () => api.auth.resetPassword.mutate({ token, newPassword }),
    // The reset ended every session of its account: if this tab was signed in to it, reading
    // who is signed in finds the session ended and signs the tab out (another account stays).
    onSuccess: () => {
      if (user) retry();
    },
  });
  const problem = reset.error ? problemOf(reset.error) : null;
  if (reset.isSuccess) {
    return (
      <Page title="Password changed">
        <Notice>Your password is changed and every session has ended.</Notice>
        <p>
          <Link to="/sign-in">Sign in with the new password</Link>
        </p>
      </Page>
    );
  }
  return (
    <Page title="Choose a new password">
      {!token && <p role="alert">This link has no token. Open the link from the email again.</p>}
      <form
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          reset.mutate();
        }}
      >
        <FormError problem={problem} />
        <Field
          label="New password"
          type="password"
          autoComplete="new-password"
          required
          hint="At least 8 characters, with a letter and a digit."
          value={newPassword}
          onChange={(e) => setNewPassword(e.target.value)}
          error={problem?.fields.newPassword}
        />
        <button type="submit" disabled={reset.isPending || !token}>
          Set password
        </button>
      </form>
      {problem?.appCode === 'INVALID_TOKEN' && (
        <p>
          <Link to="/forgot-password">Ask for a new link</Link>
        </p>
      )}
    </Page>
  );
}
