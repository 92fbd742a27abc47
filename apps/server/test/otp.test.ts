import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../src/infra/dependency-errors.ts';
import { MemoryStore } from '../src/infra/kv/index.ts';
import { MemoryTransport } from '../src/infra/mail/index.ts';
import { runEmailJob } from '../src/modules/auth/email-jobs.ts';
import { codeCooldownMs, revokeReviewCode } from '../src/modules/auth/otp.service.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  type FakeClock,
  failWrites,
  fakeClock,
  login,
  registerAccount,
  registerAdmin,
  type TestApp,
  uniqueEmail,
} from './helpers/index.ts';

const codeIn = (text: string | undefined) => /code: (\d{6})/.exec(text ?? '')?.[1];

describe('email one-time codes', () => {
  let t: TestApp;
  let clock: FakeClock;
  beforeAll(async () => {
    clock = fakeClock();
    t = await buildTestApp({ overrides: { clock } });
  });
  afterAll(() => t.close());

  const request = (email: string) => t.app.inject({ method: 'POST', url: '/api/auth/otp/request', payload: { email } });
  const verify = (email: string, code: string | undefined) =>
    t.app.inject({ method: 'POST', url: '/api/auth/otp/verify', payload: { email, code } });
  /** Runs `run` while the store refuses to write `key` (as one full, or away at that moment, would). */
  async function whileStoreRefuses(key: string, run: () => Promise<void>): Promise<void> {
    const set = t.services.kv.set.bind(t.services.kv);
    t.services.kv.set = async (written, value, options) => {
      if (written.endsWith(key)) throw new DependencyUnavailableError('redis', 'refused (a test)');
      return set(written, value, options);
    };
    try {
      await run();
    } finally {
      t.services.kv.set = set;
    }
  }
  async function codeFor(email: string): Promise<string> {
    expect((await request(email)).statusCode).toBe(200);
    await t.settle();
    const code = codeIn(t.mail.last(email, 'one-time-code')?.text);
    expect(code).toMatch(/^\d{6}$/);
    return code as string;
  }
  const nextWindow = () => clock.advance(31_000);

  it('answers every email alike and emails a 6-digit code (no devCode when email is delivered)', async () => {
    const account = await registerAccount(t.app);
    const unknown = uniqueEmail('new');
    const known = await request(account.email);
    const fresh = await request(unknown);
    expect(known.json()).toEqual({ ok: true });
    expect(fresh.body).toBe(known.body);
    await t.settle();
    expect(t.mail.to(unknown)).toHaveLength(1);
    expect(t.mail.last(unknown, 'one-time-code')).toMatchObject({
      subject: expect.stringMatching(/^\d{6} is your App code$/),
    });
  });

  it('signs up an unknown email with a valid code: a verified account, created: true, and a welcome email', async () => {
    const email = uniqueEmail('signup');
    const code = await codeFor(email);
    const response = await verify(email, code);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      created: true,
      tokenType: 'Bearer',
      user: { email, emailVerified: true, roles: ['user'] },
    });
    await t.settle();
    expect(
      t.mail
        .to(email)
        .map((message) => message.template)
        .sort(),
    ).toEqual(['one-time-code', 'welcome']);
    expect(
      (await t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(response.json()) })).statusCode,
    ).toBe(200);
  });

  it('signs in an existing account (created: false) and verifies its email', async () => {
    const account = await registerAccount(t.app);
    const response = await verify(account.email, await codeFor(account.email));
    expect(response.json()).toMatchObject({ created: false, user: { id: account.id, emailVerified: true } });
  });

  it('takes an unverified account back from whoever registered the address: its password and sessions end', async () => {
    // A stranger registered the address first (pre-account-takeover); its owner then signs in with a code.
    const squatter = await registerAccount(t.app);
    const owner = await verify(squatter.email, await codeFor(squatter.email));
    expect(owner.json()).toMatchObject({ created: false, user: { id: squatter.id, emailVerified: true } });
    const me = (account: { accessToken: string }) =>
      t.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) });
    expect((await me(squatter)).json().appCode).toBe('SESSION_REVOKED');
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refreshToken: squatter.refreshToken },
    });
    expect(refreshed.statusCode).toBe(401);
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { email: squatter.email, password: squatter.password },
    });
    expect(login.json().appCode).toBe('INVALID_CREDENTIALS');
    expect((await me(owner.json())).statusCode).toBe(200);
    // A verified account is not taken back again: the owner's next code keeps their other sessions.
    nextWindow();
    const again = await verify(squatter.email, await codeFor(squatter.email));
    expect(again.statusCode).toBe(200);
    expect((await me(owner.json())).statusCode).toBe(200);
  });

  it('takes back an account someone registered while the code was checked, as one registered before', async () => {
    const email = uniqueEmail('meanwhile');
    const code = await codeFor(email);
    // The stranger's registration lands between the code's lookup of the account (none yet)
    // and its use of the code.
    let squatter: Account | undefined;
    const kvDelete = t.services.kv.delete.bind(t.services.kv);
    t.services.kv.delete = async (key) => {
      if (key === `otp:${email}` && !squatter) squatter = await registerAccount(t.app, { email });
      return kvDelete(key);
    };
    let owner: Awaited<ReturnType<typeof verify>>;
    try {
      owner = await verify(email, code);
    } finally {
      t.services.kv.delete = kvDelete;
    }
    expect(owner.json()).toMatchObject({ created: false, user: { id: squatter?.id, emailVerified: true } });
    // Taken back: the stranger's password no longer signs in.
    expect((await login(t.app, email, squatter?.password ?? '')).json().appCode).toBe('INVALID_CREDENTIALS');
  });

  it('works once', async () => {
    const email = uniqueEmail();
    const code = await codeFor(email);
    expect((await verify(email, code)).statusCode).toBe(200);
    const again = await verify(email, code);
    expect(again.statusCode).toBe(401);
    expect(again.json().appCode).toBe('INVALID_CODE');
  });

  it('never creates an account for a wrong code', async () => {
    const email = uniqueEmail('never');
    const code = await codeFor(email);
    const wrong = code === '000000' ? '000001' : '000000';
    expect((await verify(email, wrong)).json().appCode).toBe('INVALID_CODE');
    expect((await verify(uniqueEmail('nocode'), '123456')).json().appCode).toBe('INVALID_CODE');
    expect(
      await t.services.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst(),
    ).toBeUndefined();
  });

  it('burns the code after 5 wrong tries: even the right one fails then', async () => {
    const email = uniqueEmail('burn');
    const code = await codeFor(email);
    const wrong = code === '999999' ? '999998' : '999999';
    for (let i = 0; i < 5; i++) expect((await verify(email, wrong)).statusCode).toBe(401);
    expect((await verify(email, code)).json().appCode).toBe('INVALID_CODE');
    // A burnt code keeps its cooldown: no new code, and five new guesses, at once.
    expect((await request(email)).statusCode).toBe(429);
    nextWindow();
    const next = await codeFor(email);
    expect((await verify(email, next)).statusCode).toBe(200);
  });

  it('keeps 4 wrong tries from burning it', async () => {
    const email = uniqueEmail('four');
    const code = await codeFor(email);
    const wrong = code === '999999' ? '999998' : '999999';
    for (let i = 0; i < 4; i++) await verify(email, wrong);
    expect((await verify(email, code)).statusCode).toBe(200);
  });

  // With a store the job's process shares (Redis): the in-process one of development is another process's in `pnpm worker`.
  it.skipIf(!process.env.REDIS_URL)(
    'emails a code only while it is the live one (a try of its job after it expired or was replaced sends nothing)',
    async () => {
      const email = uniqueEmail('late');
      await codeFor(email);
      const jobId = t.mail.last(email, 'one-time-code')?.idempotencyKey as string;
      const job = { id: jobId, data: { kind: 'one-time-code' as const, email } };
      const sent: string[] = [];
      const send = t.mail.send.bind(t.mail);
      t.mail.send = async (message) => {
        sent.push(message.idempotencyKey ?? '');
        return send(message);
      };
      try {
        await runEmailJob(t.services, job); // a retried try while the code is live: sent (the provider keeps it once)
        expect(sent).toEqual([jobId]);
        clock.advance(10 * 60 * 1000 + 1);
        await runEmailJob(t.services, job); // the provider was down until after the code expired
        nextWindow();
        await codeFor(email);
        await runEmailJob(t.services, job); // a newer code replaced it
        expect(sent).toHaveLength(2); // the live code's own email, and nothing else
      } finally {
        t.mail.send = send;
      }
    },
  );

  it('expires after 10 minutes', async () => {
    const email = uniqueEmail('expire');
    const code = await codeFor(email);
    clock.advance(10 * 60 * 1000 + 1);
    expect((await verify(email, code)).json().appCode).toBe('INVALID_CODE');
  });

  it('allows one request per 30 s per email, and a new code replaces the old one', async () => {
    const email = uniqueEmail('cooldown');
    const first = await codeFor(email);
    const tooSoon = await request(email);
    expect(tooSoon.statusCode).toBe(429);
    expect(tooSoon.json()).toMatchObject({ appCode: 'RATE_LIMITED', details: { retryAfterSeconds: 30 } });
    expect(tooSoon.headers['retry-after']).toBe('30');
    nextWindow();
    const second = await codeFor(email);
    if (second !== first) expect((await verify(email, first)).json().appCode).toBe('INVALID_CODE');
    expect((await verify(email, second)).statusCode).toBe(200);
  });

  it('waits twice as long after each code past the third in a day, up to 15 minutes, also once the code has expired', async () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map(codeCooldownMs)).toEqual(
      [30, 30, 30, 60, 120, 240, 480, 900, 900].map((seconds) => seconds * 1000),
    );
    const email = uniqueEmail('pace');
    const waitAfter = async () => {
      const refused = await request(email);
      expect(refused.statusCode).toBe(429);
      return Number(refused.headers['retry-after']);
    };
    for (let i = 0; i < 3; i++) {
      await codeFor(email);
      expect(await waitAfter()).toBe(30);
      nextWindow();
    }
    await codeFor(email); // the fourth
    expect(await waitAfter()).toBe(60);
    clock.advance(31_000);
    expect(await waitAfter()).toBe(29);
    clock.advance(30_000);
    await codeFor(email); // the fifth
    expect(await waitAfter()).toBe(120);
    clock.advance(120_000);
    for (const [nth, waitSeconds] of [
      [6, 240],
      [7, 480],
      [8, 900],
    ] as const) {
      await codeFor(email);
      expect(await waitAfter(), `after the ${nth}th`).toBe(waitSeconds);
      // Past the code's own 10 minutes too (it expired; the wait did not).
      clock.advance((waitSeconds - 1) * 1000);
      if (waitSeconds > 600) expect(await waitAfter()).toBe(1);
      clock.advance(1000);
    }
  });

  it('lets a code be asked for again at once when the last one could not be queued', async () => {
    const email = uniqueEmail('unqueued');
    // Queuing its email fails, as with the database away at that moment (a 503).
    const restore = await failWrites(t.services.db, { table: 'pgboss.job', when: `new.data->>'email' = '${email}'` });
    try {
      expect((await request(email)).json().appCode).toBe('DEPENDENCY_DOWN');
    } finally {
      await restore();
    }
    // Not RATE_LIMITED for 30 s over a code no email carried.
    expect((await verify(email, await codeFor(email))).json()).toMatchObject({ created: true });
  });

  it('keeps the code for a retry when the sign-in it proved failed on the database', async () => {
    const email = uniqueEmail('retried');
    const code = await codeFor(email);
    // Creating the account fails, as with the database away at that moment (a 503).
    const restore = await failWrites(t.services.db, { table: 'users', when: `new.email = '${email}'` });
    try {
      expect((await verify(email, code)).json().appCode).toBe('DEPENDENCY_DOWN');
    } finally {
      await restore();
    }
    // The retry the 503 asked for signs in with the same code, once.
    expect((await verify(email, code)).json()).toMatchObject({ created: true });
    expect((await verify(email, code)).json().appCode).toBe('INVALID_CODE');
  });

  it('lets a code be asked for again at once when the last one could not be stored', async () => {
    const email = uniqueEmail('unstored');
    // The store refuses the code's write (full, or away at that moment): a 503.
    await whileStoreRefuses(`otp:${email}`, async () => {
      expect((await request(email)).json().appCode).toBe('DEPENDENCY_DOWN');
    });
    // Not RATE_LIMITED for 30 s over a code never stored.
    expect((await verify(email, await codeFor(email))).json()).toMatchObject({ created: true });
  });

  it('keeps the last code sent when a new one could not be started', async () => {
    const email = uniqueEmail('kept');
    const sent = await codeFor(email);
    clock.advance(60_000); // past the first code's cooldown
    // The store refuses the new code's cooldown (full, or away at that moment): a 503.
    await whileStoreRefuses(`otp-wait:${email}`, async () => {
      expect((await request(email)).json().appCode).toBe('DEPENDENCY_DOWN');
    });
    // The code already in the person's inbox still signs in.
    expect((await verify(email, sent)).json()).toMatchObject({ created: true });
  });

  it('refuses malformed input with 400', async () => {
    for (const code of ['12345', '1234567', 'abcdef', ''])
      expect((await verify(uniqueEmail(), code)).statusCode).toBe(400);
    expect((await request('not-an-email')).statusCode).toBe(400);
  });

  it('refuses a disabled account even with a valid code', async () => {
    const account = await registerAccount(t.app);
    await t.services.db.updateTable('users').set({ disabled_at: new Date() }).where('id', '=', account.id).execute();
    const response = await verify(account.email, await codeFor(account.email));
    expect(response.statusCode).toBe(403);
    expect(response.json().appCode).toBe('ACCOUNT_DISABLED');
  });

  it('refuses an archived account even with a valid code (a wrong code is still INVALID_CODE), starting no session', async () => {
    const account = await registerAccount(t.app);
    const archived = await t.app.inject({ method: 'POST', url: '/api/users/me/archive', headers: bearer(account) });
    expect(archived.statusCode).toBe(200);
    const code = await codeFor(account.email);
    const wrong = await verify(account.email, code === '000000' ? '000001' : '000000');
    expect({ status: wrong.statusCode, appCode: wrong.json().appCode }).toEqual({
      status: 401,
      appCode: 'INVALID_CODE',
    });
    const response = await verify(account.email, code);
    expect(response.statusCode).toBe(403);
    expect(response.json().appCode).toBe('ACCOUNT_ARCHIVED');
    expect(response.json().accessToken).toBeUndefined();
    const live = await t.services.db
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', account.id)
      .where('revoked_at', 'is', null)
      .execute();
    expect(live).toEqual([]);
  });

  it('works over tRPC', async () => {
    const email = uniqueEmail('trpc');
    await t.app.inject({ method: 'POST', url: '/trpc/auth.otp.request', payload: { email } });
    await t.settle();
    const response = await t.app.inject({
      method: 'POST',
      url: '/trpc/auth.otp.verify',
      payload: { email, code: codeIn(t.mail.last(email, 'one-time-code')?.text) },
    });
    expect(response.json().result.data).toMatchObject({ created: true, user: { email } });
  });

  describe('the app-store review code', () => {
    let admin: Account;
    beforeAll(async () => {
      admin = await registerAdmin(t.app, t.services.db);
    });
    const generate = (account: Account) =>
      t.app.inject({ method: 'POST', url: '/api/admin/apple-review-otp', headers: bearer(account) });
    const revoke = (account: Account) =>
      t.app.inject({ method: 'DELETE', url: '/api/admin/apple-review-otp', headers: bearer(account) });

    it('needs auth:manage', async () => {
      const user = await registerAccount(t.app);
      expect((await generate(user)).json()).toMatchObject({
        appCode: 'PERMISSION_DENIED',
        details: { permission: 'auth:manage' },
      });
      expect((await revoke(user)).statusCode).toBe(403);
    });

    it('creates the review account, works repeatedly for that email only, until revoked', async () => {
      const generated = await generate(admin);
      expect(generated.statusCode).toBe(200);
      const { email, code, expiresAt } = generated.json();
      expect(email).toBe('review@apple.com');
      expect(code).toMatch(/^\d{6}$/);
      expect(Date.parse(expiresAt) - clock.now()).toBe(15 * 86_400_000);

      const first = await verify(email, code);
      expect(first.json()).toMatchObject({ created: false, user: { email: 'review@apple.com' } });
      expect((await verify(email, code)).statusCode).toBe(200); // reusable
      expect((await verify(uniqueEmail(), code)).statusCode).toBe(401); // that email only

      expect((await revoke(admin)).json()).toEqual({ ok: true });
      expect((await verify(email, code)).json().appCode).toBe('INVALID_CODE');
      // The sessions the code signed in end with it (a leaked code's would live on, refreshed).
      const signedIn = first.json();
      const me = await t.app.inject({
        method: 'GET',
        url: '/api/users/me',
        headers: { authorization: `Bearer ${signedIn.accessToken}` },
      });
      expect(me.json().appCode).toBe('SESSION_REVOKED');
      const refreshed = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        payload: { refreshToken: signedIn.refreshToken },
      });
      expect(refreshed.statusCode).toBe(401);
      expect((await revoke(admin)).statusCode).toBe(404);
    });

    it('outlives the key-value store: a process whose store starts empty (a Redis restart) takes it', async () => {
      const { email, code } = (await generate(admin)).json();
      const restarted = await buildTestApp({ database: t.database, overrides: { clock, kv: new MemoryStore() } });
      try {
        const verified = await restarted.app.inject({
          method: 'POST',
          url: '/api/auth/otp/verify',
          payload: { email, code },
        });
        expect(verified.json()).toMatchObject({ created: false, user: { email: 'review@apple.com' } });
        // A new code replaces it, for every process.
        const { code: next } = (await generate(admin)).json();
        expect(next).toMatch(/^\d{6}$/);
        if (next !== code) {
          const old = await restarted.app.inject({
            method: 'POST',
            url: '/api/auth/otp/verify',
            payload: { email, code },
          });
          expect(old.json().appCode).toBe('INVALID_CODE');
        }
        expect((await verify(email, next)).statusCode).toBe(200);
      } finally {
        await restarted.close();
      }
    });

    it('expires after APPLE_REVIEW_OTP_DAYS; revoking it then still ends the sessions it started', async () => {
      const { email, code } = (await generate(admin)).json();
      const reviewer = (await verify(email, code)).json();
      clock.advance(15 * 86_400_000 + 1);
      expect((await verify(email, code)).json().appCode).toBe('INVALID_CODE');
      const refresh = (refreshToken: string) =>
        t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken } });
      // The reviewer's session outlives the code (each refresh extends it)...
      const refreshed = await refresh(reviewer.refreshToken);
      expect(refreshed.statusCode).toBe(200);
      // ...until the expired code is revoked (called directly: the admin's own token has expired too).
      await revokeReviewCode(t.services);
      expect((await refresh(refreshed.json().refreshToken)).json().appCode).toBe('SESSION_REVOKED');
      // No code left: nothing to revoke.
      await expect(revokeReviewCode(t.services)).rejects.toMatchObject({ appCode: 'NOT_FOUND' });
    });

    it('lets the review email not request ordinary codes: the same answer, nothing sent', async () => {
      const ordinary = await request(uniqueEmail());
      const review = await request('Review@Apple.com');
      expect(review.statusCode).toBe(200);
      expect(review.body).toBe(ordinary.body);
      await t.settle();
      expect(t.mail.to('review@apple.com')).toEqual([]);
    });
  });
});

describe('development codes', () => {
  it('returns devCode when no provider delivers email, outside production', async () => {
    const t = await buildTestApp({ overrides: { mailTransport: new MemoryTransport({ delivers: false }) } });
    try {
      const email = uniqueEmail();
      const response = await t.app.inject({ method: 'POST', url: '/api/auth/otp/request', payload: { email } });
      const { devCode } = response.json();
      expect(devCode).toMatch(/^\d{6}$/);
      const verified = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/verify',
        payload: { email, code: devCode },
      });
      expect(verified.json().created).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('DEV_OTP signs in existing accounts only, never creating one', async () => {
    const t = await buildTestApp({ env: { DEV_OTP: '424242' } });
    try {
      const account = await registerAccount(t.app);
      const known = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/verify',
        payload: { email: account.email, code: '424242' },
      });
      expect(known.json()).toMatchObject({ created: false, user: { id: account.id } });
      // It proves no address: the unverified account keeps its password and stays unverified.
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
      expect(known.json().user.emailVerified).toBe(false);
      const email = uniqueEmail();
      const unknown = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/verify',
        payload: { email, code: '424242' },
      });
      expect(unknown.json().appCode).toBe('INVALID_CODE');
      expect(
        await t.services.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst(),
      ).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});
