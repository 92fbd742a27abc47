import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/infra/kv/index.ts';
import { addressKey, createRateLimiter } from '../src/infra/rate-limiter.ts';
import { mailboxOf } from '../src/trpc/procedures.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  login,
  registerAccount,
  registerAdmin,
  storedKeys,
  type TestApp,
  uniqueEmail,
} from './helpers/index.ts';

const LIMITED = { RATE_LIMIT_AUTH_PER_MINUTE: '10', RATE_LIMIT_EMAIL_FAILURES_PER_MINUTE: '15', TRUST_PROXY: '1' };

function expectRateLimited(response: { statusCode: number; headers: Record<string, unknown> }) {
  expect(response.statusCode).toBe(429);
  const retryAfter = Number(response.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(response.headers['ratelimit-limit']).toBe('10');
  expect(response.headers['ratelimit-remaining']).toBe('0');
  expect(Number(response.headers['ratelimit-reset'])).toBe(retryAfter);
}

describe('rate limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: LIMITED });
  });
  afterAll(() => t.close());

  it('answers the 11th login in a minute from one IP with 429, Retry-After and RateLimit-* (REST)', async () => {
    const ip = { 'x-forwarded-for': '203.0.113.1' };
    for (let i = 0; i < 10; i++) {
      const response = await login(t.app, uniqueEmail(), 'Wrong-pass-1', ip);
      expect(response.statusCode).toBe(401);
      expect(response.headers['ratelimit-remaining']).toBe(String(9 - i));
    }
    const eleventh = await login(t.app, uniqueEmail(), 'Wrong-pass-1', ip);
    expectRateLimited(eleventh);
    expect(eleventh.json()).toMatchObject({
      code: 'TOO_MANY_REQUESTS',
      appCode: 'RATE_LIMITED',
      details: { retryAfterSeconds: expect.any(Number) },
    });
    // Another address is not affected.
    expect((await login(t.app, uniqueEmail(), 'Wrong-pass-1', { 'x-forwarded-for': '203.0.113.2' })).statusCode).toBe(
      401,
    );
  });

  it('limits an IPv6 client by its /64 (it picks any address in it), another /64 apart', async () => {
    const from = (address: string) => ({ 'x-forwarded-for': address });
    for (let i = 0; i < 10; i++) {
      const response = await login(t.app, uniqueEmail(), 'Wrong-pass-1', from(`2001:db8:1:2::${(i + 1).toString(16)}`));
      expect(response.statusCode).toBe(401);
    }
    expectRateLimited(await login(t.app, uniqueEmail(), 'Wrong-pass-1', from('2001:db8:1:2:ffff:ffff:ffff:ffff')));
    expect((await login(t.app, uniqueEmail(), 'Wrong-pass-1', from('2001:db8:1:3::1'))).statusCode).toBe(401);
  });

  it('limits over tRPC the same way', async () => {
    const ip = { 'x-forwarded-for': '203.0.113.3' };
    const call = () =>
      t.app.inject({
        method: 'POST',
        url: '/trpc/auth.login',
        headers: ip,
        payload: { email: uniqueEmail(), password: 'Wrong-pass-1' },
      });
    for (let i = 0; i < 10; i++) expect((await call()).statusCode).toBe(401);
    const eleventh = await call();
    expectRateLimited(eleventh);
    expect(eleventh.json().error.data).toMatchObject({
      code: 'TOO_MANY_REQUESTS',
      appCode: 'RATE_LIMITED',
      httpStatus: 429,
    });
  });

  it('counts every call of a tRPC batch: 12 logins in 4 batches of 3 get exactly 2 refusals', async () => {
    const ip = { 'x-forwarded-for': '203.0.113.4' };
    const statuses: number[] = [];
    for (let batch = 0; batch < 4; batch++) {
      const payload = Object.fromEntries(
        [0, 1, 2].map((i) => [String(i), { email: uniqueEmail(), password: 'Wrong-pass-1' }]),
      );
      const response = await t.app.inject({
        method: 'POST',
        url: '/trpc/auth.login,auth.login,auth.login?batch=1',
        headers: ip,
        payload,
      });
      for (const item of response.json() as { error: { data: { httpStatus: number } } }[])
        statuses.push(item.error.data.httpStatus);
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(2);
  });

  it('counts wrong passwords per email across many addresses, never the owner’s successes', async () => {
    const account = await registerAccount(t.app);
    const from = (i: number) => ({ 'x-forwarded-for': `198.51.100.${i}` });
    // Successes do not count: the owner signs in as often as the per-IP limit allows.
    for (let i = 0; i < 5; i++)
      expect((await login(t.app, account.email, account.password, from(1))).statusCode).toBe(200);
    for (let i = 0; i < 15; i++) {
      expect((await login(t.app, account.email, 'Wrong-pass-1', from(10 + i))).statusCode).toBe(401);
    }
    // The 16th wrong password for this email, from yet another address, is refused before it is checked.
    const refused = await login(t.app, account.email.toUpperCase(), 'Wrong-pass-1', from(100));
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['ratelimit-limit']).toBe('15');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('holds the per-email limit for wrong passwords sent all at once, from many addresses', async () => {
    const account = await registerAccount(t.app);
    // 40 guesses at the same moment: each would pass a count that only finished failures raise.
    const statuses = await Promise.all(
      Array.from(
        { length: 40 },
        async (_, i) =>
          (await login(t.app, account.email, 'Wrong-pass-1', { 'x-forwarded-for': `203.0.113.${i + 1}` })).statusCode,
      ),
    );
    expect(statuses.filter((status) => status === 401)).toHaveLength(15);
    expect(statuses.filter((status) => status === 429)).toHaveLength(25);
  });

  it('does not let a stranger lock the owner out: the stranger’s address is throttled first', async () => {
    const account = await registerAccount(t.app);
    const stranger = { 'x-forwarded-for': '198.51.100.201' };
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++)
      statuses.push((await login(t.app, account.email, 'Wrong-pass-1', stranger)).statusCode);
    expect(statuses.filter((status) => status === 401)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(10);
    const owner = await login(t.app, account.email, account.password, { 'x-forwarded-for': '198.51.100.202' });
    expect(owner.statusCode).toBe(200);
  });

  it('keeps letting the owner in where signed in when strangers on many addresses used up the account’s failures', async () => {
    const account = await registerAccount(t.app);
    const from = (address: string) => ({ 'x-forwarded-for': address });
    const home = from('198.18.0.1');
    const office = from('2001:db8:77:1::10');
    expect((await login(t.app, account.email, account.password, home)).statusCode).toBe(200);
    expect((await login(t.app, account.email, account.password, office)).statusCode).toBe(200);
    // Strangers on two addresses use up the account's 15 wrong passwords a minute.
    for (let i = 0; i < 15; i++)
      expect((await login(t.app, account.email, 'Wrong-pass-1', from(`198.18.1.${i % 2}`))).statusCode).toBe(401);
    // Any other address is refused before its password is checked, the right one too.
    const elsewhere = await login(t.app, account.email, account.password, from('198.18.0.2'));
    expect(elsewhere.statusCode).toBe(429);
    expect(elsewhere.headers['ratelimit-limit']).toBe('15');
    // The owner's addresses still have their passwords checked (an IPv6 one by its /64).
    expect((await login(t.app, account.email, 'Wrong-pass-1', home)).statusCode).toBe(401);
    expect((await login(t.app, account.email, account.password, home)).statusCode).toBe(200);
    expect((await login(t.app, account.email, account.password, from('2001:db8:77:1::99'))).statusCode).toBe(200);
    // An address is known to one account only.
    const other = await registerAccount(t.app);
    for (let i = 0; i < 15; i++)
      expect((await login(t.app, other.email, 'Wrong-pass-1', from(`198.18.2.${i % 2}`))).statusCode).toBe(401);
    expect((await login(t.app, other.email, other.password, home)).statusCode).toBe(429);
    // Signed out everywhere (a thief's session ended with the owner's): no address is let in.
    const signedIn = await login(t.app, account.email, account.password, home);
    const logoutAll = await t.app.inject({
      method: 'POST',
      url: '/api/auth/logout-all',
      headers: { authorization: `Bearer ${signedIn.json().accessToken}` },
    });
    expect(logoutAll.statusCode).toBe(200);
    expect((await login(t.app, account.email, account.password, home)).statusCode).toBe(429);
  });

  it('limits the test emails an administrator sends, by sender and by the recipient’s inbox', async () => {
    const [first, second] = [await registerAdmin(t.app, t.services.db), await registerAdmin(t.app, t.services.db)];
    const send = (admin: Account, to: string, from: number) =>
      t.app.inject({
        method: 'POST',
        url: '/api/admin/test-email',
        headers: { ...bearer(admin), 'x-forwarded-for': `198.51.100.${from}` },
        payload: { to },
      });
    const inbox = uniqueEmail('test-email');
    for (let i = 0; i < 10; i++) expect((await send(first, inbox, i + 1)).statusCode).toBe(200);
    // That inbox has had its ten, from anyone; the first sender has had ten, to any inbox.
    expectRateLimited(await send(second, inbox, 50));
    expectRateLimited(await send(first, uniqueEmail('test-email'), 51));
    expect((await send(second, uniqueEmail('test-email'), 52)).statusCode).toBe(200);
  });

  it('limits the emails sent to one inbox from many addresses, its +tag variants (and Gmail’s dots) as one', async () => {
    const forgot = (email: string, from: number) =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/password/forgot',
        headers: { 'x-forwarded-for': `192.0.2.${from}` },
        payload: { email },
      });
    const name = uniqueEmail().split('@')[0] as string;
    for (let i = 0; i < 10; i++) expect((await forgot(`${name}+${i}@example.com`, i + 1)).statusCode).toBe(200);
    expectRateLimited(await forgot(`${name}@example.com`, 50));
    expectRateLimited(await forgot(`${name}+other@Example.com`, 51));
    // Another inbox is not affected; nor are two Gmail addresses that differ by more than dots.
    expect((await forgot(`${name}x@example.com`, 52)).statusCode).toBe(200);
    const gmail = `${name.replaceAll(/[^a-z0-9]/g, '')}ab`;
    for (let i = 0; i < 10; i++) {
      const dotted = `${gmail.slice(0, 2)}${'.'.repeat(i % 2)}${gmail.slice(2)}+${i}@${i % 3 ? 'gmail' : 'googlemail'}.com`;
      expect((await forgot(dotted, 60 + i)).statusCode).toBe(200);
    }
    expectRateLimited(await forgot(`${gmail}@gmail.com`, 80));
    expect((await forgot(`${gmail}c@gmail.com`, 81)).statusCode).toBe(200);
  });

  it('puts the signed-in password checks under the credential limits', async () => {
    const account = await registerAccount(t.app);
    const ip = { 'x-forwarded-for': '198.51.100.210' };
    const change = (currentPassword: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/password/change',
        headers: { ...bearer(account), ...ip },
        payload: { currentPassword, newPassword: 'Another-pass-2' },
      });
    for (let i = 0; i < 10; i++) expect((await change('Wrong-pass-1')).statusCode).toBe(401);
    expectRateLimited(await change('Wrong-pass-1'));
    const deleteMe = await t.app.inject({
      method: 'DELETE',
      url: '/api/users/me',
      headers: { ...bearer(account), ...ip },
      payload: { password: 'Wrong-pass-1' },
    });
    expectRateLimited(deleteMe);
  });

  it('builds email keys from bounded, hashed values: a huge email adds nothing big to the store', async () => {
    const huge = `${'a'.repeat(1_000_000)}@example.com`;
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'x-forwarded-for': '198.51.100.220' },
      payload: { email: huge, password: 'Wrong-pass-1' },
    });
    expect(response.statusCode).toBe(400);
    const keys = await storedKeys(t);
    expect(keys.length).toBeGreaterThan(0);
    expect(Math.max(...keys.map((key) => key.length))).toBeLessThan(200);

    // A long address the limits do count (at most 320 characters) is keyed by its hash alone.
    const local = `${'b'.repeat(250)}-${randomUUID()}`;
    const before = new Set(await storedKeys(t));
    expect(
      (await login(t.app, `${local}@example.com`, 'Wrong-pass-1', { 'x-forwarded-for': '198.51.100.221' })).statusCode,
    ).toBe(401);
    const added = (await storedKeys(t)).filter((key) => !before.has(key));
    expect(added.filter((key) => /(^|:)email:[\w-]{43}$/.test(key))).toHaveLength(1);
    expect(added.filter((key) => key.includes(local.slice(-36)))).toEqual([]);
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY is on', async () => {
    const untrusting = await buildTestApp({ env: { RATE_LIMIT_AUTH_PER_MINUTE: '10', TRUST_PROXY: 'false' } });
    try {
      for (let i = 0; i < 10; i++)
        await login(untrusting.app, uniqueEmail(), 'Wrong-pass-1', { 'x-forwarded-for': `192.0.2.${i}` });
      expectRateLimited(
        await login(untrusting.app, uniqueEmail(), 'Wrong-pass-1', { 'x-forwarded-for': '192.0.2.99' }),
      );
    } finally {
      await untrusting.close();
    }
  });

  it('applies the default limit to every other procedure, and none to health probes', async () => {
    const strict = await buildTestApp({ env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '3' } });
    try {
      const account = await registerAccount(strict.app); // 1
      const me = () => strict.app.inject({ method: 'GET', url: '/api/users/me', headers: bearer(account) });
      // The plain routes (file bytes, SSO redirects) draw from the same budget, with the same headers.
      const picture = () => strict.app.inject({ method: 'GET', url: `/api/files/${randomUUID()}/content` });
      const missing = await picture(); // 2
      expect([missing.statusCode, missing.headers['ratelimit-remaining']]).toEqual([404, '1']);
      expect((await me()).statusCode).toBe(200); // 3
      const refused = await me();
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['ratelimit-limit']).toBe('3');
      const plain = [
        await picture(),
        await strict.app.inject({ method: 'GET', url: '/api/auth/oauth/github/start' }),
        await strict.app.inject({ method: 'GET', url: `/api/files/${randomUUID()}/content`, headers: bearer(account) }),
      ];
      for (const response of plain) {
        expect([response.statusCode, response.headers['ratelimit-limit']]).toEqual([429, '3']);
        expect(response.headers['ratelimit-remaining']).toBe('0');
        expect(Number(response.headers['ratelimit-reset'])).toBe(Number(response.headers['retry-after']));
      }
      for (let i = 0; i < 5; i++)
        expect((await strict.app.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

describe('the inbox of an address (the key of the emails sent to it)', () => {
  it('drops a +tag, and dots at Gmail only', () => {
    expect(mailboxOf('me+news@example.com')).toBe('me@example.com');
    expect(mailboxOf('first.last+a+b@example.com')).toBe('first.last@example.com');
    expect(mailboxOf('first.last+x@googlemail.com')).toBe('firstlast@gmail.com');
    expect(mailboxOf('f.i.r.s.t@gmail.com')).toBe('first@gmail.com');
    // A local part that is only a tag is its own; the last @ splits a quoted one.
    expect(mailboxOf('+tag@example.com')).toBe('+tag@example.com');
    expect(mailboxOf('"a@b"+c@example.com')).toBe('"a@b"@example.com');
  });
});

describe('the key of a client address', () => {
  it('is the IPv4 address, or the /64 of an IPv6 one, however it is written', () => {
    expect(addressKey('203.0.113.7')).toBe('ip:203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('ip:203.0.113.7');
    const network = 'ip:2001:db8:0:2a::/64';
    for (const address of [
      '2001:db8:0:2a::1',
      '2001:DB8:0:2A:FFFF:FFFF:FFFF:FFFF',
      '2001:0db8:0000:002a:0000:0000:0000:0001',
      '2001:db8::2a:1:2:3:4',
      '2001:db8:0:2a::1%eth0',
      '2001:db8:0:2a::192.0.2.1',
    ]) {
      expect(addressKey(address), address).toBe(network);
    }
    expect(addressKey('::1')).toBe('ip:0:0:0:0::/64');
    expect(addressKey('2001:db8::')).toBe('ip:2001:db8:0:0::/64');
    expect(addressKey('2001:db8:0:2b::1')).not.toBe(network);
    // What a trusted proxy passes on unchecked may be malformed: a key all the same, never an error.
    for (const malformed of ['1:2:3:4:5:6:7::8:9', ':::', 'not:an:address']) {
      expect(addressKey(malformed)).toMatch(/^ip:/);
    }
  });
});

describe('a rate limiter', () => {
  it('gives back a check counted in a window that has since ended without lowering the next window', async () => {
    let now = 0;
    const limiter = createRateLimiter(new MemoryStore({ now: () => now }), { name: 'failures', perMinute: 2 });
    expect((await limiter.consume('account')).allowed).toBe(true);
    now += 61_000; // the check outlived its window
    await limiter.giveBack('account');
    expect((await limiter.consume('account')).allowed).toBe(true);
    expect((await limiter.consume('account')).allowed).toBe(true);
    expect((await limiter.consume('account')).allowed).toBe(false);
  });
});
