/**
 * File uploads (`POST /api/files`, multipart): in browsers and React Native through
 * XMLHttpRequest (upload progress), elsewhere (Node, Deno, Bun) through fetch with a
 * streamed multipart body (progress too). Signed in like the client: the auth mode's token
 * store (a 401 refreshes once, then the upload is retried) or `getAccessToken`.
 */
import { ABORTED, unlessAborted } from './auth.ts';
import type { AppErrorCode, StoredFile } from './router.gen.ts';

export interface UploadOptions {
  /** The name to keep for display; defaults to the File's name. */
  name?: string;
  /** Bytes sent so far, of `total`. */
  onProgress?: (progress: { loaded: number; total: number }) => void;
  signal?: AbortSignal;
}

/** Where and as whom to upload: the same options `createClient` takes. */
export interface UploadTarget {
  url: string;
  auth?: { tokenStore: { get(): MaybePromise<SentTokens | null> } };
  getAccessToken?: () => MaybePromise<string | null | undefined>;
  headers?: Record<string, string> | (() => MaybePromise<Record<string, string>>);
  fetch?: typeof globalThis.fetch;
}

type MaybePromise<T> = T | Promise<T>;
/** The session an upload went out for, as the token store held it. */
type SentTokens = { accessToken: string; refreshToken: string };

/** What the streamed body reads of the file at a time (and reports progress for). */
const CHUNK_BYTES = 256 * 1024;

/**
 * An upload that did not succeed: `data.appCode` says why when the API answered (e.g.
 * `FILE_TOO_LARGE`); undefined for any other answer (a proxy's error page).
 */
export class UploadError extends Error {
  override name = 'UploadError';
  readonly status: number;
  readonly data: {
    appCode: AppErrorCode | undefined;
    requestId?: string | undefined;
    details?: Record<string, unknown>;
  };
  constructor(
    status: number,
    body: { message?: string; appCode?: AppErrorCode; requestId?: string; details?: Record<string, unknown> },
  ) {
    super(body.message ?? `The upload failed (${status})`);
    this.status = status;
    this.data = { appCode: body.appCode, requestId: body.requestId, details: body.details };
  }
}

interface Answer {
  status: number;
  body: unknown;
}

/**
 * Uploads `file` and answers its metadata. With the auth mode, `session` handles a 401 as
 * the client does: a revoked session ends, an expired token is refreshed once.
 */
export async function uploadFile(
  target: UploadTarget,
  file: Blob,
  options: UploadOptions = {},
  session?: {
    refreshOnce(sentWith: SentTokens | null): Promise<{ refreshed: boolean; unreachable?: unknown }>;
    endSession(reason: 'session-revoked', session: SentTokens | null): Promise<void>;
  },
): Promise<StoredFile> {
  const endpoint = `${target.url.replace(/\/+$/, '')}/api/files`;
  const name = options.name ?? ('name' in file && typeof file.name === 'string' ? file.name : 'file');
  let sentWith: SentTokens | null = null;
  const send = async (): Promise<Answer> => {
    const sent = await headersOf(target);
    sentWith = sent.tokens;
    const { headers } = sent;
    // XMLHttpRequest wherever there is one (browsers, React Native), for its upload progress,
    // whatever `fetch` the client was given: they send no streamed body (browsers over
    // HTTP/1.1, React Native at all). Elsewhere (Node, Deno, Bun) that `fetch`, streamed.
    return typeof XMLHttpRequest !== 'undefined'
      ? sendWithXhr(endpoint, file, name, headers, options)
      : sendWithFetch(endpoint, file, name, headers, options, target.fetch ?? globalThis.fetch);
  };
  const revoked = (answer: Answer) =>
    answer.status === 401 && (answer.body as { appCode?: string } | undefined)?.appCode === 'SESSION_REVOKED';
  let answer = await send();
  if (answer.status === 401 && session && !revoked(answer)) {
    const refresh = await unlessAborted(session.refreshOnce(sentWith), options.signal);
    if (refresh === ABORTED) throw options.signal?.reason;
    if (refresh.refreshed) answer = await send();
    // The session stands but could not be refreshed (the network, a 503): that is the reason.
    else if ('unreachable' in refresh) throw refresh.unreachable;
  }
  // Only the session it was sent for: a sign-in made meanwhile (another tab) stays.
  if (revoked(answer) && session) await session.endSession('session-revoked', sentWith);
  if (answer.status !== 201) throw new UploadError(answer.status, (answer.body ?? {}) as object);
  return answer.body as StoredFile;
}

/** The request's headers, and the auth mode's tokens they were made from. */
async function headersOf(
  target: UploadTarget,
): Promise<{ headers: Record<string, string>; tokens: SentTokens | null }> {
  const base = typeof target.headers === 'function' ? await target.headers() : (target.headers ?? {});
  const tokens = target.auth ? await target.auth.tokenStore.get() : null;
  const token = target.auth ? tokens?.accessToken : await target.getAccessToken?.();
  return { headers: token ? { ...base, authorization: `Bearer ${token}` } : base, tokens };
}

function sendWithXhr(
  endpoint: string,
  file: Blob,
  name: string,
  headers: Record<string, string>,
  options: UploadOptions,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', endpoint);
    for (const [key, value] of Object.entries(headers)) xhr.setRequestHeader(key, value);
    xhr.upload.onprogress = (event) => options.onProgress?.({ loaded: event.loaded, total: event.total || file.size });
    xhr.onload = () => resolve({ status: xhr.status, body: parseJson(xhr.responseText) });
    xhr.onerror = () => reject(new TypeError('The upload failed: network error'));
    const { signal } = options;
    const abort = () => xhr.abort();
    const done = () => signal?.removeEventListener('abort', abort);
    xhr.onloadend = done;
    xhr.onabort = () => reject(signal?.reason ?? new DOMException('The upload was aborted', 'AbortError'));
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    signal?.addEventListener('abort', abort, { once: true });
    const form = new FormData();
    form.append('file', file, name);
    xhr.send(form);
  });
}

/** A multipart body streamed by hand, so that progress can be counted as the bytes go. */
async function sendWithFetch(
  endpoint: string,
  file: Blob,
  name: string,
  headers: Record<string, string>,
  options: UploadOptions,
  fetchImpl: typeof globalThis.fetch,
): Promise<Answer> {
  const boundary = `----app-sdk-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const encoder = new TextEncoder();
  const quoted = name.replace(/[\r\n"]/g, '_');
  const head = encoder.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted}"; filename*=UTF-8''${encodeURIComponent(name)}\r\n` +
      `Content-Type: ${file.type || 'application/octet-stream'}\r\n\r\n`,
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const total = file.size;
  let loaded = 0;
  let stage: 'head' | 'file' | 'tail' | 'done' = 'head';
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (stage === 'head') {
        controller.enqueue(head);
        stage = 'file';
        return;
      }
      if (stage === 'file') {
        if (loaded < total) {
          // A slice at a time: the file is never read whole, and progress moves per chunk.
          const chunk = new Uint8Array(await file.slice(loaded, loaded + CHUNK_BYTES).arrayBuffer());
          controller.enqueue(chunk);
          loaded += chunk.byteLength;
          options.onProgress?.({ loaded, total });
          return;
        }
        stage = 'tail';
      }
      if (stage === 'tail') {
        controller.enqueue(tail);
        stage = 'done';
        if (total === 0) options.onProgress?.({ loaded: 0, total: 0 });
        return;
      }
      controller.close();
    },
  });
  const response = await fetchImpl(endpoint, {
    method: 'POST',
    headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
    body,
    // Node's fetch streams a ReadableStream body only in half-duplex mode.
    duplex: 'half',
    ...(options.signal && { signal: options.signal }),
  } as RequestInit);
  return { status: response.status, body: parseJson(await response.text()) };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
