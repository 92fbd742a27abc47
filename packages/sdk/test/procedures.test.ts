/** Every procedure of API.md's accounts, users, RBAC and notes sections, through the SDK: a happy and an unhappy call each. */
import { grantRole, startTestServer, type TestApp } from '@app/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, createClient, getAppErrorCode, memoryTokenStore } from '../src/index.ts';

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => getAppErrorCode(error),
  );
const email = (tag: string) => `${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;

describe.each(['fast', 'official'] as const)('every procedure through the SDK (%s transport)', (trpcTransport) => {
  let server: TestApp & { url: string };
  let admin: Client;
  let adminId: string;
  const signedIn = async (tag: string, password = 'Sdk-pass-123') => {
    const api = createClient({ url: server.url, auth: { tokenStore: memoryTokenStore() } });
    const result = await api.auth.register.mutate({ email: email(tag), password });
    return { api, user: result.user, password };
  };

  beforeAll(async () => {
    server = await startTestServer({ trpcTransport });
    const made = await signedIn('admin');
    admin = made.api;
    adminId = made.user.id;
    await grantRole(server.services.db, adminId, 'admin');
  });
  afterAll(() => server.close());

  it('auth: register, login, refresh, sessions, revokeSession, changePassword, logout, logoutAll', async () => {
    const anonymous = createClient({ url: server.url });
    const address = email('auth');
    const registered = await anonymous.auth.register.mutate({ email: address, password: 'Sdk-pass-123', name: 'Sdk' });
    expect(registered.user).toMatchObject({ email: address, name: 'Sdk', roles: ['user'] });
    expect(await failure(anonymous.auth.register.mutate({ email: address, password: 'Sdk-pass-123' }))).toBe(
      'EMAIL_TAKEN',
    );

    const store = memoryTokenStore();
    const api = createClient({ url: server.url, auth: { tokenStore: store } });
    expect(await failure(api.auth.login.mutate({ email: address, password: 'Wrong-pass-1' }))).toBe(
      'INVALID_CREDENTIALS',
    );
    await api.auth.login.mutate({ email: address, password: 'Sdk-pass-123' });

    const refreshed = await anonymous.auth.refresh.mutate({ refreshToken: registered.refreshToken });
    // Presented again at once (a second tab): the same successor, within the reuse grace window.
    const again = await anonymous.auth.refresh.mutate({ refreshToken: registered.refreshToken });
    expect(again.refreshToken).toBe(refreshed.refreshToken);
    expect(refreshed.user.id).toBe(registered.user.id);

    const sessions = await api.auth.sessions.query();
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    expect(await failure(anonymous.auth.sessions.query())).toBe('UNAUTHORIZED');
    // The registration's session, refreshed above: revoked, it leaves the list.
    const other = sessions.find((s) => !s.current);
    if (!other) throw new Error(`expected the registration's session beside this one: ${JSON.stringify(sessions)}`);
    await api.auth.revokeSession.mutate({ id: other.id });
    expect((await api.auth.sessions.query()).map((s) => s.id)).not.toContain(other.id);
    expect(await failure(anonymous.auth.refresh.mutate({ refreshToken: refreshed.refreshToken }))).toBe(
      'SESSION_REVOKED',
    );
    expect(await failure(api.auth.revokeSession.mutate({ id: '01900000-0000-7000-8000-000000000000' }))).toBe(
      'NOT_FOUND',
    );

    expect(
      await failure(api.auth.changePassword.mutate({ currentPassword: 'Nope-nope-1', newPassword: 'Next-pass-456' })),
    ).toBe('INVALID_CREDENTIALS');
    await api.auth.changePassword.mutate({ currentPassword: 'Sdk-pass-123', newPassword: 'Next-pass-456' });

    await api.auth.logout.mutate();
    expect(await store.get()).toBeNull();
    expect(await failure(api.auth.logout.mutate())).toBe('UNAUTHORIZED');

    await api.auth.login.mutate({ email: address, password: 'Next-pass-456' });
    await api.auth.logoutAll.mutate();
    expect(await failure(api.users.me.query())).toBe('UNAUTHORIZED');
  });

  it('users: me, updateMe, deleteMe, and the admin list, get, update, delete', async () => {
    const { api, user, password } = await signedIn('users');
    expect((await api.users.me.query()).id).toBe(user.id);
    expect((await api.users.updateMe.mutate({ name: 'Renamed' })).name).toBe('Renamed');
    expect(await failure(api.users.updateMe.mutate({ name: '' }))).toBe('VALIDATION_FAILED');

    expect(await failure(api.users.list.query({}))).toBe('PERMISSION_DENIED');
    const page = await admin.users.list.query({ limit: 1, search: user.email });
    expect(page.items.map((u) => u.id)).toEqual([user.id]);
    expect((await admin.users.get.query({ id: user.id })).email).toBe(user.email);
    expect(await failure(admin.users.get.query({ id: '01900000-0000-7000-8000-000000000000' }))).toBe('NOT_FOUND');
    expect((await admin.users.update.mutate({ id: user.id, name: 'By admin' })).name).toBe('By admin');
    expect(await failure(api.users.update.mutate({ id: user.id, disabled: true }))).toBe('PERMISSION_DENIED');

    expect(await failure(api.users.deleteMe.mutate({ password: 'Wrong-pass-1' }))).toBe('INVALID_CREDENTIALS');
    await api.users.deleteMe.mutate({ password });
    expect(await failure(admin.users.get.query({ id: user.id }))).toBe('NOT_FOUND');

    const doomed = await signedIn('doomed');
    await admin.users.delete.mutate({ id: doomed.user.id });
    expect(await failure(admin.users.delete.mutate({ id: doomed.user.id }))).toBe('NOT_FOUND');
  });

  it('users: archiveMe, archive, restore, and the batches createMany, updateMany, deleteMany', async () => {
    const member = await signedIn('archive');
    await member.api.users.archiveMe.mutate();
    // Every session ended, and the client cleared its store: it is signed out.
    expect(await failure(member.api.users.me.query())).toBe('UNAUTHORIZED');
    const anonymous = createClient({ url: server.url });
    const login = { email: member.user.email, password: member.password };
    expect(await failure(anonymous.auth.login.mutate(login))).toBe('ACCOUNT_ARCHIVED');
    const listed = async (includeArchived: boolean) =>
      (await admin.users.list.query({ search: member.user.email, includeArchived })).items.map((u) => u.id);
    expect(await listed(false)).toEqual([]);
    expect(await listed(true)).toEqual([member.user.id]);
    expect(await admin.users.restore.mutate({ id: member.user.id })).toMatchObject({ archived: false });
    await anonymous.auth.login.mutate(login);
    expect(await admin.users.archive.mutate({ id: member.user.id })).toMatchObject({ archived: true });
    expect(await failure(admin.users.restore.mutate({ id: '01900000-0000-7000-8000-000000000000' }))).toBe('NOT_FOUND');

    const [first, second] = [email('batch-a'), email('batch-b')];
    const created = await admin.users.createMany.mutate({
      items: [{ email: first, name: 'First', password: 'Batch-pass-1' }, { email: first }, { email: second }],
    });
    expect(created).toMatchObject({ succeeded: 2, failed: 1 });
    expect(created.results[1]?.error?.appCode).toBe('VALIDATION_FAILED');
    const ids = created.results.flatMap((result) => (result.user ? [result.user.id] : []));
    expect(created.results[0]?.user).toMatchObject({ email: first, name: 'First', roles: ['user'] });

    const atomic = await admin.users.updateMany.mutate({
      items: [{ id: ids[0] as string, disabled: true }, { id: '01900000-0000-7000-8000-000000000000' }],
      atomic: true,
    });
    expect(atomic.results.map((result) => result.error?.appCode)).toEqual(['BATCH_ABORTED', 'NOT_FOUND']);
    const updated = await admin.users.updateMany.mutate({ items: [{ id: ids[0] as string, disabled: true }] });
    expect(updated.results[0]?.user?.disabled).toBe(true);
    expect(await failure(anonymous.auth.login.mutate({ email: first, password: 'Batch-pass-1' }))).toBe(
      'ACCOUNT_DISABLED',
    );

    const removed = await admin.users.deleteMany.mutate({ ids });
    expect(removed).toMatchObject({ succeeded: 2, failed: 0 });
    expect(await failure(admin.users.get.query({ id: ids[1] as string }))).toBe('NOT_FOUND');
    const plain = await signedIn('plain');
    expect(await failure(plain.api.users.createMany.mutate({ items: [{ email: email('nope') }] }))).toBe(
      'PERMISSION_DENIED',
    );
  });

  it('languages: error messages follow the Accept-Language header, appCode stays; the account keeps its locale', async () => {
    const french = createClient({ url: server.url, headers: { 'accept-language': 'fr-FR, en;q=0.5' } });
    const refusal = await french.auth.login.mutate({ email: email('nobody'), password: 'Wrong-pass-1' }).then(
      () => undefined,
      (error: unknown) => error as { message: string },
    );
    expect(getAppErrorCode(refusal)).toBe('INVALID_CREDENTIALS');
    expect(refusal?.message).toBe('Adresse e-mail ou mot de passe incorrect');
    const member = await signedIn('locale');
    expect(await member.api.users.updateMe.mutate({ locale: 'fr' })).toMatchObject({ locale: 'fr' });
    expect((await member.api.users.me.query()).locale).toBe('fr');
    expect((await member.api.users.updateMe.mutate({ locale: null })).locale).toBeNull();
  });

  it('rbac: roles list, create, update, delete; permissions list; assign and unassign', async () => {
    const { api, user } = await signedIn('rbac');
    expect((await admin.rbac.permissions.list.query()).map((p) => p.name)).toContain('users:read');
    expect(await failure(api.rbac.permissions.list.query())).toBe('PERMISSION_DENIED');

    const role = await admin.rbac.roles.create.mutate({ name: `sdk-${Date.now()}`, permissions: ['users:read'] });
    expect(await failure(admin.rbac.roles.create.mutate({ name: role.name }))).toBe('ROLE_NAME_TAKEN');
    expect((await admin.rbac.roles.list.query()).map((r) => r.name)).toContain(role.name);
    const updated = await admin.rbac.roles.update.mutate({ id: role.id, permissions: ['users:read', 'roles:read'] });
    expect(updated.permissions).toEqual(['roles:read', 'users:read']);

    await admin.rbac.assignRole.mutate({ id: user.id, roleId: role.id });
    expect((await api.users.list.query({})).items.length).toBeGreaterThan(0);
    await admin.rbac.unassignRole.mutate({ id: user.id, roleId: role.id });
    expect(await failure(api.users.list.query({}))).toBe('PERMISSION_DENIED');

    await admin.rbac.roles.delete.mutate({ id: role.id });
    const builtIn = (await admin.rbac.roles.list.query()).find((r) => r.name === 'user');
    expect(await failure(admin.rbac.roles.delete.mutate({ id: builtIn?.id as string }))).toBe('BUILT_IN_ROLE');
  });

  it('notes: list, get, create, update, delete', async () => {
    const { api } = await signedIn('notes');
    const stranger = await signedIn('stranger');
    const note = await api.notes.create.mutate({ title: 'Through the SDK', body: 'typed' });
    expect(await failure(api.notes.create.mutate({ title: '' }))).toBe('VALIDATION_FAILED');
    expect((await api.notes.list.query({ search: 'sdk' })).items.map((n) => n.id)).toEqual([note.id]);
    expect((await api.notes.get.query({ id: note.id })).body).toBe('typed');
    expect(await failure(stranger.api.notes.get.query({ id: note.id }))).toBe('NOT_FOUND');
    expect((await api.notes.update.mutate({ id: note.id, title: 'Edited' })).title).toBe('Edited');
    expect(await failure(stranger.api.notes.update.mutate({ id: note.id, title: 'x' }))).toBe('NOT_FOUND');
    await api.notes.delete.mutate({ id: note.id });
    expect(await failure(api.notes.delete.mutate({ id: note.id }))).toBe('NOT_FOUND');
  });
});
