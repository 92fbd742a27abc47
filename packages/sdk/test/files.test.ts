/**
 * `uploadFile` in Node (the fetch path, with progress), against the real server: typed
 * results, refusals as app codes, and the auth mode's refresh on an expired token.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestApp } from '@app/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createClient,
  getAppErrorCode,
  memoryTokenStore,
  type StoredFile,
  UploadError,
  uploadFile,
} from '../src/index.ts';

const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

describe('uploadFile', () => {
  let server: TestApp & { url: string };
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sdk-files-'));
    // Access tokens live 2 s, so the refresh path can be taken.
    server = await startTestServer({ env: { FILES_DIR: dir, ACCESS_TOKEN_TTL: '2' } });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function signedIn() {
    const tokenStore = memoryTokenStore();
    const options = { url: server.url, auth: { tokenStore } };
    const api = createClient(options);
    await api.auth.register.mutate({
      email: `sdk-files-${Date.now()}-${Math.random().toString(36).slice(2, 6)}@example.com`,
      password: 'Sdk-files-123',
    });
    return { options, api, tokenStore };
  }

  it('uploads with progress and answers the stored file, typed', async () => {
    const { options, api } = await signedIn();
    // Text of 3 MiB: several chunks, so progress is reported along the way.
    const bytes = Buffer.alloc(3 * 1024 * 1024, 'a');
    const progress: number[] = [];
    const stored: StoredFile = await uploadFile(options, new Blob([bytes], { type: 'text/html' }), {
      name: 'notes.txt',
      onProgress: ({ loaded, total }) => {
        expect(total).toBe(bytes.length);
        progress.push(loaded);
      },
    });
    expect(stored).toMatchObject({ name: 'notes.txt', contentType: 'text/plain', size: bytes.length });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(bytes.length);
    expect((await api.files.list.query({})).items.map((file) => file.id)).toContain(stored.id);

    const picture = await uploadFile(options, new File([PNG], 'me.png'));
    expect(picture).toMatchObject({ name: 'me.png', contentType: 'image/png', size: PNG.length });
    const me = await api.users.setAvatar.mutate({ fileId: picture.id });
    // Absolute, on PUBLIC_URL (here its default, http://localhost:<PORT>).
    expect(me.avatarUrl).toBe(`http://localhost:3000/api/files/${picture.id}/content`);
  });

  it('throws an UploadError whose app code says why', async () => {
    const { options } = await signedIn();
    const zip = Buffer.from([0x50, 0x4b, 0x03, 0x04, ...Buffer.alloc(100)]);
    const refused = await uploadFile(options, new Blob([zip]), { name: 'archive.zip' }).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(UploadError);
    expect(getAppErrorCode(refused)).toBe('UNSUPPORTED_FILE_TYPE');
    expect((refused as UploadError).status).toBe(415);
    const anonymous = await uploadFile({ url: server.url }, new Blob(['x'])).catch((error: unknown) => error);
    expect(getAppErrorCode(anonymous)).toBe('UNAUTHORIZED');
  });

  it("throws an UploadError without an app code for an answer that is not the API's (a proxy's error page)", async () => {
    const proxy = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(502, { 'content-type': 'text/html' });
        response.end('<html><body>502 Bad Gateway</body></html>');
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const failed = await uploadFile({ url }, new Blob(['x'])).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(UploadError);
      expect((failed as UploadError).status).toBe(502);
      expect(getAppErrorCode(failed)).toBeUndefined();
      expect((failed as UploadError).message).toBe('The upload failed (502)');
    } finally {
      proxy.close();
    }
  });

  it('ends only the session it was sent for when that one was revoked (a sign-in made meanwhile stays)', async () => {
    const { options, api, tokenStore } = await signedIn();
    const sent = await tokenStore.get();
    const email = (await api.users.me.query()).email;
    // Session A ends on the server (another device signs it out) while the store still holds it.
    await createClient({ url: server.url, auth: { tokenStore: memoryTokenStore(sent) } }).auth.logout.mutate();
    const fresh = await createClient({ url: server.url }).auth.login.mutate({ email, password: 'Sdk-files-123' });
    const newer = { accessToken: fresh.accessToken, refreshToken: fresh.refreshToken };
    const ended: string[] = [];
    // The upload reads session A; another tab signs in (session B) before its answer comes.
    let reads = 0;
    const racing = {
      get: () => (reads++ === 0 ? sent : tokenStore.get()),
      set: tokenStore.set,
    };
    const meanwhile = (async () => tokenStore.set(newer))();
    const upload = uploadFile(
      { ...options, auth: { tokenStore: racing, onSessionEnded: (reason: string) => ended.push(reason) } },
      new Blob(['too late']),
      { name: 'late.txt' },
    );
    await meanwhile;
    const refused = await upload.catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UploadError);
    expect((refused as UploadError).data.appCode).toBe('SESSION_REVOKED');
    expect(await tokenStore.get()).toEqual(newer);
    expect(ended).toEqual([]);
  });

  it('keeps the session when the refresh cannot reach the server, and fails the upload with that reason', async () => {
    const { options, tokenStore } = await signedIn();
    const tokens = await tokenStore.get();
    await sleep(3_100);
    const offline = {
      ...options,
      fetch: async (input: string | URL | Request, init?: RequestInit) => {
        if (String(input).includes('/auth.refresh')) throw new TypeError('fetch failed');
        return fetch(input, init);
      },
    };
    const refused = await uploadFile(offline, new Blob(['offline']), { name: 'offline.txt' }).catch((e: unknown) => e);
    expect(refused).not.toBeInstanceOf(UploadError); // not the upload's own 401
    expect((refused as Error).message).toMatch(/fetch failed/);
    expect(getAppErrorCode(refused)).toBeUndefined();
    expect(await tokenStore.get()).toEqual(tokens);
  });

  it('refreshes an expired access token once, then uploads', async () => {
    const { options, tokenStore } = await signedIn();
    const before = await tokenStore.get();
    await sleep(3_100);
    const stored = await uploadFile(options, new Blob(['after the refresh']), { name: 'late.txt' });
    expect(stored.size).toBe('after the refresh'.length);
    expect((await tokenStore.get())?.accessToken).not.toBe(before?.accessToken);
  });
});
