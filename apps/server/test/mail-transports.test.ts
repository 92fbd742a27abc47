import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxTransport } from '../src/infra/mail/index.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  registerAccount,
  registerAdmin,
  startFakeResend,
  type TestApp,
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
        EMAIL_SEND_TIMEOUT_MS: '500',
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
    'a %s provider does not break the request, nor change its answer',
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
      // The answers came back while the slow provider still held the emails: nobody waited.
      if (mode === 'slow') expect(t.services.mailer.pending).toBeGreaterThan(0);
      await t.settle(); // the background sends give up at the 500 ms timeout, logged
      expect(t.services.mailer.pending).toBe(0);
    },
  );

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
    expect(slow.json().message).toMatch(/did not answer within 500 ms/);
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
