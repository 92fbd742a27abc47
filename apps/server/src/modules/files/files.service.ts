/**
 * The `files` table's owner, and the only user of the storage: uploads are streamed to the
 * store under a generated key while their size and SHA-256 are computed and their type is
 * sniffed from the first bytes; the row appears only once the bytes are whole and checked.
 * Whatever deletes a row (or stops naming an object) queues the removal of its bytes in the
 * same transaction (file-jobs.ts); `sweepFiles` removes what nothing queued (a crash mid-upload).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { FilesTable } from '@app/db';
import type { Selectable } from 'kysely';
import { AppError } from '../../errors/index.ts';
import { DependencyUnavailableError, unavailableDependency } from '../../infra/dependency-errors.ts';
import { isoTime } from '../../infra/iso-time.ts';
import { OCTET_STREAM, SNIFF_BYTES, sniffContentType, TextCheck } from '../../infra/sniff.ts';
import { keysetPage, likePattern } from '../../infra/sql.ts';
import type { ByteRange } from '../../infra/storage/index.ts';
import { firstCharacters } from '../../infra/text.ts';
import type { Services } from '../../services.ts';
import { hasPermission } from '../auth/assert-permission.ts';
import type { Caller } from '../auth/authenticate.ts';
import { enqueueStorageDelete } from './file-jobs.ts';

type Deps = Pick<Services, 'db' | 'storage' | 'config' | 'clock' | 'log' | 'jobs'>;
type FileRow = Selectable<FilesTable>;

export interface FileDto {
  id: string;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: string;
}

/** Files' bytes; direct uploads land under `uploads/` and are copied here once checked. */
const FILES_PREFIX = 'files/';
const UPLOADS_PREFIX = 'uploads/';
const newKey = (prefix = FILES_PREFIX) => `${prefix}${randomUUID()}`;
/** An object younger than this may be an upload in progress: the sweep leaves it. */
const SWEEP_GRACE_MS = 60 * 60_000;

function toDto(row: FileRow): FileDto {
  return {
    id: row.id,
    name: row.name,
    contentType: row.content_type,
    size: Number(row.size),
    sha256: row.sha256 ?? '',
    createdAt: isoTime(row.created_at),
  };
}

/**
 * A name for display: any Unicode but control and format characters (no U+202E turning
 * `gpj.exe` into `exe.jpg`), no folders, 1-255 characters. The zero-width joiner and
 * non-joiner stay between non-ASCII characters: Persian, Arabic and Indic words and emoji
 * sequences (👨‍👩‍👧) are written with them.
 */
export function displayName(raw: string | undefined): string {
  const cleaned = (raw ?? '')
    .replace(/(?![\u200C\u200D])[\p{Cc}\p{Cf}]/gu, '')
    // A joiner only joins non-ASCII characters: between Latin letters it would hide in a name.
    .replace(/(?<!\P{ASCII})[\u200C\u200D]|[\u200C\u200D](?!\P{ASCII})/gu, '')
    .split(/[/\\]/)
    .at(-1)
    ?.trim();
  return firstCharacters(cleaned ?? '', 255) || 'file';
}

/** The usual extension of each type: a download is named so that it opens as what it is. */
const EXTENSIONS: Record<string, string[]> = {
  'image/png': ['png'],
  'image/jpeg': ['jpg', 'jpeg'],
  'image/gif': ['gif'],
  'image/webp': ['webp'],
  'image/avif': ['avif'],
  'application/pdf': ['pdf'],
  'text/plain': ['txt', 'text', 'md', 'csv', 'log'],
};

/** The name to download as: `report.html` that is text comes down as `report.html.txt`. */
export function downloadName(name: string, contentType: string): string {
  const known = EXTENSIONS[contentType];
  if (!known) return name;
  const extension = /\.([^.]+)$/.exec(name)?.[1]?.toLowerCase();
  return extension && known.includes(extension) ? name : `${name}.${known[0]}`;
}

/** Image types a profile picture may be (raster formats every browser shows). */
const AVATAR_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);

const tooLarge = (maxBytes: number) =>
  new AppError('FILE_TOO_LARGE', 'The file is larger than {maxBytes} bytes', {
    details: { maxBytes },
    params: { maxBytes },
  });
const overQuota = (quotaBytes: number) =>
  new AppError('QUOTA_EXCEEDED', 'This file would take your account over its storage quota', {
    details: { quotaBytes },
  });

async function usedBytes(deps: Pick<Services, 'db'>, ownerId: string): Promise<number> {
  const row = await deps.db
    .selectFrom('files')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), eb.val('0')).as('total'))
    .where('owner_id', '=', ownerId)
    .executeTakeFirstOrThrow();
  return Number(row.total);
}

/**
 * The account's files leave room for `size` more bytes, checked with the account row locked
 * (inside the caller's transaction), so concurrent uploads cannot pass the check together.
 */
async function assertRoomFor(
  deps: Pick<Services, 'db'>,
  input: { ownerId: string; size: number; quotaBytes: number },
): Promise<void> {
  await deps.db.selectFrom('users').select('id').where('id', '=', input.ownerId).forUpdate().executeTakeFirst();
  if ((await usedBytes(deps, input.ownerId)) + input.size > input.quotaBytes) throw overQuota(input.quotaBytes);
}

/**
 * Counts and hashes the bytes that pass, and fails the stream once more than `limit` went
 * by (the error says which limit).
 */
class Meter extends Transform {
  size = 0;
  readonly hash = createHash('sha256');
  /** The first bytes sniffed as text, later ones were not (and binary was allowed). */
  turnedBinary = false;
  private readonly limit: number;
  private readonly overLimit: () => Error;
  /**
   * For text: every byte must stay text, not only the first ones sniffed. Without `notText`
   * (binary is allowed too), bytes that turn binary make the file binary instead of failing it.
   */
  private text: { check: TextCheck; notText?: () => Error } | undefined;

  constructor(limit: number, overLimit: () => Error, text?: { check: TextCheck; notText?: () => Error }) {
    super();
    this.limit = limit;
    this.overLimit = overLimit;
    this.text = text;
  }

  /** The bytes are not text after all: the stream's failure, or none if binary is allowed. */
  private notText(): Error | null {
    const refusal = this.text?.notText?.() ?? null;
    this.text = undefined;
    this.turnedBinary = refusal === null;
    return refusal;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) {
      done(this.overLimit());
      return;
    }
    if (this.text && !this.text.check.push(chunk)) {
      const refusal = this.notText();
      if (refusal) {
        done(refusal);
        return;
      }
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    done(this.text && !this.text.check.end() ? this.notText() : null);
  }
}

/** The first `bytes` of a stream (fewer if it ends), and the whole stream again, those bytes included. */
async function peek(source: Readable, bytes: number): Promise<{ head: Buffer; complete: boolean; all: Readable }> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let length = 0;
  let complete = false;
  while (length < bytes) {
    const next = await iterator.next();
    if (next.done) {
      complete = true;
      break;
    }
    chunks.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(chunks);
  const all = Readable.from(
    (async function* () {
      if (head.length > 0) yield head;
      if (complete) return;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    })(),
  );
  return { head: head.subarray(0, bytes), complete, all };
}

/**
 * Reads what is left of a refused upload, keeping nothing, so the client gets the answer
 * instead of a reset connection (errors ignored: the client may be gone).
 */
async function drainRest(stream: Readable): Promise<void> {
  try {
    for await (const _ of stream) {
      // discarded
    }
  } catch {}
}

/** Stores an upload streamed by the client: the POST /api/files route's work. */
export async function storeUpload(
  deps: Deps,
  input: { ownerId: string; name: string | undefined; body: Readable },
): Promise<FileDto> {
  const { maxBytes, quotaBytes, allowedTypes } = deps.config.files;
  const room = quotaBytes - (await usedBytes(deps, input.ownerId));
  const limit = Math.min(maxBytes, room);
  const { head, complete, all } = await peek(input.body, SNIFF_BYTES);
  if (room <= 0 && head.length > 0) {
    await drainRest(all);
    throw overQuota(quotaBytes);
  }
  const contentType = await sniffContentType(head, { complete });
  const refuseType = (type: string) =>
    new AppError('UNSUPPORTED_FILE_TYPE', 'Files of type {type} are not accepted', {
      details: { contentType: type, allowed: allowedTypes },
      params: { type },
    });
  if (!allowedTypes.includes(contentType)) {
    await drainRest(all);
    throw refuseType(contentType);
  }
  const meter = new Meter(
    limit,
    () => (limit === maxBytes ? tooLarge(maxBytes) : overQuota(quotaBytes)),
    contentType === 'text/plain'
      ? {
          check: new TextCheck(),
          ...(!allowedTypes.includes(OCTET_STREAM) && { notText: () => refuseType(OCTET_STREAM) }),
        }
      : undefined,
  );
  const key = newKey();
  // The client going away fails the source; the meter passes that on to the store, and
  // its own refusal (too large) is read from it below, whoever listens first.
  const metered = all.pipe(meter);
  let clientFailed: unknown;
  all.once('error', (error) => {
    clientFailed = error;
    meter.destroy(error);
  });
  meter.on('error', () => {});
  try {
    await deps.storage.put(key, metered, { contentType });
  } catch (error) {
    // The body's own failure is the reason: the meter's refusal (too large, not text) or the
    // client gone. Else the store failed (and ended the body with an error of its own): a 503.
    const reason = meter.errored instanceof AppError ? meter.errored : (clientFailed ?? error);
    all.unpipe(meter);
    await drainRest(all);
    throw reason;
  }
  try {
    return await insertReady(deps, {
      ownerId: input.ownerId,
      name: displayName(input.name),
      contentType: meter.turnedBinary ? OCTET_STREAM : contentType,
      size: meter.size,
      sha256: meter.hash.digest('hex'),
      key,
    });
  } catch (error) {
    // Refused (the quota, a constraint): no row names these bytes, and no transaction is
    // there to queue their removal in: removed at once (one the store fails to delete is left
    // to the sweep). A database gone meanwhile may have committed before it went (the commit's
    // answer lost): then a row names them, so they stay, for the sweep if none does.
    if (!unavailableDependency(error)) await removeUnnamed(deps, [key]);
    throw error;
  }
}

/** The row of whole, checked bytes; the quota is checked again with the account locked (concurrent uploads). */
async function insertReady(
  deps: Deps,
  file: { ownerId: string; name: string; contentType: string; size: number; sha256: string; key: string },
): Promise<FileDto> {
  return deps.db.transaction().execute(async (trx) => {
    await assertRoomFor(
      { db: trx },
      { ownerId: file.ownerId, size: file.size, quotaBytes: deps.config.files.quotaBytes },
    );
    const row = await trx
      .insertInto('files')
      .values({
        owner_id: file.ownerId,
        name: file.name,
        content_type: file.contentType,
        size: file.size,
        sha256: file.sha256,
        storage_key: file.key,
        status: 'ready',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toDto(row);
  });
}

export async function listFiles(
  deps: Pick<Services, 'db'>,
  input: { ownerId: string; limit: number; cursor?: string | undefined; search?: string | undefined },
): Promise<{ items: FileDto[]; nextCursor: string | null }> {
  let query = deps.db
    .selectFrom('files')
    .selectAll()
    .where('owner_id', '=', input.ownerId)
    .where('status', '=', 'ready')
    .orderBy('id', 'desc')
    .limit(input.limit + 1);
  if (input.cursor) query = query.where('id', '<', input.cursor);
  if (input.search) query = query.where('name', 'ilike', likePattern(input.search));
  return keysetPage(await query.execute(), input.limit, toDto);
}

export interface Viewer {
  userId: string;
  /** Whether the viewer holds the `-any` permission; asked only for someone else's file. */
  mayAccessAny: () => Promise<boolean>;
}

/** The caller as a viewer who may reach anyone's files with `permission`. */
export function viewerOf(
  deps: Parameters<typeof hasPermission>[0],
  caller: Caller,
  permission: 'files:read-any' | 'files:delete-any',
): Viewer {
  return { userId: caller.userId, mayAccessAny: () => hasPermission(deps, caller, permission) };
}

/**
 * A ready file the viewer may see: their own, or anyone's with the permission. Someone
 * else's file is "not found", never "forbidden".
 */
async function visibleFile(deps: Pick<Services, 'db'>, id: string, viewer: Viewer): Promise<FileRow> {
  const row = await deps.db
    .selectFrom('files')
    .selectAll()
    .where('id', '=', id)
    .where('status', '=', 'ready')
    .executeTakeFirst();
  if (!row || !(await sees(viewer, row))) throw new AppError('NOT_FOUND', 'No such file');
  return row;
}

/** A direct upload of the viewer's own not completed yet: deleting it cancels it. */
function ownPendingUpload(deps: Pick<Services, 'db'>, id: string, viewer: Viewer): Promise<FileRow | undefined> {
  return deps.db
    .selectFrom('files')
    .selectAll()
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .where('owner_id', '=', viewer.userId)
    .executeTakeFirst();
}

/** The owner sees a file; anyone else only with the `-any` permission. */
async function sees(viewer: Viewer, row: Pick<FileRow, 'owner_id'>): Promise<boolean> {
  return row.owner_id === viewer.userId || (await viewer.mayAccessAny());
}

export async function getFile(deps: Pick<Services, 'db'>, input: { id: string; viewer: Viewer }): Promise<FileDto> {
  return toDto(await visibleFile(deps, input.id, input.viewer));
}

/**
 * Deletes a file, or cancels a pending direct upload, and queues the removal of its bytes, in
 * one transaction. What a direct upload's URL may still write to stays counted against the
 * owner's quota until the URL expires (`spendUpload`).
 */
export async function deleteFile(deps: Deps, input: { id: string; viewer: Viewer }): Promise<void> {
  const row =
    (await ownPendingUpload(deps, input.id, input.viewer)) ?? (await visibleFile(deps, input.id, input.viewer));
  await deps.db.transaction().execute(async (trx) => {
    const tx = { db: trx, jobs: deps.jobs };
    // (A pending upload completed meanwhile is deleted as the file it became.)
    if (row.status === 'pending' && (await spendUpload(tx, row.id))) return;
    const deleted = await trx
      .deleteFrom('files')
      .where('id', '=', row.id)
      .where('status', '=', 'ready')
      .returning(['owner_id', 'name', 'content_type', 'size', 'storage_key', 'upload_key', 'expires_at'])
      .executeTakeFirst();
    if (!deleted) throw new AppError('NOT_FOUND', 'No such file');
    await enqueueStorageDelete(tx, [deleted.storage_key]);
    // Completed from a direct upload whose URL may still write: that URL's size stays counted.
    if (deleted.upload_key && deleted.expires_at && deleted.expires_at.getTime() > deps.clock.now()) {
      await trx
        .insertInto('files')
        .values({
          owner_id: deleted.owner_id,
          name: deleted.name,
          content_type: deleted.content_type,
          size: Number(deleted.size),
          storage_key: deleted.upload_key,
          status: 'spent',
          expires_at: deleted.expires_at,
        })
        .execute();
    }
  });
}

/**
 * A pending direct upload that will not be completed (cancelled, rejected) becomes `spent`:
 * hidden, its bytes' removal queued, its declared size still counted against the quota until
 * its row expires (the URL's expiry and the grace given to a PUT in flight), when the sweep
 * removes it. Bytes PUT to the URL again meanwhile are counted, and then swept. Through the
 * caller's transaction; false when the upload is no longer pending.
 */
async function spendUpload(deps: Pick<Services, 'db' | 'jobs'>, id: string): Promise<boolean> {
  const spent = await deps.db
    .updateTable('files')
    .set({ status: 'spent' })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .returning('storage_key')
    .executeTakeFirst();
  if (spent) await enqueueStorageDelete(deps, [spent.storage_key]);
  return spent !== undefined;
}

/**
 * Deletes an account's file rows and queues the removal of their bytes, through `deps.db`: the
 * caller's transaction that deletes the account, so the bytes go only if the account does.
 */
export async function deleteFilesOf(deps: Pick<Services, 'db' | 'jobs'>, ownerId: string): Promise<void> {
  const rows = await deps.db.deleteFrom('files').where('owner_id', '=', ownerId).returning('storage_key').execute();
  await enqueueStorageDelete(
    deps,
    rows.map((row) => row.storage_key),
  );
}

/**
 * Removes objects that no row names, nor ever will (nothing to queue their removal with);
 * one the store fails to delete is left to the next sweep.
 */
async function removeUnnamed(deps: Pick<Services, 'storage' | 'log'>, keys: string[]): Promise<void> {
  for (const key of keys) {
    await deps.storage.delete(key).catch((error: unknown) => {
      deps.log.warn({ err: error, key }, 'a file object could not be deleted: the sweep will remove it');
    });
  }
}

/**
 * A file GET /api/files/:id/content may send. A file that is someone's profile picture is
 * public (an <img> sends no token); any other needs its owner or `files:read-any`.
 */
export async function downloadableFile(
  deps: Pick<Services, 'db'>,
  input: { id: string; viewer: Viewer | undefined },
): Promise<{ file: FileDto; key: string; isPublic: boolean }> {
  const row = await deps.db
    .selectFrom('files')
    .selectAll()
    .select((eb) =>
      eb
        .exists(eb.selectFrom('users').select('users.id').whereRef('users.avatar_file_id', '=', 'files.id'))
        .as('is_avatar'),
    )
    .where('id', '=', input.id)
    .where('status', '=', 'ready')
    .executeTakeFirst();
  const allowed =
    row !== undefined && (row.is_avatar || (input.viewer !== undefined && (await sees(input.viewer, row))));
  if (!row || !allowed) throw new AppError('NOT_FOUND', 'No such file');
  return { file: toDto(row), key: row.storage_key, isPublic: Boolean(row.is_avatar) };
}

/** The bytes (or a range of them); a row whose object is gone is "not found". */
export async function readBytes(
  deps: Pick<Services, 'storage'>,
  input: { key: string; range: ByteRange | undefined },
): Promise<Readable> {
  const body = await deps.storage.get(input.key, input.range);
  if (!body) throw new AppError('NOT_FOUND', 'No such file');
  return body;
}

/** Nothing, when the store still has the bytes under `key` (a HEAD's check); else NOT_FOUND, as `readBytes`. */
export async function assertBytesKept(deps: Pick<Services, 'storage'>, key: string): Promise<void> {
  if (!(await deps.storage.head(key))) throw new AppError('NOT_FOUND', 'No such file');
}

/** A short-lived URL of the store for the bytes (S3 with FILES_DOWNLOAD_REDIRECT), or undefined. */
export async function presignedDownload(
  deps: Pick<Services, 'storage' | 'config'>,
  input: { key: string; contentType: string; contentDisposition: string },
): Promise<string | undefined> {
  if (!deps.config.files.downloadRedirect || !deps.storage.presignGet) return undefined;
  return deps.storage.presignGet(input.key, {
    expiresInSeconds: deps.config.files.downloadUrlTtlSeconds,
    contentType: input.contentType,
    contentDisposition: input.contentDisposition,
  });
}

/**
 * A direct upload (S3): a pending row and a presigned PUT to `uploads/<uuid>`, with the size
 * and type signed in. The declared type must be accepted; `completeUpload` checks what
 * actually arrived, then copies it to a key no URL names (a second PUT cannot change a
 * checked file).
 */
export async function createUpload(
  deps: Deps,
  input: { ownerId: string; name: string; contentType: string; size: number },
): Promise<{ id: string; url: string; method: 'PUT'; headers: Record<string, string>; expiresAt: string }> {
  const { storage, config } = deps;
  if (!storage.presignPut) {
    throw new AppError('DIRECT_UPLOADS_UNAVAILABLE', 'Direct uploads need the S3 storage driver: POST /api/files');
  }
  const { maxBytes, quotaBytes, allowedTypes, uploadUrlTtlSeconds } = config.files;
  if (!allowedTypes.includes(input.contentType)) {
    throw new AppError('UNSUPPORTED_FILE_TYPE', 'Files of type {type} are not accepted', {
      details: { contentType: input.contentType, allowed: allowedTypes },
      params: { type: input.contentType },
    });
  }
  if (input.size > maxBytes) throw tooLarge(maxBytes);
  const key = newKey(UPLOADS_PREFIX);
  const expiresAt = new Date(deps.clock.now() + uploadUrlTtlSeconds * 1000);
  // The store checks the URL's expiry when a PUT starts: one started just before may land
  // long after. The pending row (and its quota) outlives the URL by this much, for its completion.
  const sweptAt = new Date(expiresAt.getTime() + COMPLETION_GRACE_MS);
  // Signed first: a store that cannot sign leaves no pending row holding quota.
  const presigned = await storage.presignPut(key, {
    contentType: input.contentType,
    size: input.size,
    expiresInSeconds: uploadUrlTtlSeconds,
  });
  // A pending upload counts against the quota at its declared size (and, whatever becomes of
  // it, as long as its URL may write: `spendUpload`, `deleteFile`).
  const id = await deps.db.transaction().execute(async (trx) => {
    await assertRoomFor({ db: trx }, { ownerId: input.ownerId, size: input.size, quotaBytes });
    const row = await trx
      .insertInto('files')
      .values({
        owner_id: input.ownerId,
        name: displayName(input.name),
        content_type: input.contentType,
        size: input.size,
        storage_key: key,
        status: 'pending',
        expires_at: sweptAt,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  });
  return { id, url: presigned.url, method: 'PUT', headers: presigned.headers, expiresAt: isoTime(expiresAt) };
}

/** How long a pending direct upload outlives its URL, for a PUT started before the URL expired to land and complete. */
export const COMPLETION_GRACE_MS = 60 * 60 * 1000;

const nothingUploaded = () =>
  new AppError('UPLOAD_REJECTED', 'Nothing was uploaded to the URL', { details: { reason: 'missing' } });

/**
 * The SHA-256 of the object at `key` once it is what the upload declared (its size, and its
 * type as its bytes show it); UPLOAD_REJECTED otherwise. The store failing while the bytes
 * are read is the store's outage (503), not an unknown error.
 */
async function checkUploaded(
  deps: Pick<Services, 'storage'>,
  key: string,
  declared: { size: number; contentType: string },
): Promise<string> {
  const info = await deps.storage.head(key);
  const body = info && (await deps.storage.get(key));
  if (!info || !body) throw nothingUploaded();
  if (info.size !== declared.size) {
    body.destroy();
    throw new AppError('UPLOAD_REJECTED', 'The upload has {size} bytes, not the {declared} declared', {
      details: { reason: 'size' },
      params: { size: info.size, declared: declared.size },
    });
  }
  const hash = createHash('sha256');
  // Whatever was declared: a file whose head reads as text but whose bytes turn binary further
  // on is binary (as an upload through the server is kept), and may be declared so.
  const text = new TextCheck();
  let isText = true;
  const chunks: Buffer[] = [];
  let headLength = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      if (isText) isText = text.push(chunk);
      if (headLength < SNIFF_BYTES) {
        chunks.push(chunk);
        headLength += chunk.length;
      }
    }
  } catch (error) {
    throw new DependencyUnavailableError('storage', 'The uploaded bytes could not be read back from the store', {
      cause: error,
    });
  }
  if (isText) isText = text.end();
  const head = Buffer.concat(chunks).subarray(0, SNIFF_BYTES);
  const headType = await sniffContentType(head, { complete: info.size <= SNIFF_BYTES });
  const sniffed = headType === 'text/plain' && !isText ? OCTET_STREAM : headType;
  if (sniffed !== declared.contentType) {
    throw new AppError('UPLOAD_REJECTED', 'The upload is {type}, not the {declared} declared', {
      details: { reason: 'type' },
      params: { type: sniffed, declared: declared.contentType },
    });
  }
  return hash.digest('hex');
}

/**
 * The client says its direct upload is done: the object is copied to its final key, and the
 * copy must have the declared size and sniff as the declared (accepted) type. Then the file
 * becomes visible, with the copy's SHA-256; otherwise the objects go and the upload is spent
 * (UPLOAD_REJECTED; `spendUpload`). No object yet is UPLOAD_REJECTED (`missing`) too, but the upload stays
 * pending: the client completes it again once its PUT has finished.
 */
export async function completeUpload(
  deps: Deps & Pick<Services, 'kv'>,
  input: { ownerId: string; id: string },
): Promise<FileDto> {
  const row = await deps.db
    .selectFrom('files')
    .selectAll()
    .where('id', '=', input.id)
    .where('owner_id', '=', input.ownerId)
    .where('status', 'in', ['pending', 'ready'])
    .executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', 'No such upload');
  if (row.status === 'ready') return toDto(row);
  // One completion of an upload at a time: each copies and reads back the whole object (up to
  // FILES_MAX_BYTES), so calls sent together would each do it. Another call meanwhile is a 409,
  // to try again; once done, a completion answers the file. A store that cannot keep the turn
  // (Redis away) lets the call go on: the work is done twice, never wrongly.
  const turn = `completing-upload:${row.id}`;
  const taken = await deps.kv.increment(turn, { ttlMs: COMPLETION_TURN_MS }).then(
    (counter) => counter.value === 1,
    () => true,
  );
  if (!taken) throw new AppError('CONFLICT', 'This upload is being completed: try again in a moment');
  try {
    return await completeInTurn(deps, row);
  } finally {
    await deps.kv.delete(turn).catch(() => undefined);
  }
}

/** How long a completion's turn is kept at most (a process that died in it frees it then). */
const COMPLETION_TURN_MS = 15 * 60_000;

async function completeInTurn(deps: Deps, row: FileRow): Promise<FileDto> {
  const reject = async (error: AppError) => {
    await deps.db.transaction().execute((trx) => spendUpload({ db: trx, jobs: deps.jobs }, row.id));
    return error;
  };
  // Nothing there yet (a PUT still on its way, or a completion called too early): the upload
  // stays pending, for a completion once the bytes are there, until the sweep.
  if (!(await deps.storage.head(row.storage_key))) throw nothingUploaded();
  // The bytes are checked in a copy no upload URL names: a PUT to the URL while they are
  // checked cannot replace what is kept with bytes never checked.
  const finalKey = newKey();
  if (!(await deps.storage.copy(row.storage_key, finalKey, { contentType: row.content_type }))) {
    // Gone since it was seen: the upload cancelled or swept meanwhile (404), or its object
    // removed by other means (as if it had never come).
    const still = await deps.db
      .selectFrom('files')
      .select('id')
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    throw still ? nothingUploaded() : new AppError('NOT_FOUND', 'No such upload');
  }
  let sha256: string;
  try {
    sha256 = await checkUploaded(deps, finalKey, { size: Number(row.size), contentType: row.content_type });
  } catch (error) {
    await removeUnnamed(deps, [finalKey]);
    throw error instanceof AppError && error.appCode === 'UPLOAD_REJECTED' ? await reject(error) : error;
  }
  const ready = await deps.db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('files')
      // (`expires_at` kept: until then the URL may still write to `upload_key`.)
      .set({ status: 'ready', sha256, storage_key: finalKey, upload_key: row.storage_key })
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .returningAll()
      .executeTakeFirst();
    // The row now names the copy: the uploaded object's removal is queued with the change.
    if (updated) await enqueueStorageDelete({ db: trx, jobs: deps.jobs }, [row.storage_key]);
    return updated;
  });
  if (ready) return toDto(ready);
  // Completed by a concurrent call meanwhile (or removed): the copy, which no row ever named,
  // goes at once, and the answer is what is there now.
  await removeUnnamed(deps, [finalKey]);
  const current = await deps.db
    .selectFrom('files')
    .selectAll()
    .where('id', '=', row.id)
    .where('status', '=', 'ready')
    .executeTakeFirst();
  if (!current) throw new AppError('NOT_FOUND', 'No such upload');
  return toDto(current);
}

/**
 * The backstop of the file store, run by maintenance: expired pending uploads and spent upload
 * URLs go (the rows, and their objects by a queued job, in one transaction), and so does every object older than
 * an hour that no row names, which no deletion queued (a crash mid-upload, a copy left by a
 * completion that lost a race, an upload URL used again, a removal job that was discarded).
 *
 * `uploads/` is walked first (where such objects are left most), then `files/`. A store too
 * large for one run (the job's 15 minutes) is walked over several: each prefix's walk goes on
 * after the last key a run dealt with, kept in the key-value store (a store that lost it
 * starts the walk again).
 */
export async function sweepFiles(
  deps: Deps & Pick<Services, 'kv'>,
  signal?: AbortSignal,
): Promise<{ expiredUploads: number; orphanObjects: number }> {
  const now = deps.clock.now();
  const expired = await deps.db.transaction().execute(async (trx) => {
    const rows = await trx
      .deleteFrom('files')
      .where('status', 'in', ['pending', 'spent'])
      .where('expires_at', '<', new Date(now))
      .returning('storage_key')
      .execute();
    await enqueueStorageDelete(
      { db: trx, jobs: deps.jobs },
      rows.map((row) => row.storage_key),
    );
    return rows;
  });
  let orphanObjects = 0;
  for (const prefix of [UPLOADS_PREFIX, FILES_PREFIX]) {
    const resumeKey = `files-sweep-after:${prefix}`;
    const after = (await deps.kv.get(resumeKey).catch(() => null)) ?? undefined;
    let page: string[] = [];
    let listed = 0;
    let lastListed: string | undefined;
    // The orphans among the objects listed since the last page, then where the walk goes on.
    const sweepPage = async () => {
      if (page.length > 0) {
        const named = await deps.db
          .selectFrom('files')
          .select('storage_key')
          .where('storage_key', 'in', page)
          .execute();
        const kept = new Set(named.map((row) => row.storage_key));
        const orphans = page.filter((key) => !kept.has(key));
        await removeUnnamed(deps, orphans);
        orphanObjects += orphans.length;
        page = [];
      }
      listed = 0;
      if (lastListed !== undefined) {
        await deps.kv.set(resumeKey, lastListed, { ttlMs: SWEEP_RESUME_TTL_MS }).catch(() => undefined);
      }
    };
    for await (const object of deps.storage.list(prefix, after === undefined ? {} : { after })) {
      signal?.throwIfAborted();
      lastListed = object.key;
      listed += 1;
      if (object.lastModified.getTime() <= now - SWEEP_GRACE_MS) page.push(object.key);
      if (page.length >= SWEEP_PAGE || listed >= 2 * SWEEP_PAGE) await sweepPage();
    }
    await sweepPage();
    // The walk has come to the end: the next one starts again from the first key.
    await deps.kv.delete(resumeKey).catch(() => undefined);
  }
  return { expiredUploads: expired.length, orphanObjects };
}

/** How many objects the sweep looks up at once (and removes, those no row names). */
const SWEEP_PAGE = 500;
/** How long an unfinished walk's place is kept: the next runs (MAINTENANCE_INTERVAL) go on from it. */
const SWEEP_RESUME_TTL_MS = 7 * 24 * 60 * 60_000;

/** An image the user owns, for a profile picture; anything else is NOT_AN_IMAGE. */
export async function assertOwnImage(
  deps: Pick<Services, 'db'>,
  input: { ownerId: string; fileId: string },
): Promise<void> {
  const row = await deps.db
    .selectFrom('files')
    .select('content_type')
    .where('id', '=', input.fileId)
    .where('owner_id', '=', input.ownerId)
    .where('status', '=', 'ready')
    .executeTakeFirst();
  if (!row || !AVATAR_TYPES.has(row.content_type)) {
    throw new AppError('NOT_AN_IMAGE', 'A profile picture must be an image you uploaded');
  }
}
