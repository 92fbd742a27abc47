import { useMutation, useQuery } from '@tanstack/react-query';
import { type FormEvent, useRef, useState } from 'react';
import { Link, useLocation, useNavigate } from 'react-router';
import { afterSignIn } from '../after-sign-in.ts';
import { api, apiUrl } from '../api.ts';
import { problemOf } from '../errors.ts';
import { useSession } from '../session.tsx';
import { Field, FormError, Notice, Page } from '../ui.tsx';
import { providerStartFailure, startProviderSignIn } from './OAuthReturn.tsx';

export function SignIn() {
  const { signedIn, endedMessage } = useSession();
  const navigate = useNavigate();
  const from = afterSignIn((useLocation().state as { from?: unknown } | null)?.from);
  const done = (user: Parameters<typeof signedIn>[0]) => {
    signedIn(user);
    navigate(from, { replace: true });
  };
  const [mode, setMode] = useState<'password' | 'code'>('password');

  return (
    <Page title="Sign in">
      {endedMessage && <Notice>{endedMessage}</Notice>}
      <fieldset className="tabs">
        <legend className="visually-hidden">How to sign in</legend>
        <button type="button" aria-pressed={mode === 'password'} onClick={() => setMode('password')}>
          Password
        </button>
        <button type="button" aria-pressed={mode === 'code'} onClick={() => setMode('code')}>
          Email code
        </button>
      </fieldset>
      {mode === 'password' ? <PasswordForm onSignedIn={done} /> : <CodeForm onSignedIn={done} />}
      <Providers returnTo={from} />
      <p>
        <Link to="/forgot-password">Forgot your password?</Link> · <Link to="/sign-up">Create an account</Link>
      </p>
    </Page>
  );
}

type OnSignedIn = (user: Parameters<ReturnType<typeof useSession>['signedIn']>[0]) => void;

function PasswordForm({ onSignedIn }: { onSignedIn: OnSignedIn }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const login = useMutation({
    mutationFn: () => api.auth.login.mutate({ email, password }),
    onSuccess: (result) => onSignedIn(result.user),
  });
  const problem = login.error ? problemOf(login.error) : null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    login.mutate();
  };
  return (
    <form onSubmit={submit} noValidate aria-label="Sign in with a password">
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
      <Field
        label="Password"
        type="password"
        autoComplete="current-password"
        required
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        error={problem?.fields.password}
      />
      <button type="submit" disabled={login.isPending}>
        {login.isPending ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}

function CodeForm({ onSignedIn }: { onSignedIn: OnSignedIn }) {
  const [email, setEmail] = useState('');
  const [code, setCode] = useState('');
  /** Where the live code went (the code field shows), and whether it replaced an earlier one. */
  const [sent, setSent] = useState<{ to: string; again: boolean } | null>(null);
  const emailInput = useRef<HTMLInputElement>(null);
  const codeInput = useRef<HTMLInputElement>(null);
  const request = useMutation({
    mutationFn: (to: string) => api.auth.otp.request.mutate({ email: to }),
    onSuccess: (_result, to) => {
      setSent((previous) => ({ to, again: previous?.to === to }));
      codeInput.current?.focus();
    },
  });
  const verify = useMutation({
    mutationFn: (input: { email: string; code: string }) => api.auth.otp.verify.mutate(input),
    onSuccess: (result) => onSignedIn(result.user),
  });
  const problem = request.error ? problemOf(request.error) : verify.error ? problemOf(verify.error) : null;
  const busy = request.isPending || verify.isPending;
  // A code expired, burned by wrong tries or never received: another one, to the same address.
  const sendNewCode = () => {
    if (!sent) return;
    verify.reset();
    setCode('');
    request.mutate(sent.to);
  };
  // A mistyped address: back to the address, which can be changed now.
  const anotherEmail = () => {
    request.reset();
    verify.reset();
    setCode('');
    setSent(null);
    emailInput.current?.focus();
  };
  return (
    <form
      noValidate
      aria-label="Sign in with an email code"
      onSubmit={(event) => {
        event.preventDefault();
        if (sent) verify.mutate({ email: sent.to, code });
        else request.mutate(email);
      }}
    >
      <FormError problem={problem} />
      <Field
        label="Email"
        type="email"
        autoComplete="email"
        required
        ref={emailInput}
        value={email}
        readOnly={sent !== null}
        onChange={(e) => setEmail(e.target.value)}
        error={problem?.fields.email}
      />
      {sent && (
        <>
          <Notice>
            We sent a {sent.again ? 'new 6-digit code' : '6-digit code'} to {sent.to}. It works for 10 minutes.
          </Notice>
          <Field
            label="Code"
            inputMode="numeric"
            autoComplete="one-time-code"
            required
            autoFocus
            ref={codeInput}
            value={code}
            onChange={(e) => setCode(e.target.value)}
            error={problem?.fields.code}
          />
        </>
      )}
      <button type="submit" disabled={busy}>
        {sent ? 'Sign in' : 'Email me a code'}
      </button>
      {sent && (
        <>
          <button type="button" disabled={busy} onClick={sendNewCode}>
            Send a new code
          </button>
          <button type="button" disabled={busy} onClick={anotherEmail}>
            Use another email
          </button>
        </>
      )}
    </form>
  );
}

/** One button per provider the server has configured; back on `returnTo` once signed in. */
function Providers({ returnTo }: { returnTo: string }) {
  const providers = useQuery({ queryKey: ['auth.oauth.providers'], queryFn: () => api.auth.oauth.providers.query() });
  // Starting can fail before the page leaves (no secure page): said here, never left unhandled.
  const start = useMutation({ mutationFn: (provider: string) => startProviderSignIn(apiUrl, provider, returnTo) });
  if (!providers.data?.length) return null;
  return (
    <section aria-label="Sign in with a provider" className="providers">
      <FormError problem={start.error ? providerStartFailure(start.error) : null} />
      {providers.data.map((provider) => (
        <button key={provider.id} type="button" disabled={start.isPending} onClick={() => start.mutate(provider.id)}>
          Continue with {provider.name}
        </button>
      ))}
    </section>
  );
}
