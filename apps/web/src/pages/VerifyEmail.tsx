import { getAppErrorCode } from '@app/sdk';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { meKey, useSession } from '../session.tsx';
import { FormError, Notice, Page } from '../ui.tsx';

/**
 * The target of the verification email's link: `/verify-email?token=…`. It confirms the
 * address signed in as the account the link was sent to (the server refuses it otherwise):
 * signed out, the page asks to sign in first and comes back here.
 */
export function VerifyEmail() {
  const token = useSearchParams()[0].get('token') ?? '';
  const { user, loading, unavailable } = useSession();
  const queryClient = useQueryClient();
  const verify = useMutation({
    mutationFn: () => api.auth.verifyEmail.mutate({ token }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: meKey }),
  });
  const started = useRef(false);
  useEffect(() => {
    if (token && user && !started.current) {
      started.current = true;
      verify.mutate();
    }
  }, [token, user, verify]);
  // A spent or retired link of an address confirmed already (another tab, or an email code or
  // provider sign-in, which prove it too): confirmed, not an error. Another account's link is one.
  const otherAccount =
    (verify.error as { data?: { details?: { reason?: string } } } | null)?.data?.details?.reason === 'other-account';
  const alreadyConfirmed =
    verify.isError &&
    getAppErrorCode(verify.error) === 'INVALID_TOKEN' &&
    !otherAccount &&
    Boolean(user?.emailVerified);
  const here = `/verify-email?token=${encodeURIComponent(token)}`;
  return (
    <Page title="Confirm your email">
      {(verify.isSuccess || alreadyConfirmed) && <Notice>Your email address is confirmed.</Notice>}
      {verify.isError && !alreadyConfirmed && <FormError problem={problemOf(verify.error)} />}
      {unavailable && <FormError problem={unavailable} />}
      {!token && <p role="alert">This link has no token. Open the link from the email again.</p>}
      {token && !loading && !user && !unavailable && (
        <p>
          Sign in to the account this link was sent to, with its password, and its address is confirmed.{' '}
          <Link to="/sign-in" state={{ from: here }}>
            Sign in to confirm
          </Link>
        </p>
      )}
      {verify.isPending && <p aria-busy="true">Confirming…</p>}
      {user && (
        <p>
          <Link to="/notes">Go to your notes</Link>
        </p>
      )}
    </Page>
  );
}
