/**
 * The typed client for TypeScript frontends:
 *
 *   const api = createClient({ url: 'http://localhost:3000', getAccessToken: () => token });
 *   const { status } = await api.health.live.query();
 *
 * The types are the server's router as the client sees it (router.gen.ts, generated from
 * the server's code): no server code or server types reach a frontend.
 */

import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { type AuthOptions, authLink, sessionKeeper } from './auth.ts';
import { uploadFile as send, UploadError, type UploadOptions } from './files.ts';
import type { AppErrorCode, AppErrorData, AppRouter, StoredFile } from './router.gen.ts';

export {
  type AuthOptions,
  accountOf,
  memoryTokenStore,
  type SessionEndReason,
  type TokenStore,
  type Tokens,
} from './auth.ts';

import {
  createTRPCClient,
  type HTTPHeaders,
  httpBatchLink,
  httpLink,
  isNonJsonSerializable,
  splitLink,
  type TRPCClient,
  TRPCClientError,
} from '@trpc/client';

export type {
  AppErrorCode,
  AppErrorData,
  AppErrorShape,
  AppRouter,
  AuthResult,
  Identity,
  Note,
  Permission,
  ProviderId,
  Role,
  Session,
  SignInResult,
  StoredFile,
  User,
  ValidationIssue,
} from './router.gen.ts';
export { TRPCClientError, UploadError, type UploadOptions };

/** Every procedure's input, by path: `RouterInputs['notes']['create']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** Every procedure's output, by path: `RouterOutputs['users']['me']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;

type MaybePromise<T> = T | Promise<T>;

export interface ClientOptions {
  /** The server's base URL, e.g. `https://api.example.com` (tRPC is served under `/trpc`). */
  url: string;
  /**
   * Auth-aware mode: tokens from sign-in results are kept in `tokenStore`, sent as the
   * bearer token, refreshed once on a 401 (then the call is retried once), and cleared on
   * sign-out; `onSessionEnded` hears when the session cannot be refreshed.
   */
  auth?: AuthOptions;
  /** Sent as `Authorization: Bearer <token>` when it returns a token (without `auth`). */
  getAccessToken?: () => MaybePromise<string | null | undefined>;
  /** Extra headers for every request. */
  headers?: HTTPHeaders | (() => MaybePromise<HTTPHeaders>);
  /** A fetch implementation (tests, React Native, instrumentation). */
  fetch?: typeof globalThis.fetch;
  /**
   * Longest URL a batched GET may have before the batch is split; keeps requests
   * under the limits of browsers, proxies and CDNs.
   */
  maxURLLength?: number;
  /**
   * Most calls in one batched request (the server's TRPC_MAX_BATCH_SIZE, 50 by default,
   * refuses larger batches): more concurrent calls are split into several requests.
   */
  maxBatchSize?: number;
}

export type Client = TRPCClient<AppRouter>;

/**
 * The client's own headers as one plain record, whichever form they were given in (a
 * record, a `Headers`, `[name, value]` pairs): the bearer token is added to it, and it is
 * what the refresh and uploads send too.
 */
async function ownHeaders(options: ClientOptions): Promise<Record<string, string>> {
  const given = typeof options.headers === 'function' ? await options.headers() : (options.headers ?? {});
  const entries =
    Symbol.iterator in given
      ? [...(given as Iterable<[string, string]>)]
      : Object.entries(given).flatMap(([key, value]) =>
          value === undefined
            ? []
            : [[key, Array.isArray(value) ? value.join(', ') : String(value)] as [string, string]],
        );
  return Object.fromEntries(entries);
}

/** What the session keeper needs of the client's options. */
function sessionOptions(options: ClientOptions & { auth: AuthOptions }, trpcUrl: string) {
  return {
    ...options.auth,
    trpcUrl,
    headers: () => ownHeaders(options),
    ...(options.fetch && { fetch: options.fetch }),
  };
}

export function createClient(options: ClientOptions): Client {
  const url = `${options.url.replace(/\/+$/, '')}/trpc`;
  const headers = async (): Promise<HTTPHeaders> => {
    const base = await ownHeaders(options);
    const token = options.auth ? (await options.auth.tokenStore.get())?.accessToken : await options.getAccessToken?.();
    return token ? { ...base, authorization: `Bearer ${token}` } : base;
  };
  const common = { url, headers, ...(options.fetch && { fetch: options.fetch }) };
  return createTRPCClient<AppRouter>({
    links: [
      ...(options.auth ? [authLink(sessionOptions({ ...options, auth: options.auth }, url))] : []),
      splitLink({
        // FormData, Blob and bytes cannot be batched as JSON: one request each.
        condition: (op) => isNonJsonSerializable(op.input),
        true: httpLink(common),
        false: httpBatchLink({
          ...common,
          maxURLLength: options.maxURLLength ?? 2_083,
          maxItems: options.maxBatchSize ?? 50,
        }),
      }),
    ],
  });
}

/** The stable app code of an error from this API (`undefined` for network and other errors). */
export function getAppErrorCode(error: unknown): AppErrorCode | undefined {
  if (error instanceof UploadError) return error.data.appCode;
  if (!(error instanceof TRPCClientError)) return undefined;
  return (error.data as Partial<AppErrorData> | undefined)?.appCode;
}

/**
 * Uploads a file (`POST /api/files`, streamed; progress in browsers and in Node), signed in
 * as `createClient(options)` would be: with the auth mode, a 401 refreshes the tokens once
 * and the upload is retried. Refusals throw an `UploadError` (`getAppErrorCode` reads it).
 *
 *   const file = await uploadFile(clientOptions, input.files[0], { onProgress: ({ loaded, total }) => … });
 */
export function uploadFile(options: ClientOptions, file: Blob, upload: UploadOptions = {}): Promise<StoredFile> {
  const trpcUrl = `${options.url.replace(/\/+$/, '')}/trpc`;
  const keeper = options.auth ? sessionKeeper(sessionOptions({ ...options, auth: options.auth }, trpcUrl)) : undefined;
  return send({ ...options, headers: () => ownHeaders(options) }, file, upload, keeper);
}
