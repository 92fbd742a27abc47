import { type Db, hashPassword } from '@app/db';
import { hash } from '@node-rs/argon2';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activeSessions, createSession, rotateRefreshToken } from '../src/modules/sessions/sessions.service.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  type FakeClock,
  failRevocationsOf,
  fakeClock,
  login,
  registerAccount,
  registerAdmin,
  type TestApp,
  uniqueEmail,
  untilWaitingOnLocks,
  whileHolding,
} from './helpers/index.ts';

describe('auth: password and sessions', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  const me = (token: string) =>
    t.app.inject({ method: 'GET', url: '/api/users/me', headers: { authorization: `Bearer ${token}` } });
  const refresh = (refreshToken: string) =>
    t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken } });

  describe('register', () => {
    it('creates the account, normalises the email, gives the user role, and signs in', async () => {
      const raw = `  New.Person-${Date.now()}@Example.COM `;
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { email: raw, password: 'Sunny-day-2026', name: 'New Person' },
      });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body).toMatchObject({
        tokenType: 'Bearer',
        accessToken: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
        refreshToken: expect.stringMatching(/^[\w-]{43}$/),
        user: { email: raw.trim().toLowerCase(), name: 'New Person', emailVerified: false, roles: ['user'] },
      });
      expect(Date.parse(body.accessTokenExpiresAt) - Date.now()).toBeGreaterThan(14 * 60_000);
      expect(Date.parse(body.refreshTokenExpiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);
      expect((await me(body.accessToken)).json().id).toBe(body.user.id);
      const row = await t.services.db
        .selectFrom('users')
        .selectAll()
        .where('id', '=', body.user.id)
        .executeTakeFirstOrThrow();
      expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    });

    it('answers a duplicate email, in any case, with 409 EMAIL_TAKEN', async () => {
      const account = await registerAccount(t.app);
      for (const email of [account.email, account.email.toUpperCase()]) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/api/auth/register',
          payload: { email, password: 'Another-pass-1' },
        });
        expect(response.statusCode).toBe(409);
        expect(response.json().appCode).toBe('EMAIL_TAKEN');
      }
    });

    it.each([
      ['too short', 'Ab1', /at least 8/],
      ['no digit', 'only-letters-here', /digit/],
      ['no letter', '12345678901', /letter/],
      ['too long', `A1${'x'.repeat(130)}`, /at most 128/],
    ])('refuses a password that is %s, naming the field', async (_, password, message) => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { email: uniqueEmail(), password },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().issues).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ path: ['password'], message: expect.stringMatching(message) }),
        ]),
      );
    });

    it('refuses a password equal to the email, and a malformed email', async () => {
      const email = `abc12345@example.com`;
      const same = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { email, password: email },
      });
      expect(same.statusCode).toBe(400);
      expect(same.json().issues[0]).toMatchObject({ path: ['password'], message: 'must not be the email address' });
      const bad = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { email: 'not-an-email', password: 'Valid-pass-1' },
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().issues[0].path).toEqual(['email']);
    });
  });

  describe('login', () => {
    it('signs in with the right password, case-insensitively on the email', async () => {
      const account = await registerAccount(t.app);
      const response = await login(t.app, account.email.toUpperCase(), account.password);
      expect(response.statusCode).toBe(200);
      expect(response.json().user.id).toBe(account.id);
    });

    it('answers an unknown email and a wrong password identically', async () => {
      const account = await registerAccount(t.app);
      const wrong = await login(t.app, account.email, 'Wrong-password-1');
      const unknown = await login(t.app, uniqueEmail('ghost'), 'Wrong-password-1');
      for (const response of [wrong, unknown]) {
        expect(response.statusCode).toBe(401);
        const { requestId: _, ...body } = response.json();
        expect(body).toEqual({
          code: 'UNAUTHORIZED',
          appCode: 'INVALID_CREDENTIALS',
          message: 'Email or password is incorrect',
        });
      }
    });

    it('names a disabled account only to someone who knows its password', async () => {
      const account = await registerAccount(t.app);
      await t.services.db.updateTable('users').set({ disabled_at: new Date() }).where('id', '=', account.id).execute();
      expect((await login(t.app, account.email, 'Wrong-password-1')).json().appCode).toBe('INVALID_CREDENTIALS');
      const right = await login(t.app, account.email, account.password);
      expect(right.statusCode).toBe(403);
      expect(right.json().appCode).toBe('ACCOUNT_DISABLED');
    });

    it('re-hashes a password stored with outdated parameters on a successful login', async () => {
      const email = uniqueEmail();
      const old = await hash('Legacy-pass-1', {
        algorithm: 2 /* argon2id */,
        memoryCost: 8_192,
        timeCost: 1,
        parallelism: 1,
      });
      const user = await t.services.db
        .insertInto('users')
        .values({ email, password_hash: old })
        .returning('id')
        .executeTakeFirstOrThrow();
      expect((await login(t.app, email, 'Legacy-pass-1')).statusCode).toBe(200);
      const row = await t.services.db
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', user.id)
        .executeTakeFirstOrThrow();
      expect(row.password_hash).not.toBe(old);
      expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect((await login(t.app, email, 'Legacy-pass-1')).statusCode).toBe(200);
    });

    it('refuses an account without a password (one-time code or SSO only)', async () => {
      const email = uniqueEmail();
      await t.services.db.insertInto('users').values({ email }).execute();
      expect((await login(t.app, email, '')).statusCode).toBe(400);
      expect((await login(t.app, email, 'Anything-1')).json().appCode).toBe('INVALID_CREDENTIALS');
    });

    it('keeps the stored hash format shared with the seeds', async () => {
      expect(await hashPassword('x')).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    });
  });

  describe('refresh', () => {
    it('rotates: each refresh answers a new token, and one rotated past no longer refreshes', async () => {
      const account = await registerAccount(t.app);
      const first = await refresh(account.refreshToken);
      expect(first.statusCode).toBe(200);
      const next = first.json();
      expect(next.refreshToken).not.toBe(account.refreshToken);
      expect((await me(next.accessToken)).statusCode).toBe(200);
      const second = await refresh(next.refreshToken);
      expect(second.statusCode).toBe(200);
      expect(second.json().refreshToken).not.toBe(next.refreshToken);
      // The first token, two rotations back (within the grace window: a late tab, refused alone).
      const stale = await refresh(account.refreshToken);
      expect([stale.statusCode, stale.json().appCode]).toEqual([401, 'INVALID_REFRESH_TOKEN']);
      expect((await me(second.json().accessToken)).statusCode).toBe(200);
    });

    /** Moves the session's last rotation back, past the reuse grace window. */
    const pastGraceWindow = (userId: string) =>
      t.services.db
        .updateTable('sessions')
        .set({ last_used_at: new Date(Date.now() - 60_000) })
        .where('user_id', '=', userId)
        .execute();

    it('revokes the whole session when a rotated token is presented again (reuse detection)', async () => {
      const account = await registerAccount(t.app);
      const rotated = (await refresh(account.refreshToken)).json();
      await pastGraceWindow(account.id);
      const replay = await refresh(account.refreshToken);
      expect(replay.statusCode).toBe(401);
      expect(replay.json().appCode).toBe('SESSION_REVOKED');
      // The legitimate holder of the newest tokens is signed out too.
      expect((await refresh(rotated.refreshToken)).json().appCode).toBe('SESSION_REVOKED');
      expect((await me(rotated.accessToken)).json().appCode).toBe('SESSION_REVOKED');
    });

    it('gives concurrent refreshes of one token the same successor instead of ending the session', async () => {
      const account = await registerAccount(t.app);
      const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(account.refreshToken)));
      expect(answers.map((answer) => answer.statusCode)).toEqual(Array(20).fill(200));
      const successors = new Set(answers.map((answer) => answer.json().refreshToken));
      expect(successors.size).toBe(1);
      expect(answers[0]?.headers['cache-control']).toBe('no-store');
      // Every access token works, and the session goes on with the shared successor.
      for (const answer of answers.slice(0, 3)) expect((await me(answer.json().accessToken)).statusCode).toBe(200);
      const [successor] = successors;
      const next = await refresh(successor as string);
      expect(next.statusCode).toBe(200);
      expect((await me(next.json().accessToken)).statusCode).toBe(200);
      // The chain moved on two steps: within the grace window the first token is a late tab, refused alone.
      const late = await refresh(account.refreshToken);
      expect(late.json().appCode).toBe('INVALID_REFRESH_TOKEN');
      expect((await me(next.json().accessToken)).statusCode).toBe(200);
      // Past it, the first token presented again is reuse, however many rotations ago: the session ends.
      await pastGraceWindow(account.id);
      expect((await refresh(account.refreshToken)).json().appCode).toBe('SESSION_REVOKED');
      expect((await me(next.json().accessToken)).json().appCode).toBe('SESSION_REVOKED');
      expect((await refresh(next.json().refreshToken)).json().appCode).toBe('SESSION_REVOKED');
    });

    it('refuses a refresh that read the session before two others rotated it, without ending the session', async () => {
      const account = await registerAccount(t.app);
      const sessionOf = (trx: typeof t.services.db) =>
        trx.selectFrom('sessions').select('id').where('user_id', '=', account.id).forUpdate().executeTakeFirstOrThrow();
      let late: Promise<Awaited<ReturnType<typeof refresh>>> | undefined;
      let newest = '';
      // Another tab holds the session while this refresh reads it and waits to write; meanwhile
      // that tab rotates the token, and a third rotates its successor.
      await t.services.db.transaction().execute(async (trx) => {
        await sessionOf(trx);
        late = refresh(account.refreshToken);
        await untilWaitingOnLocks(t.services.db, 1, late);
        const deps = { ...t.services, db: trx };
        const client = { ip: '127.0.0.1', userAgent: undefined };
        const admit = async () => undefined;
        const second = await rotateRefreshToken(deps, { refreshToken: account.refreshToken, client }, admit);
        newest = (await rotateRefreshToken(deps, { refreshToken: second.refreshToken, client }, admit)).refreshToken;
      });
      const answer = await (late as NonNullable<typeof late>);
      expect(answer.json().appCode).toBe('INVALID_REFRESH_TOKEN');
      // The session goes on with the newest token.
      const next = await refresh(newest);
      expect(next.statusCode).toBe(200);
      expect((await me(next.json().accessToken)).statusCode).toBe(200);
    });

    it('treats a replay after the grace window as reuse, and never extends the window with a grace answer', async () => {
      const account = await registerAccount(t.app);
      const first = (await refresh(account.refreshToken)).json();
      const again = (await refresh(account.refreshToken)).json(); // within the window: the same successor
      expect(again.refreshToken).toBe(first.refreshToken);
      await pastGraceWindow(account.id);
      expect((await refresh(account.refreshToken)).json().appCode).toBe('SESSION_REVOKED');
      expect((await refresh(first.refreshToken)).json().appCode).toBe('SESSION_REVOKED');
    });

    it('rotates nothing when it fails before answering: the token is still good after the grace window', async () => {
      const account = await registerAccount(t.app);
      // The account's roles cannot be read in time: the query waits on a lock and is cancelled,
      // as a statement timeout would (a 503).
      await t.services.db.transaction().execute(async (trx) => {
        await sql`lock table user_roles in access exclusive mode`.execute(trx);
        const failed = refresh(account.refreshToken);
        await untilWaitingOnLocks(t.services.db, 1, failed);
        await sql`select pg_cancel_backend(pid) from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(t.services.db);
        expect((await failed).statusCode).toBe(503);
      });
      // The client kept the token it sent; presented once the window has passed, it is no reuse.
      await pastGraceWindow(account.id);
      const retried = await refresh(account.refreshToken);
      expect(retried.statusCode).toBe(200);
      expect((await me(retried.json().accessToken)).statusCode).toBe(200);
    });

    it('answers an unknown or malformed refresh token with 401 / 400', async () => {
      expect((await refresh('x'.repeat(43))).json().appCode).toBe('INVALID_REFRESH_TOKEN');
      expect((await refresh('')).statusCode).toBe(400);
      const tooLong = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        payload: { refreshToken: 'x'.repeat(5_000) },
      });
      expect(tooLong.statusCode).toBe(400);
    });

    it('refuses an expired session', async () => {
      const account = await registerAccount(t.app);
      await t.services.db
        .updateTable('sessions')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('user_id', '=', account.id)
        .execute();
      expect((await refresh(account.refreshToken)).json().appCode).toBe('INVALID_REFRESH_TOKEN');
    });

    it('refuses a disabled account and ends its sessions', async () => {
      const account = await registerAccount(t.app);
      await t.services.db.updateTable('users').set({ disabled_at: new Date() }).where('id', '=', account.id).execute();
      const response = await refresh(account.refreshToken);
      expect(response.statusCode).toBe(403);
      expect((await me(account.accessToken)).json().appCode).toBe('SESSION_REVOKED');
    });
  });

  describe('a sign-in racing a change to the account', () => {
    it('starts no session for an account disabled after its password was read', async () => {
      const account = await registerAccount(t.app);
      const { db } = t.services;
      // The administrator's change, not committed yet: the login reads the account as it was.
      const committed = Promise.withResolvers<void>();
      const disabling = db.transaction().execute(async (trx) => {
        await trx.updateTable('users').set({ disabled_at: new Date() }).where('id', '=', account.id).execute();
        await committed.promise;
      });
      const signingIn = login(t.app, account.email, account.password);
      // Until the login waits on the account's row (it would be done already without that wait).
      await untilWaitingOnLocks(t.services.db, 1, signingIn);
      committed.resolve();
      await disabling;
      const response = await signingIn;
      expect(response.json().appCode).toBe('ACCOUNT_DISABLED');
      expect(
        await db
          .selectFrom('sessions')
          .select('id')
          .where('user_id', '=', account.id)
          .where('revoked_at', 'is', null)
          .execute(),
      ).toHaveLength(1); // the one registering started, nothing more
    });

    it('starts no session when the password it checked is replaced meanwhile', async () => {
      const account = await registerAccount(t.app);
      const { db } = t.services;
      const replacement = await hashPassword('Another-pass-12');
      // The change (a password reset, say), not committed yet: the login checks the old password.
      const committed = Promise.withResolvers<void>();
      const changing = db.transaction().execute(async (trx) => {
        await trx.updateTable('users').set({ password_hash: replacement }).where('id', '=', account.id).execute();
        await committed.promise;
      });
      const signingIn = login(t.app, account.email, account.password);
      await untilWaitingOnLocks(t.services.db, 1, signingIn);
      committed.resolve();
      await changing;
      expect((await signingIn).json().appCode).toBe('INVALID_CREDENTIALS');
      expect((await login(t.app, account.email, 'Another-pass-12')).statusCode).toBe(200);
    });

    it('starts no session that outlives the account when the sign-in races its deletion', async () => {
      const account = await registerAccount(t.app);
      const admin = await registerAdmin(t.app, t.services.db);
      // The deletion is held where it removes the account's files, after its sessions were ended.
      const released = Promise.withResolvers<void>();
      const holding = Promise.withResolvers<void>();
      const hold = t.services.db.transaction().execute(async (trx) => {
        await sql`lock table files in access exclusive mode`.execute(trx);
        holding.resolve();
        await released.promise;
      });
      await holding.promise;
      const deleting = t.app.inject({ method: 'DELETE', url: `/api/users/${account.id}`, headers: bearer(admin) });
      await untilWaitingOnLocks(t.services.db, 1, deleting);
      const signingIn = login(t.app, account.email, account.password);
      await untilWaitingOnLocks(t.services.db, 2, signingIn);
      released.resolve();
      await hold;
      expect((await deleting).statusCode).toBe(200);
      const response = await signingIn;
      // Without the account's row locked, the sign-in got a session the deletion then dropped unrevoked.
      expect(response.json().appCode).toBe('INVALID_CREDENTIALS');
    });
  });

  describe('logout and sessions', () => {
    it('logout ends the current session at once: access and refresh tokens both stop working', async () => {
      const account = await registerAccount(t.app);
      const other = (await login(t.app, account.email, account.password)).json();
      expect(
        (await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) })).json(),
      ).toEqual({ ok: true });
      expect((await me(account.accessToken)).json().appCode).toBe('SESSION_REVOKED');
      expect((await refresh(account.refreshToken)).json().appCode).toBe('SESSION_REVOKED');
      // The other session is untouched.
      expect((await me(other.accessToken)).statusCode).toBe(200);
    });

    it('logout-all ends every session of the user', async () => {
      const account = await registerAccount(t.app);
      const second = (await login(t.app, account.email, account.password)).json();
      const ended = await t.app.inject({ method: 'POST', url: '/api/auth/logout-all', headers: bearer(account) });
      expect(ended.statusCode).toBe(200);
      for (const token of [account.accessToken, second.accessToken])
        expect((await me(token)).json().appCode).toBe('SESSION_REVOKED');
    });

    it('lists active sessions with the current one marked, and revokes one of them', async () => {
      const account = await registerAccount(t.app);
      const second = (await login(t.app, account.email, account.password, { 'user-agent': 'Phone/1.0' })).json();
      const list = await t.app.inject({ method: 'GET', url: '/api/auth/sessions', headers: bearer(account) });
      expect(list.statusCode).toBe(200);
      const sessions = list.json() as { id: string; current: boolean; userAgent: string }[];
      expect(sessions).toHaveLength(2);
      expect(sessions.filter((s) => s.current)).toHaveLength(1);
      const phone = sessions.find((s) => s.userAgent === 'Phone/1.0');
      expect(phone?.current).toBe(false);

      const revoked = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/sessions/${phone?.id}`,
        headers: bearer(account),
      });
      expect(revoked.statusCode).toBe(200);
      expect((await me(second.accessToken)).json().appCode).toBe('SESSION_REVOKED');
      // Again (a client retrying after an answer it lost): done, not "no such session".
      const again = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/sessions/${phone?.id}`,
        headers: bearer(account),
      });
      expect(again.statusCode).toBe(200);
      expect(
        (await t.app.inject({ method: 'GET', url: '/api/auth/sessions', headers: bearer(account) })).json(),
      ).toHaveLength(1);
    });

    it("answers another user's session id, or an unknown one, with 404; a malformed one with 400", async () => {
      const alice = await registerAccount(t.app);
      const bob = await registerAccount(t.app);
      const bobSession = (
        await t.app.inject({ method: 'GET', url: '/api/auth/sessions', headers: bearer(bob) })
      ).json()[0].id;
      const attempt = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/sessions/${bobSession}`,
        headers: bearer(alice),
      });
      expect(attempt.statusCode).toBe(404);
      expect((await me(bob.accessToken)).statusCode).toBe(200);
      const malformed = await t.app.inject({
        method: 'DELETE',
        url: '/api/auth/sessions/not-a-uuid',
        headers: bearer(alice),
      });
      expect(malformed.statusCode).toBe(400);
    });
  });

  describe('change password', () => {
    it('refuses a wrong current password with 401 and changes nothing', async () => {
      const account = await registerAccount(t.app);
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/auth/password/change',
        headers: bearer(account),
        payload: { currentPassword: 'Wrong-one-1', newPassword: 'Brand-new-2' },
      });
      expect(response.statusCode).toBe(401);
      expect(response.json().appCode).toBe('INVALID_CREDENTIALS');
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
    });

    it('sets the new password and ends the other sessions, keeping this one', async () => {
      const account = await registerAccount(t.app);
      const other = (await login(t.app, account.email, account.password)).json();
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/auth/password/change',
        headers: bearer(account),
        payload: { currentPassword: account.password, newPassword: 'Brand-new-2' },
      });
      expect(response.statusCode).toBe(200);
      expect((await me(account.accessToken)).statusCode).toBe(200);
      expect((await me(other.accessToken)).json().appCode).toBe('SESSION_REVOKED');
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(401);
      expect((await login(t.app, account.email, 'Brand-new-2')).statusCode).toBe(200);
    });

    it('keeps the old password and every session when the other sessions cannot be ended (a retry finishes)', async () => {
      const account = await registerAccount(t.app);
      const other = (await login(t.app, account.email, account.password)).json();
      const change = () =>
        t.app.inject({
          method: 'POST',
          url: '/api/auth/password/change',
          headers: bearer(account),
          payload: { currentPassword: account.password, newPassword: 'Brand-new-2' },
        });
      const restore = await failRevocationsOf(t.services.db, account.id);
      try {
        const failed = await change();
        expect(failed.statusCode).toBe(503);
        expect(failed.json().appCode).toBe('DEPENDENCY_DOWN');
      } finally {
        await restore();
      }
      // A replaced password with the other sessions alive could not be retried (the old one no longer works).
      expect((await me(other.accessToken)).statusCode).toBe(200);
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
      expect((await change()).statusCode).toBe(200);
      expect((await me(other.accessToken)).json().appCode).toBe('SESSION_REVOKED');
    });

    /**
     * A change checked against the old password, made to wait (its account's row held) while
     * `meanwhile` commits what the owner did: what the change then answers.
     */
    async function changeWhile(
      account: Account,
      meanwhile: (trx: Db) => Promise<unknown>,
    ): Promise<{ statusCode: number; appCode: string | undefined }> {
      const response = await whileHolding(
        t.services.db,
        async (trx) => {
          await meanwhile(trx);
          await trx.selectFrom('users').select('id').where('id', '=', account.id).forUpdate().execute();
        },
        () =>
          t.app.inject({
            method: 'POST',
            url: '/api/auth/password/change',
            headers: bearer(account),
            payload: { currentPassword: account.password, newPassword: 'Attacker-pass-3' },
          }),
      );
      return { statusCode: response.statusCode, appCode: response.json().appCode };
    }

    it('never undoes a reset committed while it was checked: the old password is refused then', async () => {
      const account = await registerAccount(t.app);
      const resetTo = await hashPassword('Owner-reset-4');
      // The owner's reset: a new password, every session ended.
      const answered = await changeWhile(account, (trx) =>
        trx.updateTable('users').set({ password_hash: resetTo }).where('id', '=', account.id).execute(),
      );
      expect(answered).toEqual({ statusCode: 401, appCode: 'INVALID_CREDENTIALS' });
      expect((await login(t.app, account.email, 'Owner-reset-4')).statusCode).toBe(200);
      expect((await login(t.app, account.email, 'Attacker-pass-3')).statusCode).toBe(401);
    });

    it('never goes through for a session ended while it was checked (a sign-out everywhere)', async () => {
      const account = await registerAccount(t.app);
      const answered = await changeWhile(account, (trx) =>
        trx.updateTable('sessions').set({ revoked_at: new Date() }).where('user_id', '=', account.id).execute(),
      );
      expect(answered).toEqual({ statusCode: 401, appCode: 'SESSION_REVOKED' });
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
    });

    it('refuses a weak new password or the email as password', async () => {
      const account = await registerAccount(t.app);
      for (const newPassword of ['short1', account.email]) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/api/auth/password/change',
          headers: bearer(account),
          payload: { currentPassword: account.password, newPassword },
        });
        expect(response.statusCode).toBe(400);
      }
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
    });
  });

  describe('over tRPC', () => {
    it('serves the same procedures with the same error codes', async () => {
      const email = uniqueEmail();
      const registered = await t.app.inject({
        method: 'POST',
        url: '/trpc/auth.register',
        payload: { email, password: 'Trpc-pass-1' },
      });
      expect(registered.statusCode).toBe(200);
      const { accessToken } = registered.json().result.data;
      const meResponse = await t.app.inject({
        method: 'GET',
        url: '/trpc/users.me',
        headers: { authorization: `Bearer ${accessToken}` },
      });
      expect(meResponse.json().result.data.email).toBe(email);
      const bad = await t.app.inject({
        method: 'POST',
        url: '/trpc/auth.login',
        payload: { email, password: 'Nope-nope-1' },
      });
      expect(bad.statusCode).toBe(401);
      expect(bad.json().error.data.appCode).toBe('INVALID_CREDENTIALS');
      const anonymous = await t.app.inject({ method: 'GET', url: '/trpc/users.me' });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json().error.data.appCode).toBe('UNAUTHORIZED');
    });
  });
});

describe('auth: session and token expiry follow the injected clock', () => {
  const DAY_MS = 86_400_000;
  let t: TestApp;
  let clock: FakeClock;
  beforeAll(async () => {
    clock = fakeClock();
    t = await buildTestApp({ overrides: { clock } });
  });
  afterAll(() => t.close());

  const me = (token: string) =>
    t.app.inject({ method: 'GET', url: '/api/users/me', headers: { authorization: `Bearer ${token}` } });
  const refresh = (refreshToken: string) =>
    t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken } });
  const sessions = (accessToken: string) =>
    t.app.inject({ method: 'GET', url: '/api/auth/sessions', headers: bearer({ accessToken }) });

  it('refuses a refresh token once the clock passes REFRESH_TOKEN_TTL', async () => {
    const email = uniqueEmail();
    const registered = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { email, password: 'Clock-pass-1' },
    });
    const { refreshToken, refreshTokenExpiresAt } = registered.json();
    expect(Date.parse(refreshTokenExpiresAt)).toBe(clock.now() + 30 * DAY_MS);
    clock.advance(30 * DAY_MS + 1000);
    const expired = await refresh(refreshToken);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().appCode).toBe('INVALID_REFRESH_TOKEN');
  });

  it('expires the access token by the clock; a refresh gives a working one', async () => {
    const account = await registerAccount(t.app);
    expect((await me(account.accessToken)).statusCode).toBe(200);
    clock.advance(15 * 60_000 + 1000);
    const expired = await me(account.accessToken);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().appCode).toBe('TOKEN_EXPIRED');
    const renewed = await refresh(account.refreshToken);
    expect(renewed.statusCode).toBe(200);
    expect((await me(renewed.json().accessToken)).statusCode).toBe(200);
  });

  it('closes the refresh grace window by the clock', async () => {
    const account = await registerAccount(t.app);
    const first = (await refresh(account.refreshToken)).json();
    clock.advance(9_000);
    expect((await refresh(account.refreshToken)).json().refreshToken).toBe(first.refreshToken);
    clock.advance(2_000);
    expect((await refresh(account.refreshToken)).json().appCode).toBe('SESSION_REVOKED');
  });

  it('counts the grace window from the rotation, not from a refresh’s arrival (its reads may have waited)', async () => {
    const account = await registerAccount(t.app);
    // Two tabs refresh at once while the account's roles cannot be read (a slow database):
    // both wait 11 s of the clock before either rotates.
    const [first, second] = await t.services.db.transaction().execute(async (trx) => {
      await sql`lock table user_roles in access exclusive mode`.execute(trx);
      const both = [refresh(account.refreshToken), refresh(account.refreshToken)] as const;
      await untilWaitingOnLocks(t.services.db, 2, Promise.all(both));
      clock.advance(11_000);
      return both;
    });
    const [one, other] = [(await first).json(), (await second).json()];
    expect([one.appCode, other.appCode]).toEqual([undefined, undefined]);
    expect(one.refreshToken).toBe(other.refreshToken);
  });

  it('lists only the sessions the clock has not expired, with times from the clock', async () => {
    const account = await registerAccount(t.app);
    const firstSignIn = clock.now();
    clock.advance(20 * DAY_MS);
    const second = (await login(t.app, account.email, account.password)).json();
    const both = (await sessions(second.accessToken)).json() as { createdAt: string; current: boolean }[];
    expect(both.map((session) => Date.parse(session.createdAt)).sort()).toEqual([firstSignIn, clock.now()]);

    clock.advance(10 * DAY_MS + 1000); // the first session's 30 days are over; the second has 10 days left
    const renewed = (await refresh(second.refreshToken)).json();
    const left = (await sessions(renewed.accessToken)).json() as { current: boolean }[];
    expect(left).toEqual([expect.objectContaining({ current: true })]);
  });

  it('keeps a revocation while the access tokens it covers may live, by the clock, then drops it', async () => {
    const account = await registerAccount(t.app);
    const revocations = () =>
      t.services.db.selectFrom('session_revocations').select('session_id').where('user_id', '=', account.id).execute();
    await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(account) });
    expect((await me(account.accessToken)).json().appCode).toBe('SESSION_REVOKED');
    expect(await revocations()).toHaveLength(1);

    clock.advance(15 * 60_000 + 1000); // the access token has expired; the entry (plus clock skew) stays
    expect((await me(account.accessToken)).json().appCode).toBe('TOKEN_EXPIRED');
    const other = await registerAccount(t.app);
    await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(other) });
    expect(await revocations()).toHaveLength(1);

    clock.advance(60_000); // past the skew too: the next revocation sweeps it away
    const third = await registerAccount(t.app);
    await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(third) });
    expect(await revocations()).toHaveLength(0);
  });
});

describe('auth: an account holds at most MAX_SESSIONS_PER_USER active sessions', () => {
  let t: TestApp;
  let clock: FakeClock;
  beforeAll(async () => {
    clock = fakeClock();
    t = await buildTestApp({ env: { MAX_SESSIONS_PER_USER: '3' }, overrides: { clock } });
  });
  afterAll(() => t.close());

  const me = (token: string) =>
    t.app.inject({ method: 'GET', url: '/api/users/me', headers: { authorization: `Bearer ${token}` } });
  const refresh = (refreshToken: string) =>
    t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken } });
  const sessionIds = async (accessToken: string) =>
    (
      (await t.app.inject({ method: 'GET', url: '/api/auth/sessions', headers: bearer({ accessToken }) })).json() as {
        id: string;
      }[]
    ).map((session) => session.id);
  const signIn = async (account: Account) => {
    clock.advance(1000);
    const response = await login(t.app, account.email, account.password);
    expect(response.statusCode).toBe(200);
    return response.json() as { accessToken: string; refreshToken: string };
  };

  it('ends the least recently used session at a sign-in over the cap, at once, and no other', async () => {
    const account = await registerAccount(t.app);
    const second = await signIn(account);
    const third = await signIn(account);
    // At the cap, not over it: the sign-in that reaches it ends nothing.
    expect(await sessionIds(third.accessToken)).toHaveLength(3);
    // The first session is used again: the second is now the one used least recently.
    clock.advance(1000);
    const first = (await refresh(account.refreshToken)).json() as { accessToken: string; refreshToken: string };

    const fourth = await signIn(account);
    expect((await me(second.accessToken)).json().appCode).toBe('SESSION_REVOKED');
    expect((await refresh(second.refreshToken)).json().appCode).toBe('SESSION_REVOKED');
    for (const live of [first, third, fourth]) expect((await me(live.accessToken)).statusCode).toBe(200);
    expect(await sessionIds(fourth.accessToken)).toHaveLength(3);

    // Sessions that ended on their own (signed out, expired) leave room: nothing more ends.
    await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(third) });
    const fifth = await signIn(account);
    for (const live of [first, fourth, fifth]) expect((await me(live.accessToken)).statusCode).toBe(200);
  });

  it('ends with the cap, not fewer, when sign-ins come at once', async () => {
    const account = await registerAccount(t.app);
    await signIn(account);
    clock.advance(1000);
    // Sessions started at once (password checks would take turns: started here directly).
    const client = { ip: '203.0.113.9', userAgent: 'test' };
    const started = await Promise.all(
      Array.from({ length: 8 }, () => createSession(t.services, { userId: account.id, client })),
    );
    // None ended a session another kept: as many as the cap are left (or one over it, from a
    // sign-in whose count came before the others committed), all among the newest.
    const afterBurst = await activeSessions(t.services, account.id);
    expect(afterBurst.length).toBeGreaterThanOrEqual(3);
    expect(afterBurst.every((row) => started.some((session) => session.sessionId === row.id))).toBe(true);
    // The next sign-in sees them all, and leaves the cap exactly.
    clock.advance(1000);
    const next = await createSession(t.services, { userId: account.id, client });
    const active = await activeSessions(t.services, account.id);
    expect(active).toHaveLength(3);
    expect(active[0]?.id).toBe(next.sessionId);
  });

  it('caps each account on its own', async () => {
    const alice = await registerAccount(t.app);
    const bob = await registerAccount(t.app);
    for (let i = 0; i < 3; i++) await signIn(bob);
    // Bob's fourth sign-in ended his first session; Alice's only session stays.
    expect((await me(bob.accessToken)).json().appCode).toBe('SESSION_REVOKED');
    expect((await me(alice.accessToken)).statusCode).toBe(200);
  });
});
