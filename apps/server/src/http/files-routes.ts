/**
 * File bytes in and out, as plain routes (a multipart stream in, a byte stream out: not
 * JSON procedures). They sign the caller in and check permissions with the same functions
 * the procedure builders use.
 *
 *   POST /api/files               multipart, field `file`: streamed to storage
 *   GET  /api/files/:id/content   the bytes: Range, ETag, a safe Content-Disposition
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DocumentedRoute } from '../documented-route.ts';
import { AppError, rateLimited } from '../errors/index.ts';
import { RATE_LIMIT_HEADERS } from '../infra/rate-limiter.ts';
import type { ByteRange } from '../infra/storage/index.ts';
import { admitSignedIn, type Caller } from '../modules/auth/authenticate.ts';
import {
  assertBytesKept,
  downloadableFile,
  downloadName,
  presignedDownload,
  readBytes,
  storeUpload,
  viewerOf,
} from '../modules/files/files.service.ts';
import type { Services } from '../services.ts';
import { limitByAddress, rateLimitHeadersOn } from './address-limit.ts';

/** What busboy says of a multipart body it cannot read (a boundary too long for it, past the check below, too). */
const BROKEN_MULTIPART =
  /^(Multipart: |Unexpected end of (form|file|multipart data)|(Part|Preamble) terminated early|Malformed part header|Malformed content-disposition|The needle cannot have a length)/;

/** RFC 2046's longest multipart boundary (the parser fails on longer ones with an error of its own). */
const MAX_BOUNDARY = 70;
const boundaryOf = (contentType: string | undefined) =>
  /;\s*boundary=(?:"([^"]*)"|([^;\s]*))/i
    .exec(contentType ?? '')
    ?.slice(1)
    .find((value) => value !== undefined) ?? '';

/** Uploads one account may stream at once (per process); more wait a moment (429). */
const UPLOADS_AT_ONCE = 3;

const fileParameter = {
  in: 'path',
  name: 'id',
  required: true,
  schema: { type: 'string', format: 'uuid' },
};

/** These routes in the OpenAPI document. */
export const FILE_ROUTES: readonly DocumentedRoute[] = [
  {
    method: 'POST',
    path: '/files',
    summary: 'Upload a file (multipart, field `file`)',
    description:
      'The bytes are streamed to storage, never held whole in memory; their type is sniffed from the bytes ' +
      '(`FILES_ALLOWED_TYPES`), not taken from the client. Answers `{ id, name, contentType, size, sha256, createdAt }`. ' +
      'Over `FILES_MAX_BYTES` or the account quota: 413, and nothing is kept; a body of more parts than the ' +
      'file and a few fields (10 fields, 12 parts): 413 `PAYLOAD_TOO_LARGE`.',
    tags: ['files'],
    parameters: [],
    body: {
      type: 'multipart',
      fields: { file: { description: 'The file; its filename is kept for display', binary: true } },
    },
    success: { status: 201, description: 'The stored file', schema: 'File' },
    bearer: 'required',
    errors: [
      'UNAUTHORIZED',
      'TOKEN_EXPIRED',
      'SESSION_REVOKED',
      'BAD_REQUEST',
      'PAYLOAD_TOO_LARGE',
      'FILE_TOO_LARGE',
      'QUOTA_EXCEEDED',
      'UNSUPPORTED_FILE_TYPE',
      'UNSUPPORTED_MEDIA_TYPE',
      'RATE_LIMITED',
      'DEPENDENCY_DOWN',
    ],
  },
  {
    method: 'GET',
    path: '/files/{id}/content',
    summary: "A file's bytes",
    description:
      'Streams the bytes with the stored content type, `Content-Length`, an `ETag` (the SHA-256; `If-None-Match` ' +
      'answers 304), `Accept-Ranges` (a single `Range` answers 206; an unsatisfiable one 416) and a ' +
      '`Content-Disposition` with the name (RFC 6266). Your own file, or any with `files:read-any`; ' +
      "someone's profile picture is public, and caches may keep it five minutes (`Cache-Control: public, " +
      'max-age=300`; a private file is `private, no-cache`). With S3 and `FILES_DOWNLOAD_REDIRECT`, a 302 to a ' +
      'short-lived URL (not for a profile picture, answered here so that caches keep it).',
    tags: ['files'],
    parameters: [
      fileParameter,
      { in: 'header', name: 'Range', description: 'bytes=start-end', schema: { type: 'string' } },
    ],
    success: { status: 200, description: 'The bytes', binary: true },
    otherAnswers: [
      { status: 206, description: 'The range asked for', headers: { 'Content-Range': 'bytes start-end/size' } },
      {
        status: 302,
        description: 'With S3 and `FILES_DOWNLOAD_REDIRECT`: to a short-lived URL of the bytes',
        headers: { Location: 'The presigned URL' },
      },
      { status: 304, description: '`If-None-Match` names the ETag: the copy held is current' },
      { status: 416, description: 'No byte of the range is in the file', headers: { 'Content-Range': 'bytes */size' } },
    ],
    bearer: 'optional',
    errors: ['UNAUTHORIZED', 'TOKEN_EXPIRED', 'SESSION_REVOKED', 'NOT_FOUND', 'RATE_LIMITED', 'DEPENDENCY_DOWN'],
  },
];

export async function filesRoutes(app: FastifyInstance, { services }: { services: Services }) {
  const { files } = services.config;
  await app.register(multipart, {
    // One file per request; a few small fields at most. Bytes over the limit are read and
    // thrown away (the service has already refused the file), so the client gets the answer.
    limits: { files: 1, fileSize: files.maxBytes + 1, fields: 10, fieldSize: 1024, parts: 12, headerPairs: 100 },
  });

  /** Uploads in progress per account, in this process: a few at a time each. */
  const uploading = new Map<string, number>();

  /** The address's limit and the sign-in check, in one key-value round trip. */
  const admit = (request: FastifyRequest, reply: FastifyReply) =>
    admitSignedIn(
      services,
      { authorization: request.headers.authorization, ip: request.ip },
      rateLimitHeadersOn(reply),
    );

  app.post('/api/files', async (request, reply) => {
    const caller = await admit(request, reply);
    if (!request.isMultipart()) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Upload the file as multipart/form-data, in the field `file`');
    }
    if (boundaryOf(request.headers['content-type']).length > MAX_BOUNDARY) {
      throw new AppError('BAD_REQUEST', 'The multipart boundary is longer than {max} characters', {
        params: { max: MAX_BOUNDARY },
      });
    }
    const busy = uploading.get(caller.userId) ?? 0;
    if (busy >= UPLOADS_AT_ONCE) throw rateLimited(1_000);
    uploading.set(caller.userId, busy + 1);
    try {
      const part = await request.file();
      if (part?.fieldname !== 'file') {
        part?.file.resume();
        throw new AppError('BAD_REQUEST', 'The multipart body must carry the file in the field `file`');
      }
      const stored = await storeUpload(services, { ownerId: caller.userId, name: part.filename, body: part.file });
      return reply.code(201).send(stored);
    } catch (error) {
      // The client went away mid-body: Node fails the body with ECONNRESET ("aborted"), which
      // read as a dependency's socket would be a 503 and an outage in the log. Its doing; no
      // answer reaches it, so no access line is written either: this line says what happened.
      if (request.raw.readableAborted && !(error instanceof AppError)) {
        request.log.info({ path: '/api/files' }, 'upload cut off by its client: nothing kept');
        throw new AppError('BAD_REQUEST', 'The upload was cut off before its end', { cause: error });
      }
      // The multipart parser's own refusals (no boundary, a body cut off) are plain Errors.
      if (error instanceof Error && !(error instanceof AppError) && BROKEN_MULTIPART.test(error.message)) {
        throw new AppError('BAD_REQUEST', 'The multipart body cannot be read: {reason}', {
          cause: error,
          params: { reason: error.message },
        });
      }
      throw error;
    } finally {
      const left = (uploading.get(caller.userId) ?? 1) - 1;
      if (left > 0) uploading.set(caller.userId, left);
      else uploading.delete(caller.userId);
    }
  });

  const content = async (
    request: FastifyRequest<{ Params: { id: string } }>,
    reply: FastifyReply,
    withBody: boolean,
  ) => {
    // Signed in when a token comes; without one only public files (profile pictures) open.
    let caller: Caller | undefined;
    if (request.headers.authorization) caller = await admit(request, reply);
    else await limitByAddress(services, request, reply);
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(request.params.id)) {
      throw new AppError('NOT_FOUND', 'No such file');
    }
    const { file, key, isPublic } = await downloadableFile(services, {
      id: request.params.id,
      viewer: caller && viewerOf(services, caller, 'files:read-any'),
    });
    const etag = `"${file.sha256}"`;
    const disposition = contentDisposition(downloadName(file.name, file.contentType), file.contentType);
    reply.header('etag', etag);
    reply.header('accept-ranges', 'bytes');
    reply.header('cache-control', isPublic ? PUBLIC_FILE_CACHING : 'private, no-cache');
    if (isPublic) {
      // A profile picture shows in <img> tags on the frontend's origin too, and shared caches
      // keep it: not with one client's rate-limit budget.
      reply.header('cross-origin-resource-policy', 'cross-origin');
      for (const name of RATE_LIMIT_HEADERS) reply.removeHeader(name);
    }
    if (namesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();

    // Text is UTF-8 (sniffing said so): said here and by the store alike.
    const contentType = file.contentType === 'text/plain' ? 'text/plain; charset=utf-8' : file.contentType;
    // A HEAD is answered here: a URL of the store is signed for GET only. So is a profile
    // picture: a page shows many, which caches keep (a presigned URL differs every time).
    const redirect =
      withBody &&
      !isPublic &&
      (await presignedDownload(services, { key, contentType, contentDisposition: disposition }));
    if (redirect) return reply.header('cache-control', 'no-store').redirect(redirect, 302);

    const range = parseRange(request.headers.range, file.size);
    if (range === 'unsatisfiable') {
      // An error for this request only: not the file's validator, and kept by no cache.
      reply.removeHeader('etag');
      reply.removeHeader('accept-ranges');
      return reply.code(416).header('cache-control', 'no-store').header('content-range', `bytes */${file.size}`).send();
    }
    reply.header('content-type', contentType);
    reply.header('content-disposition', disposition);
    // Opened directly, a file runs nothing and reaches nothing, whatever it holds (and is
    // never sniffed: `nosniff` is on every response, common-headers.ts).
    reply.header('content-security-policy', "default-src 'none'; sandbox");
    if (range) {
      reply.code(206);
      reply.header('content-range', `bytes ${range.start}-${range.end}/${file.size}`);
      reply.header('content-length', String(range.end - range.start + 1));
    } else {
      reply.header('content-length', String(file.size));
    }
    // HEAD: the headers only, without reading the object (but not for bytes gone: GET's 404).
    if (!withBody) {
      await assertBytesKept(services, key);
      return reply.send();
    }
    return reply.send(await readBytes(services, { key, range }));
  };
  app.get<{ Params: { id: string } }>('/api/files/:id/content', { exposeHeadRoute: false }, (request, reply) =>
    content(request, reply, true),
  );
  app.head<{ Params: { id: string } }>('/api/files/:id/content', (request, reply) => content(request, reply, false));
}

/**
 * A profile picture may be kept and shown for five minutes without asking again (as
 * GitHub's avatars): a page of a hundred faces is not a hundred requests, counted against
 * its reader's rate limit, on every view. Its URL names one file, whose bytes never change;
 * a picture taken away still shows where it was kept, for five minutes at most. A private
 * file is asked for again every time (its reader may lose access).
 */
const PUBLIC_FILE_CACHING = 'public, max-age=300';

/**
 * Whether an `If-None-Match` header names `etag`, compared weakly as RFC 9110 §13.1.2 says:
 * a list of tags, `*`, or the tag marked weak (`W/`, as a compressing proxy marks it).
 */
export function namesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * One `bytes=` range (the common case: media seeking); several ranges, or a header that is
 * not a byte range, get the whole file (RFC 9110 lets a server ignore Range).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [, first, last] = match;
  if (first === '') {
    // The last N bytes.
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  // A last position before the first is no range at all (RFC 9110 §14.1.1): the whole file.
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/**
 * `Content-Disposition` with the name both as an ASCII fallback (quotes, backslashes and
 * control characters replaced) and as RFC 8187 UTF-8: no header injection, any Unicode
 * name. Images open inline; everything else (PDFs too) downloads.
 */
export function contentDisposition(name: string, contentType: string): string {
  const kind = contentType.startsWith('image/') ? 'inline' : 'attachment';
  const ascii = name.normalize('NFKD').replace(/[^\x20-\x7E]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
