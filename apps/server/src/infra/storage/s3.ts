/**
 * Any S3-compatible store (AWS S3, Cloudflare R2, MinIO…) through the official AWS SDK v3.
 * Uploads stream in parts (never the whole file in memory); a body that fails midway aborts
 * the multipart upload, so no object appears. Every call is bounded in time (resolving the
 * credentials, connecting, the whole request), and a store that fails is a DependencyUnavailableError.
 */
import type { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler, type NodeHttpHandlerOptions } from '@smithy/node-http-handler';
import { DependencyUnavailableError } from '../dependency-errors.ts';
import { withTimeout } from '../with-timeout.ts';
import type { ByteRange, ObjectInfo, ObjectStorage } from './storage.ts';

export interface S3Options {
  bucket: string;
  region: string;
  endpoint: string | undefined;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
  /**
   * Connecting, each request until the store answers (each part of an upload), and
   * resolving the credentials (a credential_process, a metadata endpoint) give up after this long.
   */
  timeoutMs: number;
  /**
   * Once the store answers, how long its socket may stay silent: a download whose client
   * stops reading for a while (a paused video) pauses the store's body too. The server's
   * own idle cut for its clients (REQUEST_TIMEOUT_MS), so a client may pause as long.
   */
  bodyIdleMs: number;
}

/** Parts of 8 MiB, two in flight: an upload holds at most ~24 MiB of it in memory. */
const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

const isMissing = (error: unknown) =>
  error instanceof S3ServiceException &&
  (error.name === 'NotFound' || error.name === 'NoSuchKey' || error.$metadata.httpStatusCode === 404);

const unavailable = (what: string, error: unknown) =>
  new DependencyUnavailableError('storage', `S3 ${what} failed: ${error instanceof Error ? error.message : error}`, {
    cause: error,
  });

/** The slowest link to the store an upload still works over (8 MiB then take ~2 minutes). */
const SLOWEST_UPLOAD_BYTES_PER_SECOND = 64 * 1024;

/**
 * The SDK's handler, whose request timeout (from the request's start to the store's answer)
 * grows with the body sent: its configured time, plus the body's at the slowest rate.
 */
class BodySizedTimeouts extends NodeHttpHandler {
  readonly #baseMs: number;

  constructor(options: NodeHttpHandlerOptions & { requestTimeout: number }) {
    super(options);
    this.#baseMs = options.requestTimeout;
  }

  override handle(...[request, options = {}]: Parameters<NodeHttpHandler['handle']>) {
    const length = Number(request.headers['content-length'] ?? request.headers['Content-Length'] ?? 0) || 0;
    const requestTimeout = this.#baseMs + Math.ceil((length / SLOWEST_UPLOAD_BYTES_PER_SECOND) * 1000);
    return super.handle(request, { ...options, requestTimeout });
  }
}

export function s3Storage(options: S3Options): ObjectStorage {
  const settings = {
    region: options.region,
    ...(options.endpoint && { endpoint: options.endpoint }),
    forcePathStyle: options.forcePathStyle,
    maxAttempts: 2,
  } as const;
  const client = new S3Client({
    ...settings,
    // Checksums only where S3 requires them. By default the SDK signs a CRC32 into presigned
    // URLs (the empty body's, for a PUT) and asks GETs for checksum mode, which stores that
    // call themselves S3-compatible (Cloudflare R2, SeaweedFS) refuse; the bytes are checked
    // by their SHA-256 here anyway. (Uploads keep theirs: `uploadClient`.)
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(options.accessKeyId &&
      options.secretAccessKey && {
        credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      }),
    requestHandler: {
      connectionTimeout: options.timeoutMs,
      // Until the store answers (the SDK clears it then); the socket's idle time after that.
      requestTimeout: options.timeoutMs,
      socketTimeout: Math.max(options.timeoutMs, options.bodyIdleMs),
      // Without it the SDK only warns when a request runs out of time.
      throwOnRequestTimeout: true,
    },
  });
  /**
   * Uploads send whole parts (read into memory first: the sender never waits on the client),
   * each request given S3_TIMEOUT_MS plus its body's time at the slowest rate allowed: a
   * healthy store over a slow link (8 MiB in 10 s takes ~7 Mbit/s) is not one down.
   */
  const uploadClient = new S3Client({
    ...settings,
    // The SDK's checksum on each part (CRC32): a bucket with a default Object Lock retention
    // refuses an upload without one.
    requestChecksumCalculation: 'WHEN_SUPPORTED',
    credentials: client.config.credentials,
    requestHandler: new BodySizedTimeouts({
      connectionTimeout: options.timeoutMs,
      requestTimeout: options.timeoutMs,
      socketTimeout: Math.max(options.timeoutMs, options.bodyIdleMs),
      throwOnRequestTimeout: true,
    }),
  });
  const Bucket = options.bucket;
  /**
   * The credentials, bounded in time: without keys in the config the SDK's default chain
   * resolves them first (remembered until they expire), and may run a credential_process
   * (no time limit of its own) or ask a metadata endpoint; its own timeouts start with the request.
   */
  const credentialsReady = () => withTimeout(() => client.config.credentials(), options.timeoutMs);
  /** Runs one request; any failure but "no such object" means the store is unavailable. */
  const request = async <T>(what: string, run: () => Promise<T>, ifMissing?: () => T): Promise<T> => {
    try {
      await credentialsReady();
      return await run();
    } catch (error) {
      if (ifMissing && isMissing(error)) return ifMissing();
      throw unavailable(what, error);
    }
  };

  return {
    driver: 's3',

    async put(key: string, body: Readable, { contentType }: { contentType: string }): Promise<void> {
      const upload = new Upload({
        client: uploadClient,
        params: { Bucket, Key: key, Body: body, ContentType: contentType },
        partSize: PART_SIZE,
        queueSize: PARTS_IN_FLIGHT,
        leavePartsOnError: false,
      });
      try {
        await credentialsReady();
        await upload.done();
      } catch (error) {
        // Also when the body failed: the caller, who made it, knows whether that was the reason.
        throw unavailable('upload', error);
      }
    },

    get(key: string, range?: ByteRange): Promise<Readable | undefined> {
      return request(
        'download',
        async () => {
          const answer = await client.send(
            new GetObjectCommand({ Bucket, Key: key, ...(range && { Range: `bytes=${range.start}-${range.end}` }) }),
          );
          return answer.Body as Readable;
        },
        () => undefined,
      );
    },

    head(key: string): Promise<ObjectInfo | undefined> {
      return request(
        'head',
        async () => {
          const answer = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
          return { key, size: answer.ContentLength ?? 0, lastModified: answer.LastModified ?? new Date(0) };
        },
        () => undefined,
      );
    },

    copy(from: string, to: string, { contentType }: { contentType: string }): Promise<boolean> {
      return request(
        'copy',
        async () => {
          await client.send(
            new CopyObjectCommand({
              Bucket,
              Key: to,
              CopySource: `${Bucket}/${from}` /* generated keys: no characters to escape */,
              // The copy's headers are these, not the ones its PUT was sent with.
              MetadataDirective: 'REPLACE',
              ContentType: contentType,
            }),
          );
          return true;
        },
        () => false,
      );
    },

    async delete(key: string): Promise<void> {
      // S3 answers 204 for a missing key; a store that answers 404 instead (GCS) means the same,
      // so a removal tried again after it half succeeded does not fail on what it already did.
      await request(
        'delete',
        async () => {
          await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
        },
        () => undefined,
      );
    },

    async *list(prefix: string, options: { after?: string } = {}): AsyncIterable<ObjectInfo> {
      let ContinuationToken: string | undefined;
      do {
        const page = await request('list', () =>
          client.send(
            new ListObjectsV2Command({
              Bucket,
              Prefix: prefix,
              ...(ContinuationToken ? { ContinuationToken } : { StartAfter: options.after }),
            }),
          ),
        );
        for (const object of page.Contents ?? []) {
          if (!object.Key) continue;
          yield { key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) };
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async presignPut(key, { contentType, size, expiresInSeconds }) {
      // Content-Type and Content-Length are signed: the store refuses a PUT of another type or size.
      const url = await request('presign upload', () =>
        getSignedUrl(
          client,
          new PutObjectCommand({ Bucket, Key: key, ContentType: contentType, ContentLength: size }),
          { expiresIn: expiresInSeconds, signableHeaders: new Set(['content-type', 'content-length']) },
        ),
      );
      return { url, headers: { 'content-type': contentType } };
    },

    presignGet(key, { expiresInSeconds, contentType, contentDisposition }) {
      return request('presign download', () =>
        getSignedUrl(
          client,
          new GetObjectCommand({
            Bucket,
            Key: key,
            ResponseContentType: contentType,
            ResponseContentDisposition: contentDisposition,
          }),
          { expiresIn: expiresInSeconds },
        ),
      );
    },

    async close(): Promise<void> {
      client.destroy();
      uploadClient.destroy();
    },
  };
}
