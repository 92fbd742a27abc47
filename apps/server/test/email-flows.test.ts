import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../src/infra/dependency-errors.ts';
import { linkTokenOf, runEmailJob } from '../src/modules/auth/email-jobs.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  type FakeClock,
  failRevocationsOf,
  failWritesOf,
  fakeClock,
  login,
  registerAccount,
  type TestApp,
  uniqueEmail,
  whileHolding,
} from './helpers/index.ts';

const tokenIn = (text: string | undefined, path: string) =>
  new RegExp(`${path}\\?token=([\\w-]+)`).exec(text ?? '')?.[1];

describe('email verification and password reset', () => {
  let t: TestApp;
  let clock: FakeClock;
  beforeAll(async () => {
    clock = fakeClock();
    t = await buildTestApp({
      overrides: { clock },
      env: { APP_URL: 'https://app.example.test', PRODUCT_NAME: 'Acme' },
    });
  });
  afterAll(() => t.close());

  const me = (token: string) =>
    t.app.inject({ method: 'GET', url: '/api/users/me', headers: { authorization: `Bearer ${token}` } });
  /** The emailed link, opened signed in as `account`. */
  const verify = (token: string | undefined, account: Account) =>
    t.app.inject({ method: 'POST', url: '/api/auth/email/verify', headers: bearer(account), payload: { token } });
  const forgot = (email: string) =>
    t.app.inject({ method: 'POST', url: '/api/auth/password/forgot', payload: { email } });
  const reset = (token: string | undefined, newPassword: string) =>
    t.app.inject({ method: 'POST', url: '/api/auth/password/reset', payload: { token, newPassword } });
  const changePassword = (account: Account) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/password/change',
      headers: bearer(account),
      payload: { currentPassword: account.password, newPassword: 'Changed-pass-12' },
    });

  describe('verification', () => {
    it('registration emails a link; the link verifies the address once', async () => {
      const account = await registerAccount(t.app, { name: 'Ada' });
      await t.settle();
      const email = t.mail.last(account.email, 'verify-email');
      expect(email).toMatchObject({
        template: 'verify-email',
        subject: 'Confirm your email for Acme',
        from: 'App <no-reply@example.com>',
      });
      expect(email?.text).toContain('Hello Ada,');
      const token = tokenIn(email?.text, 'https://app.example.test/verify-email');
      expect(token).toBeDefined();
      expect(email?.html).toContain(`https://app.example.test/verify-email?token=${token}`);

      expect((await me(account.accessToken)).json().emailVerified).toBe(false);
      expect((await verify(token, account)).statusCode).toBe(200);
      expect((await me(account.accessToken)).json().emailVerified).toBe(true);
      const again = await verify(token, account);
      expect(again.statusCode).toBe(400);
      expect(again.json().appCode).toBe('INVALID_TOKEN');
    });

    it('confirms only signed in as the account it was sent to: signed out or as another, the link stays unused', async () => {
      const account = await registerAccount(t.app);
      const other = await registerAccount(t.app);
      await t.settle();
      const token = tokenIn(t.mail.last(account.email, 'verify-email')?.text, '/verify-email');
      const signedOut = await t.app.inject({ method: 'POST', url: '/api/auth/email/verify', payload: { token } });
      expect(signedOut.statusCode).toBe(401);
      const asOther = await verify(token, other);
      expect(asOther.statusCode).toBe(400);
      expect(asOther.json()).toMatchObject({
        appCode: 'INVALID_TOKEN',
        message: 'This link was sent to another account: sign in to that one and open it again',
        details: { reason: 'other-account' },
      });
      expect((await me(other.accessToken)).json().emailVerified).toBe(false);
      expect((await me(account.accessToken)).json().emailVerified).toBe(false);
      expect((await verify(token, account)).statusCode).toBe(200);
      expect((await me(account.accessToken)).json().emailVerified).toBe(true);
    });

    it('keeps a pre-hijacked account from its registrant: the owner of the address signs in by code, which reclaims it', async () => {
      // A stranger registers the owner's address with a password of their own.
      const stranger = await registerAccount(t.app, { password: 'Strangers-pass-1' });
      await t.settle();
      const token = tokenIn(t.mail.last(stranger.email, 'verify-email')?.text, '/verify-email');
      // The owner opens the link the stranger made the app send: signed out, it confirms nothing.
      expect(
        (await t.app.inject({ method: 'POST', url: '/api/auth/email/verify', payload: { token } })).statusCode,
      ).toBe(401);
      // The owner signs in with a code instead: the account is theirs, the stranger is out.
      await t.app.inject({ method: 'POST', url: '/api/auth/otp/request', payload: { email: stranger.email } });
      await t.settle();
      const code = /\b(\d{6})\b/.exec(t.mail.last(stranger.email, 'one-time-code')?.text ?? '')?.[1];
      const owner = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/verify',
        payload: { email: stranger.email, code },
      });
      expect(owner.statusCode).toBe(200);
      expect((await me(stranger.accessToken)).statusCode).toBe(401);
      const strangerLogin = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { email: stranger.email, password: 'Strangers-pass-1' },
      });
      expect(strangerLogin.json().appCode).toBe('INVALID_CREDENTIALS');
      expect((await me(owner.json().accessToken)).json().emailVerified).toBe(true);
    });

    it('keeps the link usable when the address cannot be marked verified', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      const token = tokenIn(t.mail.last(account.email, 'verify-email')?.text, 'https://app.example.test/verify-email');
      const restore = await failWritesOf(t.services.db, account.id, { table: 'users', column: 'id' });
      try {
        expect((await verify(token, account)).json().appCode).toBe('DEPENDENCY_DOWN');
      } finally {
        await restore();
      }
      expect((await verify(token, account)).json()).toEqual({ ok: true });
      expect((await me(account.accessToken)).json().emailVerified).toBe(true);
    });

    it('refuses an expired link (after 24 h) and an unknown one', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      const token = tokenIn(t.mail.last(account.email, 'verify-email')?.text, '/verify-email');
      clock.advance(24 * 60 * 60 * 1000 + 1000);
      // Signed in again: the day has outlived the access token too.
      const again = {
        ...account,
        accessToken: (await login(t.app, account.email, account.password)).json().accessToken,
      };
      expect((await verify(token, again)).json().appCode).toBe('INVALID_TOKEN');
      expect((await verify('x'.repeat(43), again)).json().appCode).toBe('INVALID_TOKEN');
      expect((await verify('short', again)).statusCode).toBe(400);
    });

    it('re-sends on request (the new link replaces the old), and sends nothing once verified', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      const first = tokenIn(t.mail.last(account.email, 'verify-email')?.text, '/verify-email');
      const resend = await t.app.inject({ method: 'POST', url: '/api/auth/email/resend', headers: bearer(account) });
      expect(resend.json()).toEqual({ ok: true });
      await t.settle();
      expect(t.mail.to(account.email)).toHaveLength(2);
      const second = tokenIn(t.mail.last(account.email, 'verify-email')?.text, '/verify-email');
      expect(second).not.toBe(first);
      expect((await verify(first, account)).statusCode).toBe(400);
      expect((await verify(second, account)).statusCode).toBe(200);
      await t.app.inject({ method: 'POST', url: '/api/auth/email/resend', headers: bearer(account) });
      await t.settle();
      expect(t.mail.to(account.email)).toHaveLength(2);
      expect((await t.app.inject({ method: 'POST', url: '/api/auth/email/resend' })).statusCode).toBe(401);
    });
  });

  describe('password reset', () => {
    it('answers known and unknown emails identically, and emails only the known one', async () => {
      const account = await registerAccount(t.app);
      const ghost = uniqueEmail('ghost');
      const known = await forgot(account.email);
      const unknown = await forgot(ghost);
      expect([known.statusCode, unknown.statusCode]).toEqual([200, 200]);
      expect(known.body).toBe(unknown.body);
      expect(known.json()).toEqual({ ok: true });
      await t.settle();
      expect(t.mail.last(account.email, 'reset-password')).toBeDefined();
      expect(t.mail.to(ghost)).toEqual([]);
    });

    it('sets the new password with the link, once, and ends every session', async () => {
      const account = await registerAccount(t.app);
      await forgot(account.email);
      await t.settle();
      const email = t.mail.last(account.email, 'reset-password');
      expect(email?.text).toContain('for 60 minutes');
      const token = tokenIn(email?.text, '/reset-password');
      expect((await reset(token, 'Brand-new-123')).json()).toEqual({ ok: true });
      expect((await me(account.accessToken)).json().appCode).toBe('SESSION_REVOKED');
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(401);
      const signedIn = await login(t.app, account.email, 'Brand-new-123');
      expect(signedIn.statusCode).toBe(200);
      expect(signedIn.json().user.emailVerified).toBe(true); // the link proved the inbox
      expect((await reset(token, 'Another-one-456')).json().appCode).toBe('INVALID_TOKEN');
    });

    it('voids the email sign-in code asked for before it (a session the reset did not end)', async () => {
      const account = await registerAccount(t.app);
      const codeRequest = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/request',
        payload: { email: account.email },
      });
      expect(codeRequest.statusCode).toBe(200);
      await forgot(account.email);
      await t.settle();
      const code = /code: (\d{6})/.exec(t.mail.last(account.email, 'one-time-code')?.text ?? '')?.[1];
      expect(code).toMatch(/^\d{6}$/);
      const token = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      expect((await reset(token, 'Brand-new-123')).json()).toEqual({ ok: true });
      const signIn = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/verify',
        payload: { email: account.email, code },
      });
      expect([signIn.statusCode, signIn.json().appCode]).toEqual([401, 'INVALID_CODE']);
    });

    it('resets all the same when the sign-in code cannot be discarded (the store refusing it)', async () => {
      const account = await registerAccount(t.app);
      await forgot(account.email);
      await t.settle();
      const token = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      const { kv } = t.services;
      const remove = kv.delete.bind(kv);
      let refused = 0;
      kv.delete = async (key) => {
        if (key.endsWith(`otp:${account.email}`)) {
          refused += 1;
          throw new DependencyUnavailableError('redis', 'refused (a test)');
        }
        return remove(key);
      };
      try {
        expect((await reset(token, 'Brand-new-123')).json()).toEqual({ ok: true });
      } finally {
        kv.delete = remove;
      }
      expect(refused).toBe(1);
      expect((await me(account.accessToken)).json().appCode).toBe('SESSION_REVOKED');
      expect((await login(t.app, account.email, 'Brand-new-123')).statusCode).toBe(200);
    });

    it('finishes a reset sent again with its spent link and password, only while its revocations matter', async () => {
      const account = await registerAccount(t.app);
      await forgot(account.email);
      await t.settle();
      const token = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      expect((await reset(token, 'Brand-new-123')).json()).toEqual({ ok: true });
      // Sent again (its answer lost, or a 503 after the commit): the same answer.
      expect((await reset(token, 'Brand-new-123')).json()).toEqual({ ok: true });
      // Once the access tokens it ended have expired, the spent link is only spent.
      const { accessTokenTtlSeconds } = t.services.config.jwt;
      clock.advance((accessTokenTtlSeconds + 61) * 1000);
      expect((await reset(token, 'Brand-new-123')).json().appCode).toBe('INVALID_TOKEN');
    });

    it('finishes a password change sent again from its session, only while its revocations matter', async () => {
      const account = await registerAccount(t.app);
      expect((await changePassword(account)).json()).toEqual({ ok: true });
      // Sent again (the current password is the new one by now): the same answer.
      expect((await changePassword(account)).json()).toEqual({ ok: true });
      // Later, from the same session (its access token refreshed): the old password is wrong.
      clock.advance((t.services.config.jwt.accessTokenTtlSeconds + 61) * 1000);
      const refreshed = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        payload: { refreshToken: account.refreshToken },
      });
      expect(refreshed.statusCode, refreshed.body).toBe(200);
      const late = await changePassword({ ...account, accessToken: refreshed.json().accessToken });
      expect([late.statusCode, late.json().appCode]).toEqual([401, 'INVALID_CREDENTIALS']);
    });

    it('changes nothing, and keeps the link for a retry, when the sessions cannot be ended', async () => {
      const account = await registerAccount(t.app);
      await forgot(account.email);
      await t.settle();
      const token = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      const restore = await failRevocationsOf(t.services.db, account.id);
      try {
        const failed = await reset(token, 'Brand-new-123');
        expect(failed.statusCode).toBe(503);
        expect(failed.json().appCode).toBe('DEPENDENCY_DOWN');
      } finally {
        await restore();
      }
      // Not a new password with the old sessions alive and the link spent: nothing happened.
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
      expect((await me(account.accessToken)).statusCode).toBe(200);
      expect((await reset(token, 'Brand-new-123')).json()).toEqual({ ok: true });
      expect((await me(account.accessToken)).json().appCode).toBe('SESSION_REVOKED');
    });

    it('keeps the link usable when the new password is refused', async () => {
      const account = await registerAccount(t.app);
      await forgot(account.email);
      await t.settle();
      const token = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      expect((await reset(token, 'weak')).statusCode).toBe(400);
      expect((await reset(token, account.email)).statusCode).toBe(400);
      expect((await reset(token, 'Strong-enough-1')).statusCode).toBe(200);
    });

    it('refuses a link after 1 h, and an older link once a newer one was sent', async () => {
      const account = await registerAccount(t.app);
      await forgot(account.email);
      await t.settle();
      const expiring = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      clock.advance(60 * 60 * 1000 + 1000);
      expect((await reset(expiring, 'Brand-new-123')).json().appCode).toBe('INVALID_TOKEN');

      await forgot(account.email);
      await t.settle();
      const older = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      await forgot(account.email);
      await t.settle();
      const newer = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      expect((await reset(older, 'Brand-new-123')).json().appCode).toBe('INVALID_TOKEN');
      expect((await reset(newer, 'Brand-new-123')).statusCode).toBe(200);
    });

    /** A reset email's job, asked for now, run by the test itself (`runEmailJob`). */
    const resetEmail = (id: string, email: string) => ({
      id,
      data: { kind: 'reset-password' as const, email, requestedAt: clock.now() },
    });

    it('keeps the link of the email that arrives last working when two are sent at once', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      const [first, second] = [randomUUID(), randomUUID()];
      const sending = Promise.withResolvers<void>();
      const gate = Promise.withResolvers<void>();
      const send = t.mail.send.bind(t.mail);
      t.mail.send = async (message, ...rest) => {
        if (message.idempotencyKey === first) {
          sending.resolve();
          await gate.promise;
        }
        return send(message, ...rest);
      };
      try {
        const firstSent = runEmailJob(t.services, resetEmail(first, account.email));
        await sending.promise; // its link made, its email on its way
        await runEmailJob(t.services, resetEmail(second, account.email)); // made after it, sent before it
        gate.resolve();
        await firstSent;
      } finally {
        t.mail.send = send;
      }
      // Before: the second's send deleted the first's link, whose email then arrived last, dead.
      expect((await reset(linkTokenOf(t.services, first), 'Brand-new-123')).statusCode).toBe(200);
    });

    it('keeps a newer link working when an older email is sent again after its answer was lost', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      const [older, newer] = [randomUUID(), randomUUID()];
      const send = t.mail.send.bind(t.mail);
      t.mail.send = async (message, ...rest) => {
        await send(message, ...rest);
        throw new Error('the answer was lost on its way'); // delivered all the same
      };
      try {
        await expect(runEmailJob(t.services, resetEmail(older, account.email))).rejects.toThrow('lost');
      } finally {
        t.mail.send = send;
      }
      await runEmailJob(t.services, resetEmail(newer, account.email));
      await runEmailJob(t.services, resetEmail(older, account.email)); // its retry (a provider that keeps one email a key sends nothing)
      // Before: the newer link, in the email that arrived last, was deleted by the older's retry.
      expect((await reset(linkTokenOf(t.services, newer), 'Brand-new-123')).statusCode).toBe(200);
    });

    it('sends nothing from an older email run again once a newer one retired its link, and the newer link stays', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      const [older, newer] = [randomUUID(), randomUUID()];
      await runEmailJob(t.services, resetEmail(older, account.email));
      await runEmailJob(t.services, resetEmail(newer, account.email));
      const sends: string[] = [];
      const send = t.mail.send.bind(t.mail);
      t.mail.send = async (message, ...rest) => {
        sends.push(message.idempotencyKey ?? '');
        return send(message, ...rest);
      };
      try {
        await runEmailJob(t.services, resetEmail(older, account.email)); // its job's completion was lost
      } finally {
        t.mail.send = send;
      }
      // Before: its link made anew and sent again (an SMTP server delivers it), and the newer one retired.
      expect(sends).toEqual([]);
      expect((await reset(linkTokenOf(t.services, older), 'Brand-new-123')).json().appCode).toBe('INVALID_TOKEN');
      expect((await reset(linkTokenOf(t.services, newer), 'Brand-new-123')).statusCode).toBe(200);
    });

    it('keeps the link an earlier email delivered working while a newer one cannot be sent', async () => {
      const account = await registerAccount(t.app);
      await forgot(account.email);
      await t.settle();
      const delivered = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      const send = t.mail.send.bind(t.mail);
      t.mail.send = async () => {
        throw new Error('the provider is down');
      };
      try {
        await forgot(account.email);
        await t.settle(); // its first try failed; it waits for its next
      } finally {
        t.mail.send = send;
      }
      expect((await reset(delivered, 'Brand-new-123')).statusCode).toBe(200);
      // The newer link was made before its sending failed (and a failure may be an answer lost
      // on the way, the email delivered): the reset leaves it unusable, as a change would.
      const unused = await t.services.db
        .selectFrom('user_tokens')
        .select('token_hash')
        .where('user_id', '=', account.id)
        .where('purpose', '=', 'reset-password')
        .where('used_at', 'is', null)
        .execute();
      expect(unused).toEqual([]);
    });

    it('voids a reset link once the password is changed (the link no longer undoes the change)', async () => {
      const account = await registerAccount(t.app);
      await forgot(account.email);
      await t.settle();
      const token = tokenIn(t.mail.last(account.email, 'reset-password')?.text, '/reset-password');
      expect((await changePassword(account)).statusCode).toBe(200);
      expect((await reset(token, 'Brand-new-123')).json().appCode).toBe('INVALID_TOKEN');
      // The address's verification link is not a reset link: it still works.
      const link = tokenIn(t.mail.last(account.email, 'verify-email')?.text, '/verify-email');
      expect((await verify(link, account)).statusCode).toBe(200);
    });

    it('sends no link from a reset email still retrying when the password is changed', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      const tried: string[] = [];
      const send = t.mail.send.bind(t.mail);
      t.mail.send = async (message) => {
        tried.push(message.idempotencyKey ?? '');
        throw new Error('the provider is down');
      };
      try {
        await forgot(account.email);
        await t.settle(); // its first try failed (its link recorded): it waits for its next
      } finally {
        t.mail.send = send;
      }
      const [jobId] = tried;
      expect(jobId).toBeDefined();
      expect((await changePassword(account)).statusCode).toBe(200);
      // The provider is back and the job's next try is due: it finds the password changed since.
      await sql`update pgboss.job set start_after = now() where id = ${jobId}`.execute(t.services.db);
      await t.settle();
      expect(t.mail.last(account.email, 'reset-password')).toBeUndefined();
      expect((await reset(linkTokenOf(t.services, jobId as string), 'Brand-new-123')).json().appCode).toBe(
        'INVALID_TOKEN',
      );
    });

    it('makes no reset link while a password change is committing: the link waits for it and sees it', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      // The email job reads the account before the change commits, and makes its link as it does.
      await whileHolding(
        t.services.db,
        (trx) =>
          trx
            .updateTable('users')
            .set({ password_changed_at: new Date(clock.now() + 60_000) })
            .where('id', '=', account.id)
            .execute(),
        async () => {
          await forgot(account.email);
          await t.settle();
        },
      );
      // Before: the link was made after the change had dropped the account's links, and worked.
      expect(t.mail.last(account.email, 'reset-password')).toBeUndefined();
      const links = await t.services.db
        .selectFrom('user_tokens')
        .select('id')
        .where('user_id', '=', account.id)
        .where('purpose', '=', 'reset-password')
        .execute();
      expect(links).toEqual([]);
    });

    it('sends nothing to a disabled account', async () => {
      const account = await registerAccount(t.app);
      await t.settle();
      await t.services.db.updateTable('users').set({ disabled_at: new Date() }).where('id', '=', account.id).execute();
      const before = t.mail.to(account.email).length;
      expect((await forgot(account.email)).json()).toEqual({ ok: true });
      await t.settle();
      expect(t.mail.to(account.email)).toHaveLength(before);
    });
  });
});
