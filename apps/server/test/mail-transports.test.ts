import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressObject } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { type EmailMessage, Mailer, OutboxTransport, SmtpTransport } from '../src/infra/mail/index.ts';
import { runEmailJob } from '../src/modules/auth/email-jobs.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  freePort,
  LOCALHOST_TLS,
  registerAccount,
  registerAdmin,
  spawnServer,
  startFakeResend,
  startSilentServer,
  startSmtpServer,
  type TestApp,
  uniqueEmail,
} from './helpers/index.ts';

describe('the Resend transport, against a local fake Resend', () => {
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    resend = await startFakeResend();
    t = await buildTestApp({
      configuredMail: true,
      env: {
        RESEND_API_KEY: 're_test_123',
        RESEND_BASE_URL: resend.url,
        EMAIL_FROM: 'Acme <hello@acme.test>',
        // Under the fake's slow answer (3 s), with room for a loaded machine's successful sends.
        EMAIL_SEND_TIMEOUT_MS: '2000',
        PRODUCT_NAME: 'Acme',
      },
    });
    admin = await registerAdmin(t.app, t.services.db);
    await t.settle();
  });
  afterAll(async () => {
    await t.close();
    await resend.close();
  });

  it('takes an email whose key Resend took before with another body as sent: one delivery, no try after', async () => {
    resend.setMode('ok');
    const id = '01900000-0000-7000-8000-00000000e0c1';
    const email = uniqueEmail();
    await t.services.db.insertInto('users').values({ email }).execute();
    await runEmailJob(t.services, { id, data: { kind: 'welcome', email, locale: 'en' } });
    // Its answer lost, the next try renders it anew, in another language meanwhile (a deploy,
    // the reader's choice): Resend refuses the key with another body (409), on every try.
    await expect(
      runEmailJob(t.services, { id, data: { kind: 'welcome', email, locale: 'fr' } }),
    ).resolves.toBeUndefined();
    expect(resend.received.filter((entry) => entry.idempotencyKey === id)).toHaveLength(2);
    expect(resend.delivered.filter((entry) => entry.idempotencyKey === id)).toHaveLength(1);
  });

  it('sends the exact payload with the bearer key', async () => {
    resend.setMode('ok');
    const before = resend.received.length;
    const account = await registerAccount(t.app, { name: 'Ada' });
    await t.settle();
    const sent = resend.received.slice(before);
    expect(sent).toHaveLength(1);
    const [email] = sent;
    expect(email?.authorization).toBe('Bearer re_test_123');
    expect(email?.body).toEqual({
      from: 'Acme <hello@acme.test>',
      to: account.email,
      subject: 'Confirm your email for Acme',
      html: expect.stringContaining('Confirm my email'),
      text: expect.stringContaining('Hello Ada,'),
      tags: [{ name: 'template', value: 'verify-email' }],
    });
    expect(t.services.mailer.transport.delivers).toBe(true);
  });

  it.each(['fail', 'slow'] as const)(
    'a %s provider does not break the request, nor change its answer; the email waits to be retried',
    async (mode) => {
      resend.setMode(mode);
      const account = await registerAccount(t.app);
      const forgot = await t.app.inject({
        method: 'POST',
        url: '/api/auth/password/forgot',
        payload: { email: account.email },
      });
      expect(forgot.json()).toEqual({ ok: true });
      const otp = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/request',
        payload: { email: account.email },
      });
      expect(otp.json()).toEqual({ ok: true }); // no devCode: a provider is configured
      await t.settle(); // the tries gave up (refused, or at the 2 s timeout)
      const [email] = await t.services.jobs.counts();
      expect(email?.queue).toBe('email');
      expect(email?.deferred).toBeGreaterThanOrEqual(2); // waiting out their backoff, not lost
      await t.services.jobs.ready().then((boss) => boss.deleteQueuedJobs('email')); // no retries into the next tests
    },
  );

  it('sends an email once the provider is back, exactly once however many tries it took', async () => {
    resend.setMode('fail');
    const account = await registerAccount(t.app, { name: 'Patient' });
    await t.settle();
    const tried = resend.received.filter((email) => email.body.to === account.email);
    expect(tried.length).toBeGreaterThanOrEqual(1);
    const key = tried[0]?.idempotencyKey;
    expect(key).toMatch(/^[0-9a-f-]{36}$/);
    resend.setMode('ok');
    const boss = await t.services.jobs.ready();
    // The first retry comes after its backoff (5 s): wait for it, then for the send.
    await expect
      .poll(async () => (await boss.findJobs('email', { id: key as string }))[0]?.state, {
        timeout: 20_000,
        interval: 250,
      })
      .toBe('completed');
    const delivered = resend.delivered.filter((email) => email.body.to === account.email);
    expect(delivered).toHaveLength(1);
    expect(
      resend.received.filter((email) => email.body.to === account.email).every((e) => e.idempotencyKey === key),
    ).toBe(true);
  }, 30_000);

  it('reports delivery to the admin who sends a test email', async () => {
    resend.setMode('ok');
    const ok = await t.app.inject({
      method: 'POST',
      url: '/api/admin/test-email',
      headers: bearer(admin),
      payload: {},
    });
    expect(ok.json()).toMatchObject({
      ok: true,
      transport: 'resend',
      to: admin.email,
      messageId: expect.stringMatching(/^fake-/),
    });
    expect(resend.received.at(-1)?.body).toMatchObject({ to: admin.email, subject: 'Test email from Acme' });

    const other = await t.app.inject({
      method: 'POST',
      url: '/api/admin/test-email',
      headers: bearer(admin),
      payload: { to: 'ops@acme.test' },
    });
    expect(other.json().to).toBe('ops@acme.test');

    resend.setMode('fail');
    const failed = await t.app.inject({
      method: 'POST',
      url: '/api/admin/test-email',
      headers: bearer(admin),
      payload: {},
    });
    expect(failed.statusCode).toBe(503);
    expect(failed.json()).toMatchObject({
      appCode: 'EMAIL_DELIVERY_FAILED',
      message: expect.stringMatching(/The fake is down/),
    });

    resend.setMode('slow');
    const slow = await t.app.inject({
      method: 'POST',
      url: '/api/admin/test-email',
      headers: bearer(admin),
      payload: {},
    });
    expect(slow.statusCode).toBe(503);
    expect(slow.json().message).toMatch(/did not answer within 2000 ms/);
  });

  it('needs email:send-test', async () => {
    const user = await registerAccount(t.app);
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/admin/test-email',
      headers: bearer(user),
      payload: {},
    });
    expect(response.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'email:send-test' } });
  });
});

describe('the development outbox', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'outbox-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes each email to disk and lists it at /dev/outbox', async () => {
    const t = await buildTestApp({ overrides: { mailTransport: new OutboxTransport(dir) } });
    try {
      const account = await registerAccount(t.app, { name: '<b>Bold</b>' });
      await t.settle();
      const files = (await readdir(dir)).sort();
      expect(files.map((f) => path.extname(f)).sort()).toEqual(['.html', '.json', '.txt']);
      const id = files[0]?.replace(/\.\w+$/, '') as string;

      const list = await t.app.inject({ method: 'GET', url: '/dev/outbox' });
      expect(list.statusCode).toBe(200);
      expect(list.headers['content-type']).toMatch(/text\/html/);
      expect(list.body).toContain(account.email);
      expect(list.body).toContain(`/dev/outbox/${id}`);

      const html = await t.app.inject({ method: 'GET', url: `/dev/outbox/${id}` });
      expect(html.body).toContain('Confirm my email');
      expect(html.body).toContain('&lt;b&gt;Bold&lt;/b&gt;');
      const text = await t.app.inject({ method: 'GET', url: `/dev/outbox/${id}/text` });
      expect(text.body).toContain('Hello <b>Bold</b>,');
      expect((await t.app.inject({ method: 'GET', url: '/dev/outbox/..%2F..%2Fetc%2Fpasswd' })).statusCode).toBe(404);

      // Without a provider, the code is also in the answer (development only).
      const otp = await t.app.inject({
        method: 'POST',
        url: '/api/auth/otp/request',
        payload: { email: account.email },
      });
      expect(otp.json().devCode).toMatch(/^\d{6}$/);
    } finally {
      await t.close();
    }
  });

  it('does not exist in production', async () => {
    const t = await buildTestApp({
      overrides: { mailTransport: new OutboxTransport(dir) },
      env: {
        NODE_ENV: 'production',
        JWT_SECRET: 'rVY8m2Qk7tLx0pZcN4wE9sHf1uJb6gDaK3oTy5iBnXvMqCe',
        REDIS_URL: 'redis://127.0.0.1:6379',
        CORS_ORIGINS: 'https://app.example.com',
        RESEND_API_KEY: 're_prod',
        EMAIL_FROM: 'Acme <no-reply@acme.test>',
      },
    });
    try {
      const response = await t.app.inject({ method: 'GET', url: '/dev/outbox' });
      expect(response.statusCode).toBe(404);
      expect(response.json().appCode).toBe('ROUTE_NOT_FOUND');
    } finally {
      await t.close();
    }
  });
});

/** The addresses of a parsed To/From header. */
const addresses = (field: AddressObject | AddressObject[] | undefined) =>
  [field ?? []].flat().flatMap((group) => group.value.map((entry) => entry.address));

const testEmail = (to: string): EmailMessage => ({
  to,
  subject: 'Hello over SMTP',
  html: '<p>Hello</p>',
  text: 'Hello',
  template: 'test-email',
});

describe('the SMTP transport, against a real local SMTP server', () => {
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    smtp = await startSmtpServer();
    t = await buildTestApp({
      configuredMail: true,
      env: {
        MAIL_TRANSPORT: 'smtp',
        SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
        EMAIL_FROM: 'Acme <hello@acme.test>',
        EMAIL_SEND_TIMEOUT_MS: '5000',
        PRODUCT_NAME: 'Acme',
      },
    });
    admin = await registerAdmin(t.app, t.services.db);
    await t.settle();
  });
  afterAll(async () => {
    await t.close();
    await smtp.close();
  });

  it('delivers the verification email, HTML and text, from EMAIL_FROM to the new account', async () => {
    const before = smtp.received.length;
    const account = await registerAccount(t.app, { name: 'Ada' });
    await t.settle();
    const sent = smtp.received.slice(before);
    expect(sent).toHaveLength(1);
    const [mail] = sent;
    expect(mail?.mailFrom).toBe('hello@acme.test');
    expect(mail?.rcptTo).toEqual([account.email]);
    const parsed = mail?.parsed;
    expect(parsed?.from?.value).toEqual([{ address: 'hello@acme.test', name: 'Acme' }]);
    expect(addresses(parsed?.to)).toEqual([account.email]);
    expect(parsed?.subject).toBe('Confirm your email for Acme');
    expect(parsed?.headers.get('content-type')).toMatchObject({ value: 'multipart/alternative' });
    expect(parsed?.html).toContain('Confirm my email');
    expect(parsed?.text).toContain('Hello Ada,');
    // APP_URL's default: the web app under `pnpm dev`.
    const link = /http:\/\/localhost:5173\/verify-email\?token=[\w-]+/;
    expect(parsed?.text).toMatch(link);
    expect(parsed?.html).toContain(parsed?.text?.match(link)?.[0]);
    expect(t.services.mailer.transport).toMatchObject({ name: 'smtp', delivers: true });
  });

  it('signs in with a one-time code that arrived by SMTP', async () => {
    const email = uniqueEmail('otp');
    const request = await t.app.inject({ method: 'POST', url: '/api/auth/otp/request', payload: { email } });
    expect(request.json()).toEqual({ ok: true }); // no devCode: the email is delivered
    await t.settle();
    const mail = smtp.received.findLast((m) => m.rcptTo.includes(email));
    const code = mail?.parsed.subject?.match(/^(\d{6}) is your Acme code$/)?.[1];
    expect(code).toBeDefined();
    expect(mail?.parsed.text).toContain(`Your Acme sign-in code: ${code}`);
    const verify = await t.app.inject({ method: 'POST', url: '/api/auth/otp/verify', payload: { email, code } });
    expect(verify.statusCode).toBe(200);
    expect(verify.json().accessToken).toEqual(expect.any(String));
  });

  it('reports delivery to the admin, reusing the pooled connection', async () => {
    const connections = smtp.connections;
    for (const to of ['ops@acme.test', 'ops2@acme.test', 'ops3@acme.test']) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/admin/test-email',
        headers: bearer(admin),
        payload: { to },
      });
      expect(response.json()).toEqual({
        ok: true,
        transport: 'smtp',
        to,
        messageId: expect.stringMatching(/^<.+@.+>$/),
      });
      const mail = smtp.received.at(-1);
      expect(mail?.rcptTo).toEqual([to]);
      expect(mail?.parsed.messageId).toBe(response.json().messageId);
      expect(mail?.parsed.subject).toBe('Test email from Acme');
    }
    expect(smtp.connections - connections).toBeLessThanOrEqual(1);
  });
});

describe('the SMTP transport when the server fails', () => {
  /** An app sending through `smtpUrl`, giving up on a send after `sendTimeoutMs` (room for a loaded machine). */
  const smtpApp = (smtpUrl: string, sendTimeoutMs = 10_000) =>
    buildTestApp({
      configuredMail: true,
      env: {
        MAIL_TRANSPORT: 'smtp',
        SMTP_URL: smtpUrl,
        EMAIL_SEND_TIMEOUT_MS: String(sendTimeoutMs),
        PRODUCT_NAME: 'Acme',
      },
    });
  const sendTestEmail = (t: TestApp, admin: Account) =>
    t.app.inject({ method: 'POST', url: '/api/admin/test-email', headers: bearer(admin), payload: {} });

  it('is down (connection refused): requests are answered as usual; the test email is a 503 naming the server', async () => {
    const port = await freePort();
    const t = await smtpApp(`smtp://127.0.0.1:${port}`);
    try {
      const admin = await registerAdmin(t.app, t.services.db);
      const forgot = await t.app.inject({
        method: 'POST',
        url: '/api/auth/password/forgot',
        payload: { email: admin.email },
      });
      expect(forgot.json()).toEqual({ ok: true });
      const response = await sendTestEmail(t, admin);
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({
        appCode: 'EMAIL_DELIVERY_FAILED',
        message: expect.stringMatching(
          new RegExp(`^Email delivery failed: cannot reach the SMTP server 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
        ),
      });
      await t.settle(); // the email's try failed: it waits to be retried
      expect((await t.services.jobs.counts())[0]?.deferred).toBeGreaterThanOrEqual(1);
    } finally {
      await t.close();
    }
  });

  it('hangs before its greeting: given up at EMAIL_SEND_TIMEOUT_MS, and the connection is closed', async () => {
    const silent = await startSilentServer();
    const t = await smtpApp(`smtp://127.0.0.1:${silent.port}`, 500);
    try {
      const admin = await registerAdmin(t.app, t.services.db);
      const otp = await t.app.inject({ method: 'POST', url: '/api/auth/otp/request', payload: { email: admin.email } });
      expect(otp.json()).toEqual({ ok: true });
      await t.settle(); // the email's try failed: it waits to be retried
      expect((await t.services.jobs.counts())[0]?.deferred).toBeGreaterThanOrEqual(1);

      const response = await sendTestEmail(t, admin);
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({
        appCode: 'EMAIL_DELIVERY_FAILED',
        message: 'Email delivery failed: the email provider did not answer within 500 ms',
      });
      // The abandoned sends did not leave connections hanging on the silent server.
      await expect.poll(() => silent.open).toBe(0);
      expect(silent.closed).toBeGreaterThan(0);
    } finally {
      await t.close();
      await silent.close();
    }
  });

  it('stops a send when its job is taken back (the job signal aborts): the try fails with that reason, the connection closes', async () => {
    const silent = await startSilentServer();
    // A bound far away: only the job's signal can end this send.
    const t = await buildTestApp({
      configuredMail: true,
      env: { MAIL_TRANSPORT: 'smtp', SMTP_URL: `smtp://127.0.0.1:${silent.port}`, EMAIL_SEND_TIMEOUT_MS: '60000' },
    });
    try {
      await t.services.db.insertInto('users').values({ email: 'ada@acme.test' }).execute();
      const job = new AbortController();
      const sending = runEmailJob(t.services, {
        id: '01900000-0000-7000-8000-00000000e0b1',
        data: { kind: 'welcome', email: 'ada@acme.test' },
        signal: job.signal,
      });
      await expect.poll(() => silent.open).toBe(1);
      job.abort(new Error('the job expired'));
      await expect(sending).rejects.toThrow('the job expired');
      await expect.poll(() => silent.open).toBe(0);
    } finally {
      await t.close();
      await silent.close();
    }
  });

  it('refuses the login: a 503 that says so, and neither it nor the log holds the password', async () => {
    const password = 'p@ss/w0rd:1';
    const smtp = await startSmtpServer({ auth: { user: 'mailer', pass: password } });
    const wrong = 'wr0ng/p@ss';
    const t = await smtpApp(`smtp://mailer:${encodeURIComponent(wrong)}@127.0.0.1:${smtp.port}`);
    const right = await smtpApp(`smtp://mailer:${encodeURIComponent(password)}@127.0.0.1:${smtp.port}`);
    try {
      const admin = await registerAdmin(t.app, t.services.db);
      const response = await sendTestEmail(t, admin);
      expect(response.statusCode).toBe(503);
      expect(response.json().appCode).toBe('EMAIL_DELIVERY_FAILED');
      expect(response.json().message).toMatch(
        /^Email delivery failed: the SMTP server 127\.0\.0\.1:\d+ refused the user and password of SMTP_URL: .*535/,
      );
      expect(response.body).not.toContain('wr0ng');
      expect(smtp.received).toHaveLength(0);

      // An email job's try fails with the same reason, without the password (what the job keeps).
      const server = { host: '127.0.0.1', port: smtp.port, secure: false, requireTls: false };
      const mailer = new Mailer(
        new SmtpTransport({ ...server, auth: { user: 'mailer', pass: wrong }, timeoutMs: 10_000 }),
        { from: 'hello@acme.test', timeoutMs: 10_000 },
      );
      const failure = await mailer.send(testEmail('ada@acme.test')).then(
        () => undefined,
        (error: unknown) => error as Error & { smtpCode?: string; responseCode?: number },
      );
      await mailer.close();
      expect(failure).toMatchObject({ name: 'SmtpError', smtpCode: 'EAUTH', responseCode: 535 });
      expect(failure?.message).toMatch(/refused the user and password of SMTP_URL: .*535/);
      expect(JSON.stringify({ message: failure?.message, ...failure })).not.toContain('wr0ng');

      // The right password, percent-encoded in the URL, gets through.
      const rightAdmin = await registerAdmin(right.app, right.services.db);
      expect((await sendTestEmail(right, rightAdmin)).json()).toMatchObject({ ok: true, transport: 'smtp' });
      expect(smtp.received.at(-1)?.user).toBe('mailer');
    } finally {
      await Promise.all([t.close(), right.close()]);
      await smtp.close();
    }
  });
});

describe('the SMTP transport over TLS', () => {
  const auth = { user: 'mailer', pass: 's3cret' };
  const send = async (transport: SmtpTransport, to = 'ada@acme.test') => {
    const mailer = new Mailer(transport, { from: 'hello@acme.test', timeoutMs: 10_000 });
    try {
      return await mailer.send(testEmail(to));
    } finally {
      await mailer.close();
    }
  };
  const transport = (port: number, options: { secure: boolean; requireTls: boolean; trusted?: boolean }) =>
    new SmtpTransport({
      host: '127.0.0.1',
      port,
      secure: options.secure,
      requireTls: options.requireTls,
      auth,
      timeoutMs: 10_000,
      ...(options.trusted !== false && { tls: { ca: LOCALHOST_TLS.cert } }),
    });

  it('speaks TLS from the first byte with smtps://', async () => {
    const smtp = await startSmtpServer({ auth, tls: 'implicit' });
    try {
      await send(transport(smtp.port, { secure: true, requireTls: false }));
      expect(smtp.received).toMatchObject([{ secure: true, user: 'mailer', rcptTo: ['ada@acme.test'] }]);
    } finally {
      await smtp.close();
    }
  });

  it('upgrades with STARTTLS before signing in', async () => {
    const smtp = await startSmtpServer({ auth, tls: 'starttls' });
    try {
      await send(transport(smtp.port, { secure: false, requireTls: true }));
      expect(smtp.received).toMatchObject([{ secure: true, user: 'mailer' }]);
    } finally {
      await smtp.close();
    }
  });

  it('never sends the password to a server without STARTTLS when TLS is required', async () => {
    const smtp = await startSmtpServer({ auth, tls: 'none' });
    try {
      await expect(send(transport(smtp.port, { secure: false, requireTls: true }))).rejects.toThrow(
        /^TLS with the SMTP server 127\.0\.0\.1:\d+ failed/,
      );
      expect(smtp.authAttempts).toBe(0);
      expect(smtp.received).toHaveLength(0);
    } finally {
      await smtp.close();
    }
  });

  it('checks the server certificate', async () => {
    const smtp = await startSmtpServer({ auth, tls: 'implicit' });
    try {
      await expect(send(transport(smtp.port, { secure: true, requireTls: false, trusted: false }))).rejects.toThrow(
        /^TLS with the SMTP server 127\.0\.0\.1:\d+ failed: self-signed certificate/,
      );
      expect(smtp.authAttempts).toBe(0);
    } finally {
      await smtp.close();
    }
  });
});

describe('MAIL_TRANSPORT and SMTP_URL', () => {
  const delivery = (env: Record<string, string>) => {
    const result = loadConfig(env);
    return result.ok ? result.config.email.delivery : result.problems.join('\n');
  };

  it('reads the server, the port, TLS and the percent-encoded credentials from SMTP_URL', () => {
    expect(
      delivery({
        MAIL_TRANSPORT: 'smtp',
        SMTP_URL: 'smtp://AKIA123:wJal%2Fr%2BXUtn%40@email-smtp.eu-west-1.amazonaws.com',
      }),
    ).toEqual({
      transport: 'smtp',
      server: {
        host: 'email-smtp.eu-west-1.amazonaws.com',
        port: 587,
        secure: false,
        requireTls: true, // a password never travels in plaintext
        auth: { user: 'AKIA123', pass: 'wJal/r+XUtn@' },
      },
    });
    expect(delivery({ SMTP_URL: 'smtps://token:token@smtp.postmarkapp.com' })).toMatchObject({
      transport: 'smtp',
      server: { port: 465, secure: true, requireTls: false },
    });
    expect(delivery({ SMTP_URL: 'smtp://mailpit:1025' })).toMatchObject({
      server: { host: 'mailpit', port: 1025, secure: false, requireTls: false, auth: undefined },
    });
    // A relay on this machine may take credentials in plaintext: they never cross a network.
    expect(delivery({ SMTP_URL: 'smtp://u:p@127.0.0.1:2525' })).toMatchObject({ server: { requireTls: false } });
    // A name that merely starts like a loopback address is somewhere else on the network.
    expect(delivery({ SMTP_URL: 'smtp://u:p@127.0.0.1.nip.io:2525' })).toMatchObject({ server: { requireTls: true } });
    expect(delivery({ SMTP_URL: 'smtp://[::1]:25' })).toMatchObject({ server: { host: '::1', port: 25 } });
  });

  it('takes the one provider configured, MAIL_TRANSPORT to choose, and the outbox outside production', () => {
    expect(delivery({})).toEqual({ transport: 'outbox' });
    expect(delivery({ RESEND_API_KEY: 're_1' })).toEqual({ transport: 'resend', apiKey: 're_1', baseUrl: undefined });
    expect(delivery({ SMTP_URL: 'smtp://mailpit:1025' })).toMatchObject({ transport: 'smtp' });
    const both = { RESEND_API_KEY: 're_1', SMTP_URL: 'smtp://mailpit:1025' };
    expect(delivery({ ...both, MAIL_TRANSPORT: 'resend' })).toMatchObject({ transport: 'resend' });
    expect(delivery({ ...both, MAIL_TRANSPORT: 'smtp' })).toMatchObject({ transport: 'smtp' });
    expect(delivery(both)).toMatch(/^MAIL_TRANSPORT: RESEND_API_KEY and SMTP_URL are both set: choose one/);
  });

  it.each([
    [{ MAIL_TRANSPORT: 'smtp' }, /^SMTP_URL: is required with MAIL_TRANSPORT=smtp, e\.g\. smtp:\/\//],
    [{ MAIL_TRANSPORT: 'resend' }, /^RESEND_API_KEY: is required with MAIL_TRANSPORT=resend/],
    [{ MAIL_TRANSPORT: 'sendgrid' }, /^MAIL_TRANSPORT: must be one of: resend, smtp \(got "sendgrid"\)$/],
    [
      { NODE_ENV: 'production' },
      /MAIL_TRANSPORT: is required in production .*smtp with SMTP_URL.*resend with RESEND_API_KEY/,
    ],
  ])('names what is missing: %o', (env, expected) => {
    expect(delivery(env)).toMatch(expected);
  });

  it.each([
    ['another scheme', 'http://mailer:hunter2@smtp.example.com', /must be smtp:\/\/user:password@host:587/],
    ['no URL at all', 'smtp.example.com:587', /must be smtp:\/\/user:password@host:587/],
    ['an unencoded "/" in the password', 'smtp://mailer:hun/ter2@smtp.example.com', /percent-encoded \(%2F/],
    ['a path', 'smtp://mailer:hunter2@smtp.example.com:587/mail', /must be smtp:\/\//],
    ['no host', 'smtp://', /has no host/],
    ['a user without a password', 'smtp://hunter2@smtp.example.com', /both a user and a password, or neither/],
    ['a broken escape', 'smtp://mailer:hunter2%zz@smtp.example.com', /malformed %-escape/],
  ])('refuses an SMTP_URL with %s, without echoing it', (_, url, expected) => {
    const problems = delivery({ MAIL_TRANSPORT: 'smtp', SMTP_URL: url });
    expect(problems).toMatch(/^SMTP_URL: /);
    expect(problems).toMatch(expected);
    expect(problems).not.toContain('hunter2');
  });

  it('stops the real process with the report, and no password in it', async () => {
    const server = spawnServer({ MAIL_TRANSPORT: 'smtp', SMTP_URL: 'smtp://mailer:hunter2@smtp.example.com:587/x' });
    expect(await server.exited).toBe(1);
    expect(server.output()).toMatch(/^Invalid configuration \(1 problem\):\n {2}- SMTP_URL: must be smtp:\/\//m);
    expect(server.output()).not.toContain('hunter2');
  });
});
