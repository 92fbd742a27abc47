import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api } from '../api.ts';
import { problemOf } from '../errors.ts';
import { meKey } from '../session.tsx';
import { FormError, Notice, Page } from '../ui.tsx';

/** The target of the verification email's link: `/verify-email?token=…` (works signed in or not). */
export function VerifyEmail() {
  const token = useSearchParams()[0].get('token') ?? '';
  const queryClient = useQueryClient();
  const verify = useMutation({
    mutationFn: () => api.auth.verifyEmail.mutate({ token }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: meKey }),
  });
  const started = useRef(false);
  useEffect(() => {
    if (token && !started.current) {
      started.current = true;
      verify.mutate();
    }
  }, [token, verify]);
  return (
    <Page title="Confirm your email">
      {verify.isSuccess && <Notice>Your email address is confirmed.</Notice>}
      {verify.isError && <FormError problem={problemOf(verify.error)} />}
      {!token && <p role="alert">This link has no token. Open the link from the email again.</p>}
      {verify.isPending && <p aria-busy="true">Confirming…</p>}
      <p>
        <Link to="/notes">Go to your notes</Link>
      </p>
    </Page>
  );
}
