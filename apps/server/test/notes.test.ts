import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Account, bearer, buildTestApp, grantRole, registerAccount, type TestApp } from './helpers/index.ts';

describe('notes', () => {
  let t: TestApp;
  let alice: Account;
  let bob: Account;
  beforeAll(async () => {
    t = await buildTestApp();
    alice = await registerAccount(t.app);
    bob = await registerAccount(t.app);
  });
  afterAll(() => t.close());

  const as = (account: Account, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    t.app.inject({ method, url, headers: bearer(account), ...(payload && { payload }) });
  const create = async (account: Account, title: string, body?: string) =>
    (await as(account, 'POST', '/api/notes', { title, body })).json();

  it('creates, reads, updates and deletes a note of the caller', async () => {
    const note = await create(alice, '  Groceries ', 'milk');
    expect(note).toMatchObject({ title: 'Groceries', body: 'milk', ownerId: alice.id });
    expect((await as(alice, 'GET', `/api/notes/${note.id}`)).json()).toEqual(note);
    const updated = (await as(alice, 'PATCH', `/api/notes/${note.id}`, { body: 'milk, eggs' })).json();
    expect(updated).toMatchObject({ title: 'Groceries', body: 'milk, eggs' });
    expect(Date.parse(updated.updatedAt)).toBeGreaterThanOrEqual(Date.parse(note.updatedAt));
    expect((await as(alice, 'DELETE', `/api/notes/${note.id}`)).statusCode).toBe(200);
    expect((await as(alice, 'GET', `/api/notes/${note.id}`)).statusCode).toBe(404);
    expect((await as(alice, 'DELETE', `/api/notes/${note.id}`)).statusCode).toBe(404);
  });

  it("hides another user's note behind 404 for every operation, and leaves it intact", async () => {
    const secret = await create(bob, 'Bob only', 'secret');
    for (const [method, payload] of [['GET'], ['PATCH', { title: 'pwned' }], ['DELETE']] as const) {
      const response = await as(alice, method, `/api/notes/${secret.id}`, payload);
      expect(response.statusCode).toBe(404);
      expect(response.json().appCode).toBe('NOT_FOUND');
    }
    expect((await as(bob, 'GET', `/api/notes/${secret.id}`)).json()).toMatchObject({
      title: 'Bob only',
      body: 'secret',
    });
  });

  it('lets a holder of notes:read-any read (not change) any note', async () => {
    const reader = await registerAccount(t.app);
    const role = (
      await t.services.db
        .insertInto('roles')
        .values({ name: `readers-${Date.now()}` })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
    await t.services.db
      .insertInto('role_permissions')
      .values({ role_id: role, permission: 'notes:read-any' })
      .execute();
    await t.services.db.insertInto('user_roles').values({ user_id: reader.id, role_id: role }).execute();
    const note = await create(bob, 'Readable');
    expect((await as(reader, 'GET', `/api/notes/${note.id}`)).json().title).toBe('Readable');
    expect((await as(reader, 'PATCH', `/api/notes/${note.id}`, { title: 'x' })).statusCode).toBe(404);
    const admin = await registerAccount(t.app);
    await grantRole(t.services.db, admin.id, 'admin');
    expect((await as(admin, 'GET', `/api/notes/${note.id}`)).statusCode).toBe(200);
  });

  it('lists only the caller’s notes, newest first, page by page, with title search', async () => {
    const owner = await registerAccount(t.app);
    const titles = ['alpha', 'beta', 'gamma 100%', 'delta', 'epsilon_x'];
    const made = [];
    for (const title of titles) made.push(await create(owner, title));
    await create(bob, 'alpha from bob');

    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/notes?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await as(owner, 'GET', url)).json() as { items: { id: string }[]; nextCursor: string | null };
      ids.push(...page.items.map((n) => n.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(ids).toEqual(made.map((n) => n.id).reverse());

    const search = async (q: string) =>
      ((await as(owner, 'GET', `/api/notes?search=${encodeURIComponent(q)}`)).json().items as { title: string }[]).map(
        (n) => n.title,
      );
    expect(await search('ALPHA')).toEqual(['alpha']);
    expect(await search('100%')).toEqual(['gamma 100%']);
    expect(await search('%')).toEqual(['gamma 100%']);
    expect(await search('_')).toEqual(['epsilon_x']);
    expect(await search("' or 1=1; drop table notes; --")).toEqual([]);
    const input = encodeURIComponent(JSON.stringify({ limit: 10 }));
    expect((await as(owner, 'GET', `/trpc/notes.list?input=${input}`)).json().result.data.items).toHaveLength(5);
    // The first page again: an empty cursor (`?cursor=`), or null (what a last page answers, a pager's first parameter).
    expect((await as(owner, 'GET', '/api/notes?limit=10&cursor=')).json().items).toHaveLength(5);
    const fromNull = encodeURIComponent(JSON.stringify({ limit: 10, cursor: null }));
    expect((await as(owner, 'GET', `/trpc/notes.list?input=${fromNull}`)).json().result.data.items).toHaveLength(5);
    expect((await as(owner, 'GET', '/api/notes?cursor=not-an-id')).statusCode).toBe(400);
  });

  it('enforces the limits and types, storing nothing on failure', async () => {
    const writer = await registerAccount(t.app);
    const cases: object[] = [
      { title: '' },
      { title: '   ' },
      { title: 'x'.repeat(201) },
      { title: '\u200B\u200B' },
      { title: '\u0007\u001b[31m' },
      { title: 'two\nlines' },
      { title: 'ok', body: 'x'.repeat(20_001) },
      { title: 123 },
      { title: { $gt: '' } },
      { body: 'no title' },
      {},
    ];
    for (const payload of cases) {
      const response = await as(writer, 'POST', '/api/notes', payload);
      expect(response.statusCode, JSON.stringify(payload).slice(0, 60)).toBe(400);
      expect(response.json().issues.length).toBeGreaterThan(0);
    }
    expect(
      (await as(writer, 'POST', '/api/notes', { title: 'x'.repeat(200), body: 'y'.repeat(20_000) })).statusCode,
    ).toBe(200);
    const stored = await t.services.db.selectFrom('notes').select('id').where('owner_id', '=', writer.id).execute();
    expect(stored).toHaveLength(1);
    expect((await as(writer, 'GET', '/api/notes/not-a-uuid')).statusCode).toBe(400);
    expect((await as(writer, 'GET', "/api/notes/1'%20OR%20'1'='1")).statusCode).toBe(400);
  });

  it('requires a signed-in caller', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/api/notes' })).statusCode).toBe(401);
  });
});
