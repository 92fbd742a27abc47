import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestApp } from '@app/server/testing';
import type { HTTPHeaders } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createClient,
  getAppErrorCode,
  memoryTokenStore,
  type SessionEndReason,
  type TokenStore,
  type Tokens,
  TRPCClientError,
} from '../src/index.ts';

/** Access tokens live 2 s here (whole seconds: a new one has at least 1 s left), so a test can let one expire. */
/** A server that never answers: only the request's signal ends the wait. */
const noAnswer = (init: RequestInit | undefined) =>
  new Promise<Response>((_, reject) =>
    init?.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true }),
  );

describe('auth-aware client', () => {
  let server: TestApp & { url: string };
  /** Default token lifetimes: for checks that must not race an expiring token. */
  let steady: TestApp & { url: string };
  beforeAll(async () => {
    server = await startTestServer({ env: { ACCESS_TOKEN_TTL: '2' } });
    steady = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
    await steady.close();
  });

  function setup(target: { url: string } = server) {
    const store = memoryTokenStore();
    const ended: SessionEndReason[] = [];
    const calls: string[] = [];
    const api = createClient({
      url: target.url,
      auth: { tokenStore: store, onSessionEnded: (reason) => ended.push(reason) },
      fetch: async (input, init) => {
        calls.push(new URL(String(input)).pathname);
        return fetch(input, init);
      },
    });
    return { api, store, ended, calls };
  }

  const newEmail = () => `sdk-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;

  it('stores the tokens of a sign-in and sends them', async () => {
    const { api, store } = setup();
    const email = newEmail();
    const result = await api.auth.register.mutate({ email, password: 'Sdk-pass-123' });
    expect(await store.get()).toEqual({ accessToken: result.accessToken, refreshToken: result.refreshToken });
    expect((await api.users.me.query()).email).toBe(email);
  });

  it('refreshes an expired access token once and retries, even for many concurrent calls', async () => {
    const { api, store, calls } = setup();
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    const before = await store.get();
    await sleep(2_100);
    calls.length = 0;
    const results = await Promise.all([
      api.users.me.query(),
      api.auth.sessions.query(),
      api.users.me.query(),
      api.notes.list.query({}),
    ]);
    expect(results).toHaveLength(4);
    expect(calls.filter((path) => path.endsWith('/auth.refresh'))).toHaveLength(1);
    const after = await store.get();
    expect(after?.refreshToken).not.toBe(before?.refreshToken);
    expect(after?.accessToken).not.toBe(before?.accessToken);
  });

  it('refreshes and sends again a call whose stored access token cannot be read (a 401 a refresh cures)', async () => {
    const { api, store } = setup();
    const email = newEmail();
    const registered = await api.auth.register.mutate({ email, password: 'Sdk-pass-123' });
    await store.set({ accessToken: 'not-a-token', refreshToken: registered.refreshToken });
    expect((await api.users.me.query()).email).toBe(email);
    expect((await store.get())?.refreshToken).not.toBe(registered.refreshToken);
  });

  it('clears the store on logout', async () => {
    const { api, store } = setup();
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    await api.auth.logout.mutate();
    expect(await store.get()).toBeNull();
    const error = await api.users.me.query().catch((e: unknown) => e);
    expect(getAppErrorCode(error)).toBe('UNAUTHORIZED');
  });

  it('ends the session when the refresh fails, telling onSessionEnded once', async () => {
    const victim = setup();
    const email = newEmail();
    await victim.api.auth.register.mutate({ email, password: 'Sdk-pass-123' });
    // The same user signs in elsewhere and ends every session; the victim's access token then expires.
    const elsewhere = setup();
    await elsewhere.api.auth.login.mutate({ email, password: 'Sdk-pass-123' });
    await elsewhere.api.auth.logoutAll.mutate();
    await sleep(2_100);
    const errors = await Promise.all(
      [victim.api.users.me.query(), victim.api.users.me.query()].map((p) => p.catch((e: unknown) => e)),
    );
    for (const error of errors) expect(getAppErrorCode(error)).toMatch(/SESSION_REVOKED|TOKEN_EXPIRED/);
    // The refresh was refused because the session was ended: said so, not "the refresh failed".
    expect(victim.ended).toEqual(['session-revoked']);
    expect(await victim.store.get()).toBeNull();
  });

  it('ends the session as refresh-failed when the server does not know the refresh token', async () => {
    const { api, store, ended } = setup();
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    const tokens = await store.get();
    await store.set({ accessToken: tokens?.accessToken ?? '', refreshToken: 'x'.repeat(43) });
    await sleep(2_100);
    const error = await api.users.me.query().catch((e: unknown) => e);
    expect(getAppErrorCode(error)).toBe('TOKEN_EXPIRED');
    expect(ended).toEqual(['refresh-failed']);
    expect(await store.get()).toBeNull();
  });

  it('sends its own headers, given as Headers, on signed-in calls and with the refresh', async () => {
    const seen: { path: string; tenant: string | null; authorization: string | null }[] = [];
    const api = createClient({
      url: server.url,
      auth: { tokenStore: memoryTokenStore() },
      // (A Headers is one of tRPC's header forms, an iterable of pairs; TypeScript's DOM types
      // give its iterator another name.)
      headers: new Headers({ 'x-tenant': 'acme' }) as unknown as HTTPHeaders,
      fetch: async (input, init) => {
        const headers = new Headers(init?.headers);
        const path = new URL(String(input)).pathname;
        seen.push({ path, tenant: headers.get('x-tenant'), authorization: headers.get('authorization') });
        return fetch(input, init);
      },
    });
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    await sleep(2_100);
    await api.users.me.query();
    expect(seen.map((request) => request.path)).toEqual([
      '/trpc/auth.register',
      '/trpc/users.me',
      '/trpc/auth.refresh',
      '/trpc/users.me',
    ]);
    expect(seen.map((request) => request.tenant)).toEqual(['acme', 'acme', 'acme', 'acme']);
    expect(seen[1]?.authorization).toMatch(/^Bearer /);
    expect(seen[2]?.authorization).toBeNull();
  });

  /** Two tabs of one browser: each its own client and store object, over the same saved tokens (localStorage). */
  function twoTabs(fetchOfSecond: typeof fetch) {
    let saved: Tokens | null = null;
    const tabStore = (): TokenStore => ({
      get: () => saved,
      set: (tokens) => {
        saved = tokens;
      },
    });
    const ended: SessionEndReason[] = [];
    const first = createClient({ url: server.url, auth: { tokenStore: tabStore() } });
    const second = createClient({
      url: server.url,
      auth: { tokenStore: tabStore(), onSessionEnded: (reason) => ended.push(reason) },
      fetch: fetchOfSecond,
    });
    return { first, second, saved: () => saved, ended };
  }

  it('takes the tokens another tab stored meanwhile instead of refreshing again', async () => {
    const paths: string[] = [];
    let beforeAnswer: (() => Promise<unknown>) | undefined;
    const tabs = twoTabs(async (input, init) => {
      paths.push(new URL(String(input)).pathname);
      const answer = await fetch(input, init);
      const hold = beforeAnswer;
      beforeAnswer = undefined;
      await hold?.();
      return answer;
    });
    const email = newEmail();
    await tabs.first.auth.register.mutate({ email, password: 'Sdk-pass-123' });
    const registered = tabs.saved();
    await sleep(2_100);
    // The second tab's call comes back 401 after the first tab has refreshed.
    beforeAnswer = () => tabs.first.users.me.query();
    expect((await tabs.second.users.me.query()).email).toBe(email);
    expect(paths.filter((path) => path.endsWith('/auth.refresh'))).toHaveLength(0);
    expect(tabs.saved()?.refreshToken).not.toBe(registered?.refreshToken);
    expect(tabs.ended).toEqual([]);
  });

  it("never sends a call again as another account that signed in meanwhile in another tab: the write is not that account's", async () => {
    let beforeAnswer: (() => Promise<unknown>) | undefined;
    const tabs = twoTabs(async (input, init) => {
      const answer = await fetch(input, init);
      const hold = beforeAnswer;
      beforeAnswer = undefined;
      await hold?.();
      return answer;
    });
    await tabs.first.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    await sleep(2_100); // the first account's access token expires
    // The second tab's write comes back 401 after the first tab has signed in to another account.
    const other = newEmail();
    beforeAnswer = () => tabs.first.auth.register.mutate({ email: other, password: 'Sdk-pass-123' });
    const write = await tabs.second.notes.create
      .mutate({ title: 'meant for the first account' })
      .catch((e: unknown) => e);
    expect(getAppErrorCode(write)).toBe('TOKEN_EXPIRED');
    expect((await tabs.first.users.me.query()).email).toBe(other);
    expect((await tabs.first.notes.list.query({})).items).toEqual([]); // before: the note was the other account's
    expect(tabs.ended).toEqual([]);
  });

  it("lets a sign-in made while a sign-out was on its way stay: the sign-out's answer clears only its own session", async () => {
    let beforeSent: (() => Promise<unknown>) | undefined;
    let beforeAnswer: (() => Promise<unknown>) | undefined;
    const tabs = twoTabs(async (input, init) => {
      const logout = new URL(String(input)).pathname.endsWith('/auth.logout');
      if (logout) await beforeSent?.();
      const answer = await fetch(input, init);
      if (logout) await beforeAnswer?.();
      return answer;
    });
    await tabs.first.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    // The second tab signs out; before its answer arrives, the first signs another account in.
    const other = newEmail();
    let signedIn: Tokens | undefined;
    beforeAnswer = async () => {
      signedIn = await tabs.first.auth.register.mutate({ email: other, password: 'Sdk-pass-123' });
    };
    await tabs.second.auth.logout.mutate();
    expect(tabs.saved()?.refreshToken).toBe(signedIn?.refreshToken); // before: cleared
    expect((await tabs.first.users.me.query()).email).toBe(other);
    // A sign-out whose session is the store's clears it, refreshed meanwhile or not.
    beforeAnswer = undefined;
    beforeSent = () => tabs.first.auth.refresh.mutate({ refreshToken: tabs.saved()?.refreshToken ?? '' });
    const sentWith = tabs.saved();
    await tabs.second.auth.logout.mutate();
    expect(sentWith).not.toBeNull();
    expect(tabs.saved()).toBeNull();
  });

  it('goes on with the stored tokens when its refresh is refused as late (two rotations by other tabs first)', async () => {
    let beforeRefresh: (() => Promise<unknown>) | undefined;
    const tabs = twoTabs(async (input, init) => {
      if (new URL(String(input)).pathname.endsWith('/auth.refresh')) {
        const hold = beforeRefresh;
        beforeRefresh = undefined;
        await hold?.();
      }
      return fetch(input, init);
    });
    const email = newEmail();
    await tabs.first.auth.register.mutate({ email, password: 'Sdk-pass-123' });
    await sleep(2_100);
    // While the second tab's refresh is on its way, the first rotates the tokens twice.
    beforeRefresh = async () => {
      await tabs.first.users.me.query();
      await tabs.first.auth.refresh.mutate({ refreshToken: tabs.saved()?.refreshToken ?? '' });
    };
    expect((await tabs.second.users.me.query()).email).toBe(email);
    expect(tabs.ended).toEqual([]);
    expect(tabs.saved()).not.toBeNull();
    expect((await tabs.first.users.me.query()).email).toBe(email);
  });

  it('lets a call waiting for the refresh be aborted, and does not send it again', async () => {
    const refreshHeld = Promise.withResolvers<void>();
    const refreshing = Promise.withResolvers<void>();
    const paths: string[] = [];
    const store = memoryTokenStore();
    const api = createClient({
      url: server.url,
      auth: { tokenStore: store },
      fetch: async (input, init) => {
        const path = new URL(String(input)).pathname;
        paths.push(path);
        if (path.endsWith('/auth.refresh')) {
          refreshing.resolve();
          await refreshHeld.promise;
        }
        return fetch(input, init);
      },
    });
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    await sleep(2_100);
    const controller = new AbortController();
    const call = api.users.me.query(undefined, { signal: controller.signal }).catch((e: unknown) => e);
    await refreshing.promise;
    controller.abort();
    const error = await call;
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as Error).cause).toMatchObject({ name: 'AbortError' });
    refreshHeld.resolve();
    await sleep(100);
    expect(paths.filter((path) => path.endsWith('/users.me'))).toHaveLength(1);
    // The refresh itself went on: the next call needs none.
    expect((await api.users.me.query()).email).toMatch(/^sdk-/);
    expect(paths.filter((path) => path.endsWith('/auth.refresh'))).toHaveLength(1);
  });

  it('sends the refresh again at once when its answer was lost: the server’s grace gives the same tokens back', async () => {
    const store = memoryTokenStore();
    const ended: SessionEndReason[] = [];
    let refreshes = 0;
    const api = createClient({
      url: server.url,
      // Two tries of 3 s: the second, a real refresh, with room for a loaded machine.
      auth: { tokenStore: store, refreshTimeoutMs: 6_000, onSessionEnded: (reason) => ended.push(reason) },
      fetch: async (input, init) => {
        if (!new URL(String(input)).pathname.endsWith('/auth.refresh') || ++refreshes > 1) return fetch(input, init);
        // The server rotates the tokens; its answer never reaches the client.
        await fetch(input, { ...init, signal: null });
        return noAnswer(init);
      },
    });
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    const before = await store.get();
    await sleep(2_100);
    expect((await api.users.me.query()).email).toMatch(/^sdk-/);
    expect(refreshes).toBe(2);
    expect(ended).toEqual([]);
    expect((await store.get())?.refreshToken).not.toBe(before?.refreshToken);
    // The session was not taken for a stolen token's: it goes on.
    expect((await api.auth.sessions.query()).length).toBeGreaterThan(0);
  });

  it('fails the waiting calls after refreshTimeoutMs when the refresh gets no answer, and keeps the session', async () => {
    const store = memoryTokenStore();
    let hang = false;
    const ended: SessionEndReason[] = [];
    const api = createClient({
      url: server.url,
      auth: { tokenStore: store, refreshTimeoutMs: 300, onSessionEnded: (reason) => ended.push(reason) },
      fetch: async (input, init) => {
        if (hang && new URL(String(input)).pathname.endsWith('/auth.refresh')) {
          return noAnswer(init);
        }
        return fetch(input, init);
      },
    });
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    const tokens = await store.get();
    await sleep(2_100);
    hang = true;
    const error = await api.users.me.query().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(getAppErrorCode(error)).toBeUndefined();
    expect(await store.get()).toEqual(tokens);
    expect(ended).toEqual([]);
    // The session still works: checked by a client that gives the refresh its default time
    // (a loaded machine can take longer than this one's 300 ms to answer a refresh).
    const later = createClient({ url: server.url, auth: { tokenStore: store } });
    expect((await later.users.me.query()).email).toMatch(/^sdk-/);
  });

  it('keeps the session when the refresh cannot reach the server, and fails the call with that reason', async () => {
    const store = memoryTokenStore();
    const ended: SessionEndReason[] = [];
    let offline = false;
    const api = createClient({
      url: server.url,
      auth: { tokenStore: store, onSessionEnded: (reason) => ended.push(reason) },
      fetch: async (input, init) => {
        if (offline && new URL(String(input)).pathname.endsWith('/auth.refresh')) throw new TypeError('fetch failed');
        return fetch(input, init);
      },
    });
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    const tokens = await store.get();
    await sleep(2_100);
    offline = true;
    const error = await api.users.me.query().catch((e: unknown) => e);
    // Not the call's own 401 (TOKEN_EXPIRED): nothing is wrong with the session.
    expect(getAppErrorCode(error)).toBeUndefined();
    expect((error as Error).message).toMatch(/fetch failed/);
    expect(await store.get()).toEqual(tokens);
    expect(ended).toEqual([]);
    offline = false;
    expect((await api.users.me.query()).email).toMatch(/^sdk-/);
  });

  it('ends the session at once when the server says it was revoked', async () => {
    const { api, store, ended, calls } = setup(steady);
    const email = newEmail();
    await api.auth.register.mutate({ email, password: 'Sdk-pass-123' });
    const other = setup(steady);
    await other.api.auth.login.mutate({ email, password: 'Sdk-pass-123' });
    await other.api.auth.logoutAll.mutate();
    calls.length = 0;
    // Several calls meet it at once (each answers for itself): the session ends once.
    const errors = await Promise.all(
      [api.users.me.query(), api.auth.sessions.query(), api.notes.list.query({})].map((call) =>
        call.catch((e: unknown) => e),
      ),
    );
    expect(errors.map(getAppErrorCode)).toEqual(['SESSION_REVOKED', 'SESSION_REVOKED', 'SESSION_REVOKED']);
    expect(ended).toEqual(['session-revoked']);
    expect(await store.get()).toBeNull();
    expect(calls.filter((path) => path.endsWith('/auth.refresh'))).toHaveLength(0);
  });

  it('does not retry a wrong password (a sign-in call is never refreshed)', async () => {
    const { api, calls, ended } = setup();
    const error = await api.auth.login.mutate({ email: newEmail(), password: 'Wrong-pass-1' }).catch((e: unknown) => e);
    expect(getAppErrorCode(error)).toBe('INVALID_CREDENTIALS');
    expect(calls).toHaveLength(1);
    expect(ended).toEqual([]);
  });

  it('does not refresh and resend a signed-in call refused for a wrong password', async () => {
    const { api, calls } = setup(steady);
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    calls.length = 0;
    const error = await api.auth.changePassword
      .mutate({ currentPassword: 'Wrong-pass-1', newPassword: 'Other-pass-456' })
      .catch((e: unknown) => e);
    expect(getAppErrorCode(error)).toBe('INVALID_CREDENTIALS');
    // Refreshing and sending it again counted a second failure against the account's limit.
    expect(calls).toEqual(['/trpc/auth.changePassword']);
  });

  it('clears the store when the account archives itself (every session ends)', async () => {
    const { api, store } = setup(steady);
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    await api.users.archiveMe.mutate();
    expect(await store.get()).toBeNull();
  });

  it('fails the call, instead of leaving it unsettled, when the token store fails', async () => {
    const api = createClient({
      url: steady.url,
      auth: {
        tokenStore: {
          get: () => null,
          set: () => {
            throw new Error('QuotaExceededError: the storage is full');
          },
        },
      },
    });
    const error = await api.auth.register
      .mutate({ email: newEmail(), password: 'Sdk-pass-123' })
      .catch((e: unknown) => e);
    expect(String(error)).toMatch(/the storage is full/);
  });

  it('lets a sign-in made while a call was out stand when that call comes back SESSION_REVOKED', async () => {
    const store = memoryTokenStore();
    const ended: SessionEndReason[] = [];
    let hold: Promise<void> | undefined;
    const answered = Promise.withResolvers<void>();
    const api = createClient({
      url: steady.url,
      auth: { tokenStore: store, onSessionEnded: (reason) => ended.push(reason) },
      fetch: async (input, init) => {
        const answer = await fetch(input, init);
        if (hold && String(input).includes('/users.me')) {
          answered.resolve();
          await hold;
        }
        return answer;
      },
    });
    const email = newEmail();
    await api.auth.register.mutate({ email, password: 'Sdk-pass-123' });
    const elsewhere = setup(steady);
    await elsewhere.api.auth.login.mutate({ email, password: 'Sdk-pass-123' });
    await elsewhere.api.auth.logoutAll.mutate();
    const held = Promise.withResolvers<void>();
    hold = held.promise;
    const call = api.users.me.query().catch((e: unknown) => e);
    await answered.promise;
    hold = undefined;
    const other = await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    held.resolve();
    expect(getAppErrorCode(await call)).toBe('SESSION_REVOKED');
    expect((await store.get())?.refreshToken).toBe(other.refreshToken);
    expect(ended).toEqual([]);
  });

  it('lets a sign-in made while a refresh runs win: the refresh does not overwrite it', async () => {
    const store = memoryTokenStore();
    const refreshHeld = Promise.withResolvers<void>();
    const refreshing = Promise.withResolvers<void>();
    const api = createClient({
      url: server.url,
      auth: { tokenStore: store },
      fetch: async (input, init) => {
        const answer = await fetch(input, init);
        if (String(input).includes('/auth.refresh')) {
          refreshing.resolve();
          await refreshHeld.promise;
        }
        return answer;
      },
    });
    await api.auth.register.mutate({ email: newEmail(), password: 'Sdk-pass-123' });
    await sleep(2_100); // the access token expires: the next call refreshes
    const call = api.users.me.query();
    await refreshing.promise;
    // Meanwhile another account signs in on this client.
    const other = newEmail();
    const signedIn = await api.auth.register.mutate({ email: other, password: 'Sdk-pass-123' });
    refreshHeld.resolve();
    // The call was the first account's: it fails, rather than go again as the other (before:
    // it answered the other account's user).
    expect(getAppErrorCode(await call.catch((e: unknown) => e))).toBe('TOKEN_EXPIRED');
    expect((await store.get())?.refreshToken).toBe(signedIn.refreshToken);
    expect((await api.users.me.query()).email).toBe(other);
  });
});
