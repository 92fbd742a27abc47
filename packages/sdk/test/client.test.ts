import { createDb } from '@app/db';
import { startTestServer, type TestApp } from '@app/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppRouter, createClient, getAppErrorCode, TRPCClientError } from '../src/index.ts';

/** Every test here runs over both tRPC transports: the Fastify-native one and tRPC's own adapter. */
describe.each(['fast', 'official'] as const)('createClient (%s transport)', (trpcTransport) => {
  let server: TestApp & { url: string };
  const requests: { url: string; headers: Headers }[] = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    requests.push({ url: String(input), headers: new Headers(init?.headers) });
    return fetch(input, init);
  };

  beforeAll(async () => {
    server = await startTestServer({ trpcTransport });
  });
  afterAll(() => server.close());

  it('calls health.live and health.ready with typed results', async () => {
    const api = createClient({ url: server.url });
    const live = await api.health.live.query();
    expect(live).toEqual({ status: 'ok', version: '0.1.0', uptimeSeconds: expect.any(Number) });
    const ready = await api.health.ready.query();
    expect(ready.checks.database).toBe('ok');
  });

  it('batches concurrent calls into one HTTP request', async () => {
    requests.length = 0;
    const api = createClient({ url: `${server.url}/`, fetch: recordingFetch });
    const [live, ready] = await Promise.all([api.health.live.query(), api.health.ready.query()]);
    expect(live.status).toBe('ok');
    expect(ready.status).toBe('ok');
    expect(requests).toHaveLength(1);
    expect(requests[0]?.url).toMatch(/\/trpc\/health\.live,health\.ready\?batch=1/);
  });

  it('sends the bearer token and extra headers', async () => {
    requests.length = 0;
    const api = createClient({
      url: server.url,
      fetch: recordingFetch,
      getAccessToken: async () => 'token-123',
      headers: () => ({ 'x-request-id': 'sdk-test-1' }),
    });
    await api.health.live.query();
    expect(requests[0]?.headers.get('authorization')).toBe('Bearer token-123');
    expect(requests[0]?.headers.get('x-request-id')).toBe('sdk-test-1');
  });

  it('sends a long batch in one GET (the server accepts long batched paths)', async () => {
    requests.length = 0;
    const api = createClient({ url: server.url, fetch: recordingFetch, maxURLLength: 100_000 });
    const results = await Promise.all(Array.from({ length: 50 }, () => api.health.live.query()));
    expect(results.every((result) => result.status === 'ok')).toBe(true);
    expect(requests).toHaveLength(1);
    // Far past Fastify's default maxParamLength (100): the server raised it for batches.
    expect(new URL(requests[0]?.url as string).pathname.length).toBeGreaterThan(500);
  });

  it('splits more calls than the server’s batch limit (50) into several batches', async () => {
    requests.length = 0;
    const api = createClient({ url: server.url, fetch: recordingFetch, maxURLLength: 100_000 });
    const results = await Promise.all(Array.from({ length: 60 }, () => api.health.live.query()));
    expect(results.every((result) => result.status === 'ok')).toBe(true);
    expect(requests).toHaveLength(2);
  });

  it('splits a batch whose URL would exceed maxURLLength', async () => {
    requests.length = 0;
    const maxURLLength = server.url.length + 60; // room for about three procedure names
    const api = createClient({ url: server.url, fetch: recordingFetch, maxURLLength });
    const results = await Promise.all(Array.from({ length: 8 }, () => api.health.live.query()));
    expect(results).toHaveLength(8);
    expect(requests.length).toBeGreaterThan(1);
    for (const request of requests) expect(request.url.length).toBeLessThanOrEqual(maxURLLength);
  });

  it('sends non-JSON input (FormData) unbatched through httpLink', async () => {
    requests.length = 0;
    const api = createClient({ url: server.url, fetch: recordingFetch });
    const form = new FormData();
    form.append('file', new Blob(['hello']), 'hello.txt');
    // No procedure takes a file yet: the point is how the client sends it.
    const untyped = api as unknown as { health: { upload: { mutate(input: FormData): Promise<unknown> } } };
    await untyped.health.upload.mutate(form).catch(() => undefined);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.url).toMatch(/\/trpc\/health\.upload$/);
  });

  it('sends no Authorization header when there is no token', async () => {
    requests.length = 0;
    const api = createClient({ url: server.url, fetch: recordingFetch, getAccessToken: () => null });
    await api.health.live.query();
    expect(requests[0]?.headers.has('authorization')).toBe(false);
  });
});

describe.each(['fast', 'official'] as const)('errors through the SDK (%s transport)', (trpcTransport) => {
  it('exposes the app code, HTTP status and request id of a failed call', async () => {
    const server = await startTestServer({
      trpcTransport,
      overrides: { db: createDb({ url: 'postgres://postgres@127.0.0.1:1/nowhere', connectionTimeoutMs: 500 }) },
    });
    try {
      const api = createClient({ url: server.url });
      const error = await api.health.ready.query().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TRPCClientError);
      expect(getAppErrorCode(error)).toBe('DEPENDENCY_DOWN');
      const data = (error as TRPCClientError<AppRouter>).data;
      expect(data?.httpStatus).toBe(503);
      expect(data?.requestId).toMatch(/^[0-9a-f]{32}$/);
      expect(data?.details).toEqual({ checks: { database: 'down', redis: expect.any(String) }, retryAfterSeconds: 1 });
    } finally {
      await server.close();
    }
  });

  it('reports a network failure as a client error without an app code', async () => {
    const api = createClient({ url: 'http://127.0.0.1:1' });
    const error = await api.health.live.query().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(getAppErrorCode(error)).toBeUndefined();
  });
});
