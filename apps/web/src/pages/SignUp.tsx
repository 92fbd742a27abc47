import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { Field, FormError, Page } from '../ui.tsx';

export function SignUp() {
  const { signedIn } = useSession();
  const navigate = useNavigate();
  const [form, setForm] = useState({ name: '', email: '', password: '' });
  const register = useMutation({
    mutationFn: () =>
      api.auth.register.mutate({ email: form.email, password: form.password, ...(form.name && { name: form.name }) }),
    onSuccess: (result) => {
      signedIn(result.user);
      navigate('/notes', { replace: true, state: { welcome: true } });
    },
  });
  const problem = register.error ? problemOf(register.error) : null;
  const set = (key: keyof typeof form) => (event: { target: { value: string } }) =>
    setForm({ ...form, [key]: event.target.value });
  return (
    <Page title="Create an account">
      <form
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          register.mutate();
        }}
      >
        <FormError problem={problem} />
        <Field
          label="Name (optional)"
          autoComplete="name"
          value={form.name}
          onChange={set('name')}
          error={problem?.fields.name}
        />
        <Field
          label="Email"
          type="email"
          autoComplete="email"
          required
          value={form.email}
          onChange={set('email')}
          error={problem?.fields.email}
        />
        <Field
          label="Password"
          type="password"
          autoComplete="new-password"
          required
          hint="At least 8 characters, with a letter and a digit."
          value={form.password}
          onChange={set('password')}
          error={problem?.fields.password}
        />
        <button type="submit" disabled={register.isPending}>
          {register.isPending ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p>
        Already have an account? <Link to="/sign-in">Sign in</Link>
      </p>
    </Page>
  );
}
