/**
 * Administering users beyond one at a time: archiving and restoring accounts, and the bulk
 * procedures (createMany, updateMany, deleteMany), over REST and over tRPC.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Account,
  bearer,
  buildTestApp,
  grantRole,
  login,
  registerAccount,
  registerAdmin,
  type TestApp,
  uniqueEmail,
  whileHolding,
} from './helpers/index.ts';

const MISSING = '01900000-0000-7000-8000-000000000000';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
/** A JSON answer, read loosely: the assertions say what it must hold. */
// biome-ignore lint/suspicious/noExplicitAny: the assertions check the shape
type Answer = any;

interface BatchResult {
  index: number;
  ok: boolean;
  id?: string;
  user?: Answer;
  error?: { appCode: string; message: string; issues?: { path: (string | number)[]; message: string }[] };
}

/** Calls over REST and tRPC as an account, on one app. */
function caller(t: () => TestApp) {
  const rest = (account: Account, method: Method, url: string, payload?: unknown) =>
    t().app.inject({
      method,
      url,
      headers: bearer(account),
      ...(payload !== undefined && { payload: payload as object }),
    });
  /** As tRPC's client sends it: JSON, with an empty body when there is no input. */
  const mutate = (account: Account, path: string, input?: unknown) =>
    t().app.inject({
      method: 'POST',
      url: `/trpc/${path}`,
      headers: { ...bearer(account), 'content-type': 'application/json' },
      payload: input === undefined ? '' : JSON.stringify(input),
    });
  const query = (account: Account, path: string, input: unknown) =>
    t().app.inject({
      method: 'GET',
      url: input === undefined ? `/trpc/${path}` : `/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`,
      headers: bearer(account),
    });
  return { rest, mutate, query };
}

describe('archiving and restoring accounts', () => {
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '100000' } });
    admin = await registerAdmin(t.app, t.services.db);
  });
  afterAll(() => t.close());
  const { rest, mutate, query } = caller(() => t);

  const me = (account: Account) => rest(account, 'GET', '/api/users/me');
  const listIds = async (url: string) =>
    ((await rest(admin, 'GET', url)).json() as { items: { id: string }[] }).items.map((user) => user.id);
  const refresh = (account: Account) =>
    t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: account.refreshToken } });

  it('archiveMe ends every session at once and keeps the data; the right password then gets 403 ACCOUNT_ARCHIVED, a wrong one INVALID_CREDENTIALS', async () => {
    const account = await registerAccount(t.app);
    const note = await rest(account, 'POST', '/api/notes', { title: 'kept while archived' });
    expect(note.statusCode).toBe(200);
    const second = await login(t.app, account.email, account.password);
    expect(second.statusCode).toBe(200);

    const archived = await rest(account, 'POST', '/api/users/me/archive');
    expect(archived.statusCode).toBe(200);
    expect(archived.json()).toEqual({ ok: true });

    for (const token of [account.accessToken, second.json().accessToken as string]) {
      const response = await t.app.inject({
        method: 'GET',
        url: '/api/users/me',
        headers: { authorization: `Bearer ${token}` },
      });
      expect({ status: response.statusCode, appCode: response.json().appCode }).toEqual({
        status: 401,
        appCode: 'SESSION_REVOKED',
      });
    }
    expect((await refresh(account)).statusCode).toBe(401);
    // No enumeration: only the password holder learns that the account is archived.
    const wrong = await login(t.app, account.email, 'Wrong-password-1');
    expect({ status: wrong.statusCode, appCode: wrong.json().appCode }).toEqual({
      status: 401,
      appCode: 'INVALID_CREDENTIALS',
    });
    const right = await login(t.app, account.email, account.password);
    expect({ status: right.statusCode, appCode: right.json().appCode }).toEqual({
      status: 403,
      appCode: 'ACCOUNT_ARCHIVED',
    });
    expect(right.json().accessToken).toBeUndefined();

    const notes = await t.services.db.selectFrom('notes').select('title').where('owner_id', '=', account.id).execute();
    expect(notes).toEqual([{ title: 'kept while archived' }]);
    expect((await rest(admin, 'GET', `/api/users/${account.id}`)).json()).toMatchObject({
      id: account.id,
      archived: true,
      disabled: false,
    });

    // Restored: signs in again, as it was, with its data; the old tokens stay ended.
    const restored = await rest(admin, 'POST', `/api/users/${account.id}/restore`);
    expect(restored.statusCode).toBe(200);
    expect(restored.json()).toMatchObject({ id: account.id, archived: false, disabled: false, roles: ['user'] });
    expect((await me(account)).json().appCode).toBe('SESSION_REVOKED');
    const back = await login(t.app, account.email, account.password);
    expect(back.statusCode).toBe(200);
    const listed = await t.app.inject({
      method: 'GET',
      url: '/api/notes',
      headers: { authorization: `Bearer ${back.json().accessToken}` },
    });
    expect(listed.json().items.map((n: { title: string }) => n.title)).toEqual(['kept while archived']);
  });

  it('archives a user (admin): sessions end, hidden from users.list and role members unless includeArchived; idempotent', async () => {
    const tag = `arch${Date.now()}`;
    const kept = await registerAccount(t.app, { email: `${tag}-kept@example.com` });
    const gone = await registerAccount(t.app, { email: `${tag}-gone@example.com` });
    const roles = (await rest(admin, 'GET', '/api/roles')).json() as { id: string; name: string }[];
    const userRole = roles.find((role) => role.name === 'user')?.id as string;

    const archived = await rest(admin, 'POST', `/api/users/${gone.id}/archive`);
    expect(archived.statusCode).toBe(200);
    expect(archived.json()).toMatchObject({ id: gone.id, archived: true, disabled: false, roles: ['user'] });
    expect((await me(gone)).json().appCode).toBe('SESSION_REVOKED');
    expect((await me(kept)).statusCode).toBe(200);
    const firstArchivedAt = (
      await t.services.db.selectFrom('users').select('archived_at').where('id', '=', gone.id).executeTakeFirstOrThrow()
    ).archived_at;
    expect(firstArchivedAt).toBeInstanceOf(Date);

    expect(await listIds(`/api/users?search=${tag}`)).toEqual([kept.id]);
    expect(await listIds(`/api/users?search=${tag}&includeArchived=false`)).toEqual([kept.id]);
    expect(await listIds(`/api/users?search=${tag}&includeArchived=true`)).toEqual([gone.id, kept.id]);
    const members = await listIds(`/api/roles/${userRole}/members?limit=100`);
    expect(members).toContain(kept.id);
    expect(members).not.toContain(gone.id);
    expect(await listIds(`/api/roles/${userRole}/members?limit=100&includeArchived=true`)).toEqual(
      expect.arrayContaining([kept.id, gone.id]),
    );
    // The same over tRPC.
    const viaTrpc = await query(admin, 'users.list', { search: tag });
    expect(viaTrpc.json().result.data.items.map((u: { id: string }) => u.id)).toEqual([kept.id]);
    const allViaTrpc = await query(admin, 'users.list', { search: tag, includeArchived: true });
    expect(allViaTrpc.json().result.data.items.map((u: { id: string }) => u.id)).toEqual([gone.id, kept.id]);
    const membersViaTrpc = await query(admin, 'rbac.roles.members', { id: userRole, limit: 100 });
    expect(membersViaTrpc.json().result.data.items.map((u: { id: string }) => u.id)).not.toContain(gone.id);
    const allMembersViaTrpc = await query(admin, 'rbac.roles.members', {
      id: userRole,
      limit: 100,
      includeArchived: true,
    });
    expect(allMembersViaTrpc.json().result.data.items.map((u: { id: string }) => u.id)).toContain(gone.id);

    // Idempotent: archiving again answers the same, keeping the first time.
    const again = await rest(admin, 'POST', `/api/users/${gone.id}/archive`);
    expect(again.statusCode).toBe(200);
    expect(again.json().archived).toBe(true);
    const stillArchivedAt = (
      await t.services.db.selectFrom('users').select('archived_at').where('id', '=', gone.id).executeTakeFirstOrThrow()
    ).archived_at;
    expect(stillArchivedAt).toEqual(firstArchivedAt);

    expect((await rest(admin, 'POST', `/api/users/${gone.id}/restore`)).json().archived).toBe(false);
    const restoredAgain = await rest(admin, 'POST', `/api/users/${gone.id}/restore`);
    expect(restoredAgain.statusCode).toBe(200);
    expect(restoredAgain.json().archived).toBe(false);
    expect(await listIds(`/api/users?search=${tag}`)).toEqual([gone.id, kept.id]);
    // Restoring a user never archived is a no-op as well.
    expect((await rest(admin, 'POST', `/api/users/${kept.id}/restore`)).json()).toMatchObject({ archived: false });
  });

  it('restores a disabled user disabled: still no sign-in (ACCOUNT_DISABLED), but listed', async () => {
    const tag = `dis${Date.now()}`;
    const account = await registerAccount(t.app, { email: `${tag}@example.com` });
    expect((await rest(admin, 'PATCH', `/api/users/${account.id}`, { disabled: true })).json().disabled).toBe(true);
    expect((await rest(admin, 'POST', `/api/users/${account.id}/archive`)).json()).toMatchObject({
      archived: true,
      disabled: true,
    });
    // Archived comes first: it is what an administrator has to undo first.
    expect((await login(t.app, account.email, account.password)).json().appCode).toBe('ACCOUNT_ARCHIVED');
    expect(await listIds(`/api/users?search=${tag}`)).toEqual([]);

    const restored = await rest(admin, 'POST', `/api/users/${account.id}/restore`);
    expect(restored.json()).toMatchObject({ archived: false, disabled: true });
    expect(await listIds(`/api/users?search=${tag}`)).toEqual([account.id]);
    const refused = await login(t.app, account.email, account.password);
    expect({ status: refused.statusCode, appCode: refused.json().appCode }).toEqual({
      status: 403,
      appCode: 'ACCOUNT_DISABLED',
    });
    await rest(admin, 'PATCH', `/api/users/${account.id}`, { disabled: false });
    expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);
  });

  it('answers 404 NOT_FOUND for an unknown id, 400 for a malformed one, 403 to a caller without users:write', async () => {
    for (const action of ['archive', 'restore']) {
      const missing = await rest(admin, 'POST', `/api/users/${MISSING}/${action}`);
      expect({ status: missing.statusCode, appCode: missing.json().appCode }, action).toEqual({
        status: 404,
        appCode: 'NOT_FOUND',
      });
      const malformed = await rest(admin, 'POST', `/api/users/not-a-uuid/${action}`);
      expect({ status: malformed.statusCode, appCode: malformed.json().appCode }, action).toEqual({
        status: 400,
        appCode: 'VALIDATION_FAILED',
      });
    }
    const plain = await registerAccount(t.app);
    for (const action of ['archive', 'restore']) {
      const denied = await rest(plain, 'POST', `/api/users/${admin.id}/${action}`);
      expect(denied.statusCode, action).toBe(403);
      expect(denied.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'users:write' } });
    }
    expect((await me(admin)).json().archived).toBe(false);
    const anonymous = await t.app.inject({ method: 'POST', url: '/api/users/me/archive' });
    expect(anonymous.statusCode).toBe(401);
  });

  it('refuses a refresh with 403 ACCOUNT_ARCHIVED for an account archived outside the API (sessions still open), and ends them', async () => {
    const account = await registerAccount(t.app);
    await t.services.db.updateTable('users').set({ archived_at: new Date() }).where('id', '=', account.id).execute();
    const refused = await refresh(account);
    expect([refused.statusCode, refused.json().appCode]).toEqual([403, 'ACCOUNT_ARCHIVED']);
    expect((await me(account)).json().appCode).toBe('SESSION_REVOKED');
  });

  it('sends no password-reset email to an archived account', async () => {
    const account = await registerAccount(t.app);
    await rest(admin, 'POST', `/api/users/${account.id}/archive`);
    await t.settle();
    const before = t.mail.to(account.email).length;
    const forgot = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/forgot',
      payload: { email: account.email },
    });
    expect(forgot.json()).toEqual({ ok: true });
    await t.settle();
    expect(t.mail.to(account.email)).toHaveLength(before);
    expect(t.mail.last(account.email, 'reset-password')).toBeUndefined();
    // Restored, it gets one again.
    await rest(admin, 'POST', `/api/users/${account.id}/restore`);
    await t.app.inject({ method: 'POST', url: '/api/auth/password/forgot', payload: { email: account.email } });
    await t.settle();
    expect(t.mail.last(account.email, 'reset-password')).toBeDefined();
  });

  it('archives and restores over tRPC, with the same codes', async () => {
    const account = await registerAccount(t.app);
    const target = await registerAccount(t.app);

    const self = await mutate(account, 'users.archiveMe');
    expect(self.statusCode).toBe(200);
    expect(self.json().result.data).toEqual({ ok: true });
    expect((await query(account, 'users.me', undefined)).json().error.data.appCode).toBe('SESSION_REVOKED');
    const trpcLogin = await t.app.inject({
      method: 'POST',
      url: '/trpc/auth.login',
      payload: { email: account.email, password: account.password },
    });
    expect(trpcLogin.statusCode).toBe(403);
    expect(trpcLogin.json().error.data.appCode).toBe('ACCOUNT_ARCHIVED');

    const archived = await mutate(admin, 'users.archive', { id: target.id });
    expect(archived.json().result.data).toMatchObject({ id: target.id, archived: true });
    expect((await me(target)).json().appCode).toBe('SESSION_REVOKED');
    const restored = await mutate(admin, 'users.restore', { id: account.id });
    expect(restored.json().result.data).toMatchObject({ id: account.id, archived: false });
    expect((await login(t.app, account.email, account.password)).statusCode).toBe(200);

    for (const path of ['users.archive', 'users.restore']) {
      const missing = await mutate(admin, path, { id: MISSING });
      expect(missing.statusCode, path).toBe(404);
      expect(missing.json().error.data.appCode, path).toBe('NOT_FOUND');
      const denied = await mutate(target, path, { id: account.id }); // target's session ended: 401
      expect(denied.statusCode, path).toBe(401);
    }
    const plain = await registerAccount(t.app);
    const forbidden = await mutate(plain, 'users.archive', { id: account.id });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error.data.appCode).toBe('PERMISSION_DENIED');
  });
});

describe('batches of users', () => {
  let t: TestApp;
  let admin: Account;
  /** A user holding users:read and users:write, but not roles:assign nor users:delete. */
  let writer: Account;
  let plain: Account;
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '100000' } });
    admin = await registerAdmin(t.app, t.services.db);
    writer = await registerAccount(t.app);
    plain = await registerAccount(t.app);
    const role = await t.app.inject({
      method: 'POST',
      url: '/api/roles',
      headers: bearer(admin),
      payload: { name: 'user-writers', permissions: ['users:read', 'users:write'] },
    });
    expect(role.statusCode).toBe(200);
    await grantRole(t.services.db, writer.id, 'user-writers');
  });
  afterAll(() => t.close());
  const { rest, mutate } = caller(() => t);

  const createMany = (account: Account, items: unknown[], atomic?: boolean) =>
    rest(account, 'POST', '/api/users/batch', { items, ...(atomic !== undefined && { atomic }) });
  const updateMany = (account: Account, items: unknown[], atomic?: boolean) =>
    rest(account, 'PATCH', '/api/users/batch', { items, ...(atomic !== undefined && { atomic }) });
  const deleteMany = (account: Account, ids: unknown[], atomic?: boolean) =>
    rest(account, 'POST', '/api/users/batch-delete', { ids, ...(atomic !== undefined && { atomic }) });

  const userByEmail = (email: string) =>
    t.services.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  const userById = (id: string) =>
    t.services.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  const me = (account: Account) => rest(account, 'GET', '/api/users/me');
  /** Quick accounts without a password (no hashing), by email. */
  async function quickUsers(count: number, prefix = 'quick'): Promise<Answer[]> {
    const response = await createMany(
      admin,
      Array.from({ length: count }, () => ({ email: uniqueEmail(prefix) })),
    );
    expect(response.json().succeeded).toBe(count);
    return (response.json().results as BatchResult[]).map((result) => ({
      id: result.user.id,
      email: result.user.email,
    }));
  }

  describe('createMany', () => {
    it('creates users with their passwords, roles and verification; the default role when none is named', async () => {
      const plainEmail = uniqueEmail('c-plain');
      const pwEmail = uniqueEmail('c-pw');
      const adminEmail = uniqueEmail('c-admin');
      const twoRoles = uniqueEmail('c-two');
      const noRoles = uniqueEmail('c-none');
      const response = await createMany(admin, [
        { email: plainEmail },
        { email: `  ${pwEmail.toUpperCase()} `, name: '  Ada ', password: 'Batch-pass-1', emailVerified: true },
        { email: adminEmail, roles: ['Admin'] },
        { email: twoRoles, roles: ['user', 'user-writers', 'user'] },
        { email: noRoles, roles: [], emailVerified: false },
      ]);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body).toMatchObject({ succeeded: 5, failed: 0 });
      expect(body.results.map((r: BatchResult) => [r.index, r.ok])).toEqual([
        [0, true],
        [1, true],
        [2, true],
        [3, true],
        [4, true],
      ]);
      const [first, second, third, fourth, fifth] = body.results as [
        BatchResult,
        BatchResult,
        BatchResult,
        BatchResult,
        BatchResult,
      ];
      expect(first.user).toMatchObject({
        email: plainEmail,
        name: null,
        emailVerified: false,
        disabled: false,
        archived: false,
        locale: null,
        roles: ['user'],
        permissions: [],
      });
      expect(first.error).toBeUndefined();
      expect(second.user).toMatchObject({ email: pwEmail, name: 'Ada', emailVerified: true, roles: ['user'] });
      expect(third.user.roles).toEqual(['admin']);
      expect(third.user.permissions).toEqual(expect.arrayContaining(['users:delete', 'roles:assign']));
      expect([...fourth.user.roles].sort()).toEqual(['user', 'user-writers']);
      expect([...fourth.user.permissions].sort()).toEqual(['users:read', 'users:write']);
      expect(fifth.user).toMatchObject({ roles: [], emailVerified: false });

      // As stored, and as the single-user procedures show them.
      const fetched = await rest(admin, 'GET', `/api/users/${third.user.id}`);
      expect(fetched.json()).toEqual(third.user);
      expect((await userByEmail(plainEmail))?.password_hash).toBeNull();

      // The password works for signing in; an account without one has none to guess.
      const signedIn = await login(t.app, pwEmail, 'Batch-pass-1');
      expect(signedIn.statusCode).toBe(200);
      expect(signedIn.json().user).toMatchObject({ id: second.user.id, emailVerified: true });
      expect((await login(t.app, plainEmail, 'Batch-pass-1')).json().appCode).toBe('INVALID_CREDENTIALS');
      // No email is sent to created users.
      await t.settle();
      expect(t.mail.to(pwEmail)).toEqual([]);
    });

    it('validates each item on its own with the single-user rules; a non-atomic batch writes the valid ones', async () => {
      const existing = await quickUsers(1, 'c-existing');
      const good = uniqueEmail('c-good');
      const dup = uniqueEmail('c-dup');
      const alsoGood = uniqueEmail('c-good2');
      const passwordAsEmail = uniqueEmail('c-aspw1');
      const items = [
        { email: good, name: 'Good' },
        { email: 'not-an-email' },
        { email: uniqueEmail('c-short'), password: 'short1' },
        { email: uniqueEmail('c-long'), name: 'x'.repeat(101) },
        { email: dup },
        { email: dup.toUpperCase() },
        { email: uniqueEmail('c-role'), roles: ['user', 'no-such-role'] },
        { email: existing[0]?.email },
        { email: uniqueEmail('c-nodigit'), password: 'no-digits-here' },
        { email: passwordAsEmail, password: passwordAsEmail.toUpperCase() },
        { email: alsoGood, emailVerified: true },
      ];
      const response = await createMany(admin, items);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body).toMatchObject({ succeeded: 3, failed: 8 });
      const results = body.results as BatchResult[];
      expect(results.map((r) => r.index)).toEqual(items.map((_, i) => i));
      expect(results.map((r) => (r.ok ? 'ok' : r.error?.appCode))).toEqual([
        'ok',
        'VALIDATION_FAILED',
        'VALIDATION_FAILED',
        'VALIDATION_FAILED',
        'ok',
        'VALIDATION_FAILED',
        'VALIDATION_FAILED',
        'EMAIL_TAKEN',
        'VALIDATION_FAILED',
        'VALIDATION_FAILED',
        'ok',
      ]);
      // Issue paths are relative to the item.
      const paths = (i: number) => results[i]?.error?.issues?.map((issue) => issue.path);
      expect(paths(1)).toEqual([['email']]);
      expect(paths(2)).toEqual([['password']]);
      expect(paths(3)).toEqual([['name']]);
      expect(paths(8)).toEqual([['password']]);
      expect(paths(9)).toEqual([['password']]); // the email as password, as sign-up refuses it
      expect(results[7]?.error?.issues).toBeUndefined();
      for (const result of results) {
        if (result.ok) expect(result.error).toBeUndefined();
        else {
          expect(result.user).toBeUndefined();
          expect(result.error?.message).toEqual(expect.any(String));
        }
      }
      expect(results[4]?.user.email).toBe(dup);

      expect(await userByEmail(good)).toBeDefined();
      expect(await userByEmail(dup)).toBeDefined();
      expect((await userByEmail(alsoGood))?.email_verified_at).toBeInstanceOf(Date);
      for (const index of [2, 3, 6, 8, 9]) {
        expect(await userByEmail((items[index] as { email: string }).email), `item ${index}`).toBeUndefined();
      }
    });

    it('atomic: one bad item writes nothing (the valid ones are BATCH_ABORTED); all good writes all', async () => {
      const emails = [uniqueEmail('a-1'), uniqueEmail('a-2'), uniqueEmail('a-3')];
      const refused = await createMany(
        admin,
        [{ email: emails[0], password: 'Atomic-pass-1' }, { email: 'nope' }, { email: emails[2] }],
        true,
      );
      expect(refused.statusCode).toBe(200);
      const body = refused.json();
      expect(body).toMatchObject({ succeeded: 0, failed: 3 });
      expect(body.results.map((r: BatchResult) => [r.ok, r.error?.appCode])).toEqual([
        [false, 'BATCH_ABORTED'],
        [false, 'VALIDATION_FAILED'],
        [false, 'BATCH_ABORTED'],
      ]);
      expect(body.results[1].error.issues.map((i: { path: unknown }) => i.path)).toEqual([['email']]);
      for (const email of emails) expect(await userByEmail(email as string)).toBeUndefined();

      // An existing email (found before writing) aborts the batch too.
      const existing = await quickUsers(1, 'a-existing');
      const taken = await createMany(admin, [{ email: emails[0] }, { email: existing[0]?.email }], true);
      expect(taken.json().results.map((r: BatchResult) => r.error?.appCode)).toEqual(['BATCH_ABORTED', 'EMAIL_TAKEN']);
      expect(await userByEmail(emails[0] as string)).toBeUndefined();

      const written = await createMany(
        admin,
        emails.map((email) => ({ email })),
        true,
      );
      expect(written.json()).toMatchObject({ succeeded: 3, failed: 0 });
      expect(written.json().results.every((r: BatchResult) => r.ok && r.user)).toBe(true);
      for (const email of emails) expect(await userByEmail(email as string)).toBeDefined();
    });

    it('takes 1 to 100 items: 0 and 101 are 400 for the whole call, 100 are written', async () => {
      for (const count of [0, 101]) {
        const response = await createMany(
          admin,
          Array.from({ length: count }, () => ({ email: uniqueEmail('n') })),
        );
        expect({ status: response.statusCode, appCode: response.json().appCode }, `${count} items`).toEqual({
          status: 400,
          appCode: 'VALIDATION_FAILED',
        });
      }
      expect((await rest(admin, 'POST', '/api/users/batch', {})).statusCode).toBe(400);
      const tag = `hundred${Date.now()}`;
      const hundred = await createMany(
        admin,
        Array.from({ length: 100 }, (_, i) => ({ email: `${tag}-${i}@example.com` })),
        true,
      );
      expect(hundred.json()).toMatchObject({ succeeded: 100, failed: 0 });
      const count = await t.services.db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('email', 'like', `${tag}-%`)
        .executeTakeFirstOrThrow();
      expect(Number(count.n)).toBe(100);
    });

    it('refuses wrong shapes with 400 for the whole call, writing nothing', async () => {
      const email = uniqueEmail('shape');
      const shapes: unknown[] = [
        { items: [{ email }, 1] },
        { items: [{ email }, 'x@example.com'] },
        { items: [{ email }, null] },
        { items: [{ email }, [{ email: uniqueEmail() }]] },
        { items: [{ email }, { email: 42 }] },
        { items: [{ email }, { email: uniqueEmail(), emailVerified: 'true' }] },
        { items: [{ email }, { email: uniqueEmail(), roles: 'admin' }] },
        { items: [{ email }], atomic: 'yes' },
        { items: { 0: { email } } },
        [{ email }],
      ];
      for (const payload of shapes) {
        const response = await rest(admin, 'POST', '/api/users/batch', payload);
        expect(response.statusCode, JSON.stringify(payload)).toBe(400);
      }
      expect(await userByEmail(email)).toBeUndefined();
    });

    it('needs users:write, and roles:assign to name roles', async () => {
      const email = uniqueEmail('perm');
      const denied = await createMany(plain, [{ email }]);
      expect(denied.statusCode).toBe(403);
      expect(denied.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'users:write' } });

      const withRoles = await createMany(writer, [{ email }, { email: uniqueEmail(), roles: ['user'] }]);
      expect(withRoles.statusCode).toBe(403);
      expect(withRoles.json()).toMatchObject({
        appCode: 'PERMISSION_DENIED',
        message: 'Missing permission: roles:assign',
        details: { permission: 'roles:assign' },
      });
      expect(await userByEmail(email)).toBeUndefined();

      const allowed = await createMany(writer, [{ email }]);
      expect(allowed.statusCode).toBe(200);
      expect(allowed.json().results[0].user).toMatchObject({ email, roles: ['user'] });

      const anonymous = await t.app.inject({
        method: 'POST',
        url: '/api/users/batch',
        payload: { items: [{ email: uniqueEmail() }] },
      });
      expect(anonymous.statusCode).toBe(401);
    });
  });

  describe('updateMany', () => {
    it('answers NOT_FOUND for a user deleted while the batch changed it, not success', async () => {
      const [target] = await quickUsers(1, 'gone');
      // Another administrator's deletion, not yet committed when the batch looks the user up.
      const renaming = await whileHolding(
        t.services.db,
        (trx) => trx.deleteFrom('users').where('id', '=', target.id).execute(),
        () => updateMany(admin, [{ id: target.id, name: 'Too late' }]),
      );
      const body = renaming.json();
      expect(body).toMatchObject({ succeeded: 0, failed: 1 });
      expect(body.results[0]).toMatchObject({ ok: false, error: { appCode: 'NOT_FOUND' } });
    });

    it('renames, disables (ending sessions at once), enables and sets roles, each item on its own', async () => {
      const target = await registerAccount(t.app);
      const [renamed, promoted] = await quickUsers(2, 'u');
      expect((await me(target)).statusCode).toBe(200);

      const response = await updateMany(admin, [
        { id: renamed.id, name: '  New name ' },
        { id: target.id, disabled: true },
        { id: promoted.id, roles: ['user-writers'], name: null },
      ]);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body).toMatchObject({ succeeded: 3, failed: 0 });
      expect(body.results.map((r: BatchResult) => r.user)).toEqual([
        expect.objectContaining({ id: renamed.id, name: 'New name', disabled: false, roles: ['user'] }),
        expect.objectContaining({ id: target.id, disabled: true }),
        expect.objectContaining({
          id: promoted.id,
          name: null,
          roles: ['user-writers'],
          permissions: ['users:read', 'users:write'],
        }),
      ]);

      // The disabled user's existing token fails on its next call; signing in is refused.
      const next = await me(target);
      expect({ status: next.statusCode, appCode: next.json().appCode }).toEqual({
        status: 401,
        appCode: 'SESSION_REVOKED',
      });
      const refresh = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        payload: { refreshToken: target.refreshToken },
      });
      expect(refresh.statusCode).toBe(401);
      const refused = await login(t.app, target.email, target.password);
      expect({ status: refused.statusCode, appCode: refused.json().appCode }).toEqual({
        status: 403,
        appCode: 'ACCOUNT_DISABLED',
      });
      // Still listed: disabled is not archived.
      const listed = await rest(admin, 'GET', `/api/users?search=${encodeURIComponent(target.email)}`);
      expect(listed.json().items.map((u: { id: string }) => u.id)).toEqual([target.id]);

      // Disabling again keeps the first time; enabling lets them in again.
      const disabledAt = (await userById(target.id))?.disabled_at;
      expect((await updateMany(admin, [{ id: target.id, disabled: true }])).json().succeeded).toBe(1);
      expect((await userById(target.id))?.disabled_at).toEqual(disabledAt);
      const enabled = await updateMany(admin, [{ id: target.id, disabled: false }]);
      expect(enabled.json().results[0].user.disabled).toBe(false);
      expect((await login(t.app, target.email, target.password)).statusCode).toBe(200);

      // An item changing nothing is a success that changes nothing.
      const noop = await updateMany(admin, [{ id: renamed.id }]);
      expect(noop.json().results[0]).toMatchObject({ ok: true, user: { id: renamed.id, name: 'New name' } });
    });

    it('answers duplicates, unknown and malformed ids, bad names and unknown roles per item; non-atomic writes the rest', async () => {
      const [a, b] = await quickUsers(2, 'u-mixed');
      const response = await updateMany(admin, [
        { id: a.id, name: 'First' },
        { id: a.id, name: 'Second' },
        { id: MISSING, name: 'Nobody' },
        { id: 'not-a-uuid', name: 'Nobody' },
        { id: b.id, name: 'y'.repeat(101) },
        { id: b.id, roles: ['ghost-role'] },
      ]);
      expect(response.statusCode).toBe(200);
      const results = response.json().results as BatchResult[];
      expect(response.json()).toMatchObject({ succeeded: 1, failed: 5 });
      expect(results.map((r) => (r.ok ? 'ok' : r.error?.appCode))).toEqual([
        'ok',
        'VALIDATION_FAILED',
        'NOT_FOUND',
        'VALIDATION_FAILED',
        'VALIDATION_FAILED',
        'VALIDATION_FAILED',
      ]);
      expect(results[3]?.error?.issues?.map((i) => i.path)).toEqual([['id']]);
      expect(results[4]?.error?.issues?.map((i) => i.path)).toEqual([['name']]);
      expect((await userById(a.id))?.name).toBe('First');
      expect((await userById(b.id))?.name).toBeNull();
    });

    it('takes an id in capitals as the same user (found, and a repeat of it refused)', async () => {
      const [a] = await quickUsers(1, 'u-caps');
      const response = await updateMany(admin, [
        { id: a.id.toUpperCase(), name: 'Capitals' },
        { id: a.id, name: 'Again' },
      ]);
      expect((response.json().results as BatchResult[]).map((r) => (r.ok ? 'ok' : r.error?.appCode))).toEqual([
        'ok',
        'VALIDATION_FAILED',
      ]);
      expect((await userById(a.id))?.name).toBe('Capitals');
      const deleted = await deleteMany(admin, [a.id.toUpperCase()]);
      expect(deleted.json()).toMatchObject({ succeeded: 1, results: [{ id: a.id.toUpperCase(), ok: true }] });
      expect(await userById(a.id)).toBeUndefined();
    });

    it('atomic: one bad item writes nothing and disables no one; all good writes all', async () => {
      const target = await registerAccount(t.app);
      const [other] = await quickUsers(1, 'u-atomic');
      const refused = await updateMany(
        admin,
        [
          { id: target.id, disabled: true },
          { id: other.id, name: 'Renamed' },
          { id: MISSING, name: 'Nobody' },
        ],
        true,
      );
      expect(refused.json()).toMatchObject({ succeeded: 0, failed: 3 });
      expect(refused.json().results.map((r: BatchResult) => r.error?.appCode)).toEqual([
        'BATCH_ABORTED',
        'BATCH_ABORTED',
        'NOT_FOUND',
      ]);
      expect((await userById(target.id))?.disabled_at).toBeNull();
      expect((await userById(other.id))?.name).toBeNull();
      expect((await me(target)).statusCode).toBe(200);

      const written = await updateMany(
        admin,
        [
          { id: target.id, name: 'Target' },
          { id: other.id, name: 'Renamed', roles: [] },
        ],
        true,
      );
      expect(written.json()).toMatchObject({ succeeded: 2, failed: 0 });
      expect((await userById(target.id))?.name).toBe('Target');
      expect(written.json().results[1].user).toMatchObject({ name: 'Renamed', roles: [] });
    });

    it('needs users:write, and roles:assign to set roles; 1 to 100 items; wrong shapes are 400', async () => {
      const [user] = await quickUsers(1, 'u-perm');
      const denied = await updateMany(plain, [{ id: user.id, name: 'X' }]);
      expect(denied.statusCode).toBe(403);
      expect(denied.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'users:write' } });
      const roles = await updateMany(writer, [
        { id: user.id, name: 'X' },
        { id: user.id, roles: ['admin'] },
      ]);
      expect(roles.statusCode).toBe(403);
      expect(roles.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'roles:assign' } });
      expect((await userById(user.id))?.name).toBeNull();
      const allowed = await updateMany(writer, [{ id: user.id, name: 'By writer' }]);
      expect(allowed.json().results[0].user.name).toBe('By writer');
      // Each item answers the user's record: to a caller without users:read, never one above its own,
      // whatever the item changes (nothing, or roles it holds the permissions of).
      const blind = await registerAccount(t.app);
      const blindRole = await rest(admin, 'POST', '/api/roles', {
        name: `blind-writers-${Date.now()}`,
        permissions: ['users:write', 'roles:assign'],
      });
      await grantRole(t.services.db, blind.id, blindRole.json().name);
      for (const item of [{ id: admin.id }, { id: admin.id, roles: ['admin', 'user'] }]) {
        const peek = await updateMany(blind, [{ id: user.id }, item]);
        expect([peek.statusCode, peek.json().appCode], JSON.stringify(item)).toEqual([403, 'PERMISSION_DENIED']);
        expect(JSON.stringify(peek.json())).not.toContain(admin.email);
      }
      expect((await updateMany(blind, [{ id: user.id }])).statusCode).toBe(200);
      await rest(admin, 'DELETE', `/api/roles/${blindRole.json().id}`);

      for (const count of [0, 101]) {
        const response = await updateMany(
          admin,
          Array.from({ length: count }, () => ({ id: user.id, name: 'Many' })),
        );
        expect(response.statusCode, `${count} items`).toBe(400);
      }
      for (const items of [[1], [user.id], [{ id: user.id, disabled: 'true' }], [{ id: 7 }], [{ name: 'no id' }]]) {
        const response = await updateMany(admin, items);
        expect(response.statusCode, JSON.stringify(items)).toBe(400);
      }
      expect((await userById(user.id))?.name).toBe('By writer');
    });
  });

  describe('deleteMany', () => {
    it('deletes users with their notes and sessions, answering each id; duplicates, unknown and malformed ids per item', async () => {
      const victim = await registerAccount(t.app);
      const note = await rest(victim, 'POST', '/api/notes', { title: 'going away' });
      expect(note.statusCode).toBe(200);
      const [quick] = await quickUsers(1, 'd');
      const ids = [victim.id, quick.id, victim.id, MISSING, 'not-a-uuid'];
      const response = await deleteMany(admin, ids);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body).toMatchObject({ succeeded: 2, failed: 3 });
      expect(body.results).toEqual([
        { index: 0, id: victim.id, ok: true },
        { index: 1, id: quick.id, ok: true },
        expect.objectContaining({
          index: 2,
          id: victim.id,
          ok: false,
          error: expect.objectContaining({ appCode: 'VALIDATION_FAILED' }),
        }),
        expect.objectContaining({
          index: 3,
          id: MISSING,
          ok: false,
          error: expect.objectContaining({ appCode: 'NOT_FOUND' }),
        }),
        expect.objectContaining({
          index: 4,
          id: 'not-a-uuid',
          ok: false,
          error: expect.objectContaining({ appCode: 'VALIDATION_FAILED' }),
        }),
      ]);

      expect(await userById(victim.id)).toBeUndefined();
      expect(await userById(quick.id)).toBeUndefined();
      const notes = await t.services.db.selectFrom('notes').select('id').where('owner_id', '=', victim.id).execute();
      expect(notes).toEqual([]);
      const sessions = await t.services.db
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', victim.id)
        .execute();
      expect(sessions).toEqual([]);
      const next = await me(victim);
      expect({ status: next.statusCode, appCode: next.json().appCode }).toEqual({
        status: 401,
        appCode: 'SESSION_REVOKED',
      });
      expect((await login(t.app, victim.email, victim.password)).json().appCode).toBe('INVALID_CREDENTIALS');
    });

    it('atomic: an unknown id deletes no one and ends no session; all known deletes all', async () => {
      const survivor = await registerAccount(t.app);
      const [quick] = await quickUsers(1, 'd-atomic');
      const refused = await deleteMany(admin, [survivor.id, quick.id, MISSING], true);
      expect(refused.json()).toMatchObject({ succeeded: 0, failed: 3 });
      expect(refused.json().results.map((r: BatchResult) => r.error?.appCode)).toEqual([
        'BATCH_ABORTED',
        'BATCH_ABORTED',
        'NOT_FOUND',
      ]);
      expect(await userById(survivor.id)).toBeDefined();
      expect(await userById(quick.id)).toBeDefined();
      expect((await me(survivor)).statusCode).toBe(200);

      const deleted = await deleteMany(admin, [survivor.id, quick.id], true);
      expect(deleted.json()).toMatchObject({ succeeded: 2, failed: 0 });
      expect(await userById(survivor.id)).toBeUndefined();
      expect(await userById(quick.id)).toBeUndefined();
      expect((await me(survivor)).json().appCode).toBe('SESSION_REVOKED');
    });

    it('needs users:delete (users:write is not enough); 1 to 100 ids; wrong shapes are 400', async () => {
      const [user] = await quickUsers(1, 'd-perm');
      for (const account of [plain, writer]) {
        const denied = await deleteMany(account, [user.id]);
        expect(denied.statusCode).toBe(403);
        expect(denied.json()).toMatchObject({ appCode: 'PERMISSION_DENIED', details: { permission: 'users:delete' } });
      }
      for (const ids of [[], Array.from({ length: 101 }, () => user.id), [user.id, 42], [{ id: user.id }], user.id]) {
        const response = await deleteMany(admin, ids as unknown[]);
        expect(response.statusCode, JSON.stringify(ids).slice(0, 60)).toBe(400);
      }
      expect(await userById(user.id)).toBeDefined();
    });
  });

  it('names the field of a repeat or an unknown role in the item’s issues', async () => {
    const [user] = await quickUsers(1, 'issues');
    const email = uniqueEmail('issues');
    const created = (
      await createMany(admin, [{ email }, { email }, { email: uniqueEmail(), roles: ['user', 'ghost'] }])
    ).json().results as BatchResult[];
    expect(created[1]?.error?.issues).toEqual([
      expect.objectContaining({ path: ['email'], message: 'appears more than once in this batch' }),
    ]);
    expect(created[2]?.error?.issues).toEqual([expect.objectContaining({ path: ['roles', 1] })]);
    const updated = (
      await updateMany(admin, [
        { id: user.id, name: 'a' },
        { id: user.id, name: 'b' },
      ])
    ).json().results as BatchResult[];
    expect(updated[1]?.error?.issues).toEqual([
      expect.objectContaining({ path: ['id'], message: 'appears more than once in this batch' }),
    ]);
    const deleted = (await deleteMany(admin, [MISSING, MISSING])).json().results as BatchResult[];
    expect(deleted[1]?.error?.issues).toEqual([
      expect.objectContaining({ path: [], message: 'appears more than once in this batch' }),
    ]);
  });

  describe('over tRPC', () => {
    it('creates, updates and deletes in batches with the same answers and codes', async () => {
      const target = await registerAccount(t.app);
      const email = uniqueEmail('trpc');
      const created = await mutate(admin, 'users.createMany', {
        items: [{ email, password: 'Trpc-batch-1', roles: ['user-writers'] }, { email: 'bad' }],
      });
      expect(created.statusCode).toBe(200);
      const createdData = created.json().result.data;
      expect(createdData).toMatchObject({ succeeded: 1, failed: 1 });
      expect(createdData.results[0]).toMatchObject({ index: 0, ok: true, user: { email, roles: ['user-writers'] } });
      expect(createdData.results[1]).toMatchObject({
        index: 1,
        ok: false,
        error: { appCode: 'VALIDATION_FAILED', issues: [expect.objectContaining({ path: ['email'] })] },
      });
      expect((await login(t.app, email, 'Trpc-batch-1')).statusCode).toBe(200);
      const newId = createdData.results[0].user.id as string;

      const atomic = await mutate(admin, 'users.createMany', {
        items: [{ email: uniqueEmail('trpc-a') }, { email: email.toUpperCase() }],
        atomic: true,
      });
      expect(atomic.json().result.data.results.map((r: BatchResult) => r.error?.appCode)).toEqual([
        'BATCH_ABORTED',
        'EMAIL_TAKEN',
      ]);

      const updated = await mutate(admin, 'users.updateMany', {
        items: [
          { id: target.id, disabled: true },
          { id: newId, name: 'Via tRPC' },
          { id: MISSING, name: 'x' },
        ],
      });
      expect(updated.json().result.data).toMatchObject({ succeeded: 2, failed: 1 });
      expect(updated.json().result.data.results[2].error.appCode).toBe('NOT_FOUND');
      expect((await me(target)).json().appCode).toBe('SESSION_REVOKED');

      const deleted = await mutate(admin, 'users.deleteMany', { ids: [newId, 'nope'] });
      expect(deleted.json().result.data).toMatchObject({
        succeeded: 1,
        failed: 1,
        results: [
          { index: 0, id: newId, ok: true },
          { index: 1, id: 'nope', ok: false, error: { appCode: 'VALIDATION_FAILED' } },
        ],
      });
      expect(await userById(newId)).toBeUndefined();

      // Call-level refusals.
      const empty = await mutate(admin, 'users.createMany', { items: [] });
      expect(empty.statusCode).toBe(400);
      expect(empty.json().error.data.appCode).toBe('VALIDATION_FAILED');
      const tooMany = await mutate(admin, 'users.deleteMany', { ids: Array.from({ length: 101 }, () => MISSING) });
      expect(tooMany.statusCode).toBe(400);
      const notObject = await mutate(admin, 'users.updateMany', { items: [1] });
      expect(notObject.statusCode).toBe(400);
      for (const [path, input, permission] of [
        ['users.createMany', { items: [{ email: uniqueEmail() }] }, 'users:write'],
        ['users.updateMany', { items: [{ id: target.id, name: 'x' }] }, 'users:write'],
        ['users.deleteMany', { ids: [target.id] }, 'users:delete'],
      ] as const) {
        const denied = await mutate(plain, path, input);
        expect(denied.statusCode, path).toBe(403);
        expect(denied.json().error.data.appCode, path).toBe('PERMISSION_DENIED');
        expect(denied.json().error.message, path).toContain(permission);
      }
      const noAssign = await mutate(writer, 'users.updateMany', { items: [{ id: target.id, roles: ['user'] }] });
      expect(noAssign.statusCode).toBe(403);
      expect(noAssign.json().error.message).toContain('roles:assign');
    });
  });
});

describe('batches and the rate limit', () => {
  let t: TestApp;
  let admin: Account;
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_DEFAULT_PER_MINUTE: '10', TRUST_PROXY: '1' } });
    admin = await registerAdmin(t.app, t.services.db);
  });
  afterAll(() => t.close());

  const batch = (ip: string, items: unknown[]) =>
    t.app.inject({
      method: 'POST',
      url: '/api/users/batch',
      headers: { ...bearer(admin), 'x-forwarded-for': ip },
      payload: { items },
    });

  it('counts a batch of N items as N calls: 8 pass, then 5 more are 429 and none of them is written', async () => {
    const ip = '203.0.113.77';
    const tag = `rl${Date.now()}`;
    const first = await batch(
      ip,
      Array.from({ length: 8 }, (_, i) => ({ email: `${tag}-a${i}@example.com` })),
    );
    expect(first.statusCode).toBe(200);
    expect(first.json().succeeded).toBe(8);
    expect(first.headers['ratelimit-remaining']).toBe('2');

    const second = await batch(
      ip,
      Array.from({ length: 5 }, (_, i) => ({ email: `${tag}-b${i}@example.com` })),
    );
    expect(second.statusCode).toBe(429);
    expect(second.json()).toMatchObject({ appCode: 'RATE_LIMITED' });
    expect(Number(second.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const written = await t.services.db
      .selectFrom('users')
      .select('email')
      .where('email', 'like', `${tag}-b%`)
      .execute();
    expect(written).toEqual([]);

    // Another address has its own budget.
    const elsewhere = await batch('203.0.113.78', [{ email: `${tag}-c@example.com` }]);
    expect(elsewhere.statusCode).toBe(200);
  });
});
