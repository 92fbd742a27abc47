import { hashPassword } from '@app/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Account,
  bearer,
  buildTestApp,
  login,
  registerAccount,
  registerAdmin,
  type TestApp,
  whileHolding,
} from './helpers/index.ts';

describe('users', () => {
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    t = await buildTestApp();
    admin = await registerAdmin(t.app, t.services.db);
  });
  afterAll(() => t.close());

  const as = (account: Account, method: 'GET' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    t.app.inject({ method, url, headers: bearer(account), ...(payload && { payload }) });

  describe('me', () => {
    it('returns the caller with roles and permissions, and renames them', async () => {
      const account = await registerAccount(t.app, { name: 'Ada' });
      expect((await as(account, 'GET', '/api/users/me')).json()).toMatchObject({
        id: account.id,
        email: account.email,
        name: 'Ada',
        emailVerified: false,
        disabled: false,
        roles: ['user'],
        permissions: [],
      });
      const renamed = await as(account, 'PATCH', '/api/users/me', { name: '  Ada Lovelace ' });
      expect(renamed.json().name).toBe('Ada Lovelace');
      expect((await as(account, 'PATCH', '/api/users/me', { name: null })).json().name).toBeNull();
      expect((await as(account, 'PATCH', '/api/users/me', { name: 'x'.repeat(101) })).statusCode).toBe(400);
      // One line people read: no line break, escape, bidi override or zero-width space, and something visible.
      const refusals = {
        'Ada\nAdmin': 'must not contain control characters',
        'Ada \u001b[31m': 'must not contain control characters',
        'Ada \u202Enimda': 'must not contain invisible formatting characters',
        '\u200B': 'must not contain invisible formatting characters',
        '\u200D\u200C': 'must contain a visible character',
        'Ada\u2028Admin': 'must not contain control characters',
        '\u3164': 'must not contain invisible formatting characters',
        'Ada \u206A': 'must not contain invisible formatting characters',
      };
      for (const [name, message] of Object.entries(refusals)) {
        const refused = await as(account, 'PATCH', '/api/users/me', { name });
        expect(refused.statusCode, JSON.stringify(name)).toBe(400);
        expect(refused.json().issues, JSON.stringify(name)).toEqual([expect.objectContaining({ message })]);
      }
      // Scripts and emoji that use joiners and direction marks are names too.
      for (const name of ['👩‍💻 Ada', 'नमस्ते', 'میرزا\u200Cعلی', 'שלום\u200F Ada', '🏴󠁧󠁢󠁳󠁣󠁴󠁿']) {
        expect((await as(account, 'PATCH', '/api/users/me', { name })).json().name, name).toBe(name);
      }
    });

    it('deletes the account with its password, ending its sessions and removing its data', async () => {
      const account = await registerAccount(t.app);
      await t.app.inject({ method: 'POST', url: '/api/notes', headers: bearer(account), payload: { title: 'mine' } });
      const wrong = await as(account, 'DELETE', '/api/users/me', { password: 'Wrong-pass-1' });
      expect(wrong.statusCode).toBe(401);
      expect((await as(account, 'GET', '/api/users/me')).statusCode).toBe(200);
      const missing = await as(account, 'DELETE', '/api/users/me');
      expect(missing.json().appCode).toBe('INVALID_CREDENTIALS');
      // Never from the URL: a password there ends up in proxy logs.
      const inUrl = await as(account, 'DELETE', `/api/users/me?password=${encodeURIComponent(account.password)}`);
      expect(inUrl.json().appCode).toBe('INVALID_CREDENTIALS');

      const deleted = await as(account, 'DELETE', '/api/users/me', { password: account.password });
      expect(deleted.statusCode).toBe(200);
      expect((await as(account, 'GET', '/api/users/me')).json().appCode).toBe('SESSION_REVOKED');
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(401);
      const notes = await t.services.db.selectFrom('notes').select('id').where('owner_id', '=', account.id).execute();
      expect(notes).toEqual([]);
    });

    it('never deletes an account whose password was reset while the deletion was checked', async () => {
      const account = await registerAccount(t.app);
      const resetTo = await hashPassword('Owner-reset-4');
      // The owner's reset, committed once the deletion has checked the old password.
      const deletion = await whileHolding(
        t.services.db,
        (trx) => trx.updateTable('users').set({ password_hash: resetTo }).where('id', '=', account.id).execute(),
        () => as(account, 'DELETE', '/api/users/me', { password: account.password }),
      );
      expect(deletion.json().appCode).toBe('INVALID_CREDENTIALS');
      expect((await login(t.app, account.email, 'Owner-reset-4')).statusCode).toBe(200);
    });

    it('deletes a password-less account without a password (over tRPC too)', async () => {
      const account = await registerAccount(t.app);
      await t.services.db.updateTable('users').set({ password_hash: null }).where('id', '=', account.id).execute();
      const response = await t.app.inject({
        method: 'POST',
        url: '/trpc/users.deleteMe',
        headers: bearer(account),
        payload: {},
      });
      expect(response.statusCode).toBe(200);
      expect(
        await t.services.db.selectFrom('users').select('id').where('id', '=', account.id).executeTakeFirst(),
      ).toBeUndefined();
    });
    it('signs out a caller whose account is gone under a live token (a database reset): 401, never 404', async () => {
      const account = await registerAccount(t.app);
      // What `pnpm db:reset` does under a running server: the row goes, the app is not told.
      await t.services.db.deleteFrom('users').where('id', '=', account.id).execute();
      const calls = [
        await as(account, 'GET', '/api/users/me'),
        await as(account, 'GET', '/api/users'), // permission-gated: signed out, not forbidden
        await as(account, 'PATCH', '/api/users/me', { name: 'Ghost' }),
        await as(account, 'DELETE', '/api/users/me', { password: account.password }),
        await t.app.inject({
          method: 'POST',
          url: '/api/auth/password/change',
          headers: bearer(account),
          payload: { currentPassword: account.password, newPassword: 'Another-pass-2' },
        }),
        await t.app.inject({ method: 'POST', url: '/api/notes', headers: bearer(account), payload: { title: 'x' } }),
      ];
      for (const response of calls) {
        expect({ status: response.statusCode, appCode: response.json().appCode }).toEqual({
          status: 401,
          appCode: 'SESSION_REVOKED',
        });
      }
    });
  });

  describe('admin', () => {
    it('lists users newest first, page by page, with search', async () => {
      const tag = `page${Date.now()}`;
      const made: Account[] = [];
      for (let i = 0; i < 5; i++)
        made.push(await registerAccount(t.app, { email: `${tag}-${i}@example.com`, name: `Pager ${i}` }));
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `/api/users?limit=2&search=${tag}${cursor ? `&cursor=${cursor}` : ''}`;
        const page = (await as(admin, 'GET', url)).json() as { items: { id: string }[]; nextCursor: string | null };
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((u) => u.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual(made.map((a) => a.id).reverse());
      const byName = (await as(admin, 'GET', '/api/users?search=pager%203')).json();
      expect(byName.items.map((u: { id: string }) => u.id)).toEqual([made[3]?.id]);
    });

    it.each([
      ['limit=0', 400],
      ['limit=101', 400],
      ['limit=abc', 400],
      ['cursor=not-a-uuid', 400],
      [`search=${'x'.repeat(201)}`, 400],
      ["search=%25' OR 1=1 --", 200],
    ])('answers %s with %i', async (query, status) => {
      const response = await as(admin, 'GET', `/api/users?${query}`);
      expect(response.statusCode).toBe(status);
      if (status === 200) expect(response.json().items).toEqual([]);
    });

    it('treats LIKE wildcards in a search literally', async () => {
      expect((await as(admin, 'GET', '/api/users?search=%25')).json().items).toEqual([]);
      expect((await as(admin, 'GET', '/api/users?search=_')).json().items).toEqual([]);
    });

    it('gets and changes one user, 404 for a missing one', async () => {
      const account = await registerAccount(t.app);
      expect((await as(admin, 'GET', `/api/users/${account.id}`)).json().email).toBe(account.email);
      const missing = '01900000-0000-7000-8000-000000000000';
      expect((await as(admin, 'GET', `/api/users/${missing}`)).statusCode).toBe(404);
      const update = await as(admin, 'PATCH', `/api/users/${missing}`, { name: 'Nobody' });
      expect(update.statusCode).toBe(404);
      expect(update.json().appCode).toBe('NOT_FOUND');
    });

    it('disables a user, ending their sessions at once; enabling lets them sign in again', async () => {
      const account = await registerAccount(t.app);
      const disabled = await as(admin, 'PATCH', `/api/users/${account.id}`, { disabled: true });
      expect(disabled.json().disabled).toBe(true);
      expect((await as(account, 'GET', '/api/users/me')).json().appCode).toBe('SESSION_REVOKED');
      expect((await login(t.app, account.email, account.password)).json().appCode).toBe('ACCOUNT_DISABLED');
      await as(admin, 'PATCH', `/api/users/${account.id}`, { disabled: false });
      expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
    });

    it('deletes a user, ending their sessions; a second delete is 404', async () => {
      const account = await registerAccount(t.app);
      expect((await as(admin, 'DELETE', `/api/users/${account.id}`)).statusCode).toBe(200);
      expect((await as(account, 'GET', '/api/users/me')).json().appCode).toBe('SESSION_REVOKED');
      expect((await as(admin, 'DELETE', `/api/users/${account.id}`)).statusCode).toBe(404);
    });

    it('never coerces REST bodies: "false" is not a boolean, on REST or, afterwards, on tRPC', async () => {
      const account = await registerAccount(t.app);
      const rest = await as(admin, 'PATCH', `/api/users/${account.id}`, { disabled: 'false' });
      expect(rest.statusCode).toBe(400);
      const trpc = await t.app.inject({
        method: 'POST',
        url: '/trpc/users.update',
        headers: bearer(admin),
        payload: { id: account.id, disabled: 'false' },
      });
      expect(trpc.statusCode).toBe(400);
      expect((await as(admin, 'GET', `/api/users/${account.id}`)).json().disabled).toBe(false);
    });

    it('converts query-string numbers exactly, refusing anything else', async () => {
      expect((await as(admin, 'GET', '/api/users?limit=2')).json().items.length).toBeLessThanOrEqual(2);
      for (const limit of ['2abc', '1e400', '', ' 3'])
        expect((await as(admin, 'GET', `/api/users?limit=${limit}`)).statusCode).toBe(400);
    });

    it('refuses wrong types without changing anything', async () => {
      const account = await registerAccount(t.app, { name: 'Before' });
      for (const payload of [{ disabled: 'yes' }, { name: 42 }, { name: { $ne: null } }, { disabled: [true] }]) {
        expect((await as(admin, 'PATCH', `/api/users/${account.id}`, payload)).statusCode).toBe(400);
      }
      expect((await as(admin, 'GET', `/api/users/${account.id}`)).json()).toMatchObject({
        name: 'Before',
        disabled: false,
      });
    });
  });
});
