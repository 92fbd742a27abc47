import { grantRole, startTestServer, type TestApp } from '@app/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, getAppErrorCode, memoryTokenStore } from '../src/index.ts';

const email = (tag: string) => `${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
const tokenIn = (text: string | undefined, path: string) =>
  new RegExp(`${path}\\?token=([\\w-]+)`).exec(text ?? '')?.[1] as string;
const codeIn = (text: string | undefined) => /code: (\d{6})/.exec(text ?? '')?.[1] as string;

describe('email flows through the SDK', () => {
  let server: TestApp & { url: string };
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('signs up with a one-time code, keeping the tokens', async () => {
    const store = memoryTokenStore();
    const api = createClient({ url: server.url, auth: { tokenStore: store } });
    const address = email('otp');
    expect(await api.auth.otp.request.mutate({ email: address })).toEqual({ ok: true });
    await server.settle();
    const code = codeIn(server.mail.last(address, 'one-time-code')?.text);
    const wrong = code === '000000' ? '000001' : '000000';
    expect(
      getAppErrorCode(await api.auth.otp.verify.mutate({ email: address, code: wrong }).catch((e: unknown) => e)),
    ).toBe('INVALID_CODE');
    const result = await api.auth.otp.verify.mutate({ email: address, code });
    expect(result.created).toBe(true);
    expect((await store.get())?.accessToken).toBe(result.accessToken);
    expect((await api.users.me.query()).emailVerified).toBe(true);
  });

  it('verifies an email and resends the verification', async () => {
    const api = createClient({ url: server.url, auth: { tokenStore: memoryTokenStore() } });
    const address = email('verify');
    await api.auth.register.mutate({ email: address, password: 'Sdk-pass-123' });
    await server.settle();
    const sentAtRegistration = tokenIn(server.mail.last(address, 'verify-email')?.text, '/verify-email');
    await api.auth.resendVerification.mutate();
    await server.settle();
    expect(server.mail.to(address)).toHaveLength(2);
    const token = tokenIn(server.mail.last(address, 'verify-email')?.text, '/verify-email');
    expect(token).not.toBe(sentAtRegistration);
    await api.auth.verifyEmail.mutate({ token });
    expect((await api.users.me.query()).emailVerified).toBe(true);
    expect(getAppErrorCode(await api.auth.verifyEmail.mutate({ token }).catch((e: unknown) => e))).toBe(
      'INVALID_TOKEN',
    );
  });

  it('resets a forgotten password', async () => {
    const api = createClient({ url: server.url });
    const address = email('reset');
    await api.auth.register.mutate({ email: address, password: 'Sdk-pass-123' });
    expect(await api.auth.forgotPassword.mutate({ email: address })).toEqual({ ok: true });
    expect(await api.auth.forgotPassword.mutate({ email: email('nobody') })).toEqual({ ok: true });
    await server.settle();
    const token = tokenIn(server.mail.last(address, 'reset-password')?.text, '/reset-password');
    await api.auth.resetPassword.mutate({ token, newPassword: 'Reset-pass-456' });
    expect((await api.auth.login.mutate({ email: address, password: 'Reset-pass-456' })).user.email).toBe(address);
  });

  it('lets an admin generate and revoke the review code, and send a test email', async () => {
    const admin = createClient({ url: server.url, auth: { tokenStore: memoryTokenStore() } });
    const registered = await admin.auth.register.mutate({ email: email('admin'), password: 'Sdk-pass-123' });
    await grantRole(server.services.db, registered.user.id, 'admin');
    const review = await admin.admin.appleReviewOtp.generate.mutate();
    const anonymous = createClient({ url: server.url });
    expect((await anonymous.auth.otp.verify.mutate({ email: review.email, code: review.code })).user.email).toBe(
      review.email,
    );
    await admin.admin.appleReviewOtp.revoke.mutate();
    expect(getAppErrorCode(await admin.admin.appleReviewOtp.revoke.mutate().catch((e: unknown) => e))).toBe(
      'NOT_FOUND',
    );
    const sent = await admin.admin.sendTestEmail.mutate({});
    expect(sent).toMatchObject({ ok: true, transport: 'memory', to: registered.user.email });
  });
});
