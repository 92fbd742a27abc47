import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { Field, FormError, Notice, Page } from '../ui.tsx';

export function ForgotPassword() {
  const [email, setEmail] = useState('');
  const forgot = useMutation({ mutationFn: () => api.auth.forgotPassword.mutate({ email }) });
  const problem = forgot.error ? problemOf(forgot.error) : null;
  return (
    <Page title="Forgot your password?">
      {forgot.isSuccess ? (
        <Notice>If an account uses {email}, we sent it a link to choose a new password. It works for one hour.</Notice>
      ) : (
        <form
          noValidate
          onSubmit={(event) => {
            event.preventDefault();
            forgot.mutate();
          }}
        >
          <FormError problem={problem} />
          <Field
            label="Email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            error={problem?.fields.email}
          />
          <button type="submit" disabled={forgot.isPending}>
            Email me a link
          </button>
        </form>
      )}
      <p>
        <Link to="/sign-in">Back to sign in</Link>
      </p>
    </Page>
  );
}
