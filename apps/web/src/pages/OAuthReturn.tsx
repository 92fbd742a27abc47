/**
 * Provider sign-in: the browser goes to the server's start route with a PKCE challenge of
 * ours, the server sends it back here with a one-time `code` (or `error`), and the exchange
 * proves it is the same browser with the verifier kept in sessionStorage. A code that comes
 * without our verifier is never exchanged: it is from a sign-in this tab did not start,
 * perhaps someone else's, sent here to sign this browser into their account (login CSRF).
 * The page the person came from is kept beside the verifier, to land back on it.
 */
import { useMutation } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { afterSignIn } from '../after-sign-in.ts';
import { api } from '../api.ts';
import { type Problem, problemOf, signInFailure } from '../errors.ts';
import { useSession } from '../session.tsx';
import { FormError, Page } from '../ui.tsx';

const VERIFIER_KEY = 'app.oauth.verifier';
const RETURN_TO_KEY = 'app.oauth.returnTo';

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');

/** Leaves for the provider; back on `returnTo` once signed in. */
export async function startProviderSignIn(apiUrl: string, provider: string, returnTo: string): Promise<void> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))),
  );
  sessionStorage.setItem(VERIFIER_KEY, verifier);
  sessionStorage.setItem(RETURN_TO_KEY, returnTo);
  const start = new URL(`/api/auth/oauth/${provider}/start`, apiUrl);
  start.searchParams.set('redirectTo', `${window.location.origin}/oauth/return`);
  start.searchParams.set('codeChallenge', challenge);
  window.location.assign(start);
}

const NEEDS_A_SECURE_PAGE: Problem = {
  appCode: undefined,
  message:
    'Signing in with a provider needs a secure (https) address. Open the app over https, or sign in with a password or an email code.',
  fields: {},
};

/**
 * Why a provider sign-in could not start. The PKCE challenge's hash (crypto.subtle) exists only
 * on a secure page (https, or this machine's localhost): on plain http elsewhere it cannot.
 */
export const providerStartFailure = (error: unknown): Problem =>
  window.isSecureContext ? problemOf(error) : NEEDS_A_SECURE_PAGE;

/** What this tab kept when it started the sign-in, read once (a code is exchanged once). */
function takeStartedSignIn(): { codeVerifier: string | null; returnTo: string } {
  const started = {
    codeVerifier: sessionStorage.getItem(VERIFIER_KEY),
    returnTo: afterSignIn(sessionStorage.getItem(RETURN_TO_KEY)),
  };
  sessionStorage.removeItem(VERIFIER_KEY);
  sessionStorage.removeItem(RETURN_TO_KEY);
  return started;
}

export function OAuthReturn() {
  const [params] = useSearchParams();
  const { signedIn } = useSession();
  const navigate = useNavigate();
  const code = params.get('code');
  const error = params.get('error');
  const exchange = useMutation({
    mutationFn: (input: { code: string; codeVerifier: string; returnTo: string }) =>
      api.auth.oauth.exchange.mutate({ code: input.code, codeVerifier: input.codeVerifier }),
    onSuccess: (result, { returnTo }) => {
      signedIn(result.user);
      navigate(returnTo, { replace: true });
    },
  });
  const started = useRef(false);
  const [startedElsewhere, setStartedElsewhere] = useState(false);
  useEffect(() => {
    if (!code || started.current) return;
    started.current = true;
    const { codeVerifier, returnTo } = takeStartedSignIn();
    if (codeVerifier) exchange.mutate({ code, codeVerifier, returnTo });
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
