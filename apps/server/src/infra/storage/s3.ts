/**
 * Any S3-compatible store (AWS S3, Cloudflare R2, MinIO…) through the official AWS SDK v3.
 * Uploads stream in parts (never the whole file in memory); a body that fails midway aborts
 * the multipart upload, so no object appears. Every request is bounded in time.
 */
import type { Readable } from 'node:stream';
import {
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
import type { ByteRange, ObjectInfo, ObjectStorage } from './storage.ts';

export interface S3Options {
  bucket: string;
  region: string;
  endpoint: string | undefined;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
  /** Connecting, and each request's silence, give up after this long. */
  timeoutMs: number;
}

/** Parts of 8 MiB, two in flight: an upload holds at most ~16 MiB of it in memory. */
const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

const isMissing = (error: unknown) =>
  error instanceof S3ServiceException &&
  (error.name === 'NotFound' || error.name === 'NoSuchKey' || error.$metadata.httpStatusCode === 404);

export function s3Storage(options: S3Options): ObjectStorage {
  const client = new S3Client({
    region: options.region,
    ...(options.endpoint && { endpoint: options.endpoint }),
    forcePathStyle: options.forcePathStyle,
    ...(options.accessKeyId &&
      options.secretAccessKey && {
        credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      }),
    requestHandler: { connectionTimeout: options.timeoutMs, requestTimeout: options.timeoutMs },
    maxAttempts: 2,
  });
  const Bucket = options.bucket;

  return {
    driver: 's3',

    async put(key: string, body: Readable, { contentType }: { contentType: string }): Promise<void> {
      const upload = new Upload({
        client,
        params: { Bucket, Key: key, Body: body, ContentType: contentType },
        partSize: PART_SIZE,
        queueSize: PARTS_IN_FLIGHT,
        leavePartsOnError: false,
      });
      await upload.done();
    },

    async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
      try {
        const answer = await client.send(
          new GetObjectCommand({ Bucket, Key: key, ...(range && { Range: `bytes=${range.start}-${range.end}` }) }),
        );
        return answer.Body as Readable;
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    },

    async head(key: string): Promise<ObjectInfo | undefined> {
      try {
        const answer = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return { key, size: answer.ContentLength ?? 0, lastModified: answer.LastModified ?? new Date(0) };
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    },

    async delete(key: string): Promise<void> {
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },

    async *list(prefix: string): AsyncIterable<ObjectInfo> {
      let ContinuationToken: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }));
        for (const object of page.Contents ?? []) {
          if (!object.Key) continue;
          yield { key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) };
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async presignPut(key, { contentType, size, expiresInSeconds }) {
      // Content-Type and Content-Length are signed: the store refuses a PUT of another type or size.
      const url = await getSignedUrl(
        client,
        new PutObjectCommand({ Bucket, Key: key, ContentType: contentType, ContentLength: size }),
        { expiresIn: expiresInSeconds, signableHeaders: new Set(['content-type', 'content-length']) },
      );
      return { url, headers: { 'content-type': contentType } };
    },

    async presignGet(key, { expiresInSeconds, contentType, contentDisposition }) {
      return getSignedUrl(
        client,
        new GetObjectCommand({
          Bucket,
          Key: key,
          ResponseContentType: contentType,
          ResponseContentDisposition: contentDisposition,
        }),
        { expiresIn: expiresInSeconds },
      );
    },

    async close(): Promise<void> {
      client.destroy();
    },
  };
}
