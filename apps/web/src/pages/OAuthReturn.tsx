/**
 * Provider sign-in: the browser goes to the server's start route with a PKCE challenge of
 * ours, the server sends it back here with a one-time `code` (or `error`), and the exchange
 * proves it is the same browser with the verifier kept in sessionStorage. A code that comes
 * without our verifier is never exchanged: it is from a sign-in this tab did not start,
 * perhaps someone else's, sent here to sign this browser into their account (login CSRF).
 */
import { useMutation } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api } from '../api.ts';
import { problemOf, signInFailure } from '../errors.ts';
import { useSession } from '../session.tsx';
import { FormError, Page } from '../ui.tsx';

const VERIFIER_KEY = 'app.oauth.verifier';

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');

export async function startProviderSignIn(apiUrl: string, provider: string): Promise<void> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))),
  );
  sessionStorage.setItem(VERIFIER_KEY, verifier);
  const start = new URL(`/api/auth/oauth/${provider}/start`, apiUrl);
  start.searchParams.set('redirectTo', `${window.location.origin}/oauth/return`);
  start.searchParams.set('codeChallenge', challenge);
  window.location.assign(start);
}

export function OAuthReturn() {
  const [params] = useSearchParams();
  const { signedIn } = useSession();
  const navigate = useNavigate();
  const code = params.get('code');
  const error = params.get('error');
  const exchange = useMutation({
    mutationFn: (input: { code: string; codeVerifier: string }) => api.auth.oauth.exchange.mutate(input),
    onSuccess: (result) => {
      signedIn(result.user);
      navigate('/notes', { replace: true });
    },
  });
  const started = useRef(false);
  const [startedElsewhere, setStartedElsewhere] = useState(false);
  useEffect(() => {
    if (!code || started.current) return;
    started.current = true;
    const codeVerifier = sessionStorage.getItem(VERIFIER_KEY);
    sessionStorage.removeItem(VERIFIER_KEY);
    if (codeVerifier) exchange.mutate({ code, codeVerifier });
    else setStartedElsewhere(true);
  }, [code, exchange]);

  const problem = exchange.error
    ? problemOf(exchange.error)
    : error
      ? signInFailure(error)
      : startedElsewhere
        ? {
            appCode: undefined,
            message: 'This sign-in was not started in this browser tab: start it again from the sign-in page.',
            fields: {},
          }
        : null;
  return (
    <Page title="Signing in">
      {problem ? (
        <>
          <FormError problem={problem} />
          <p>
            <Link to="/sign-in">Back to sign in</Link>
          </p>
        </>
      ) : (
        <p aria-busy="true">Finishing the sign-in…</p>
      )}
    </Page>
  );
}
