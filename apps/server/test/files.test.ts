/**
 * Files end to end: uploads streamed over real HTTP into the local disk or S3 (s3rver),
 * sniffed types, limits and quotas that keep nothing, downloads (ranges, ETags, safe
 * names), permissions, profile pictures, account deletion (the bytes removed by queued
 * jobs, see file-jobs.test.ts), the sweep, and direct uploads to S3. Bytes flow over real HTTP (fetch, node:http); JSON procedures go through
 * `app.inject`, whose REST errors the helpers hold to the OpenAPI document.
 */

import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomFillSync, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createConnection, createServer as createNetServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32, deflateSync } from 'node:zlib';
import { createTestDatabase } from '@app/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../src/infra/dependency-errors.ts';
import { sniffContentType } from '../src/infra/sniff.ts';
import type { ObjectStorage } from '../src/infra/storage/index.ts';
import { STORAGE_DELETE_QUEUE } from '../src/modules/files/file-jobs.ts';
import { COMPLETION_GRACE_MS, sweepFiles } from '../src/modules/files/files.service.ts';
import type { Permission } from '../src/modules/rbac/permissions.ts';
import {
  type Account,
  bearer,
  type FakeClock,
  fakeClock,
  listeningUrl,
  login,
  registerAccount,
  registerAdmin,
  type S3Server,
  sharedRedisEnv,
  spawnServer,
  startS3Server,
  startTestServer,
  type TestApp,
  untilWaitingOnLocks,
} from './helpers/index.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

interface FileDto {
  id: string;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: string;
}

// ---------------------------------------------------------------------------------------
// Bytes of known types
// ---------------------------------------------------------------------------------------

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A valid PNG (signature, IHDR, IDAT, IEND with their CRCs) of black RGB pixels. */
function png(width = 2, height = 2): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const rows = Buffer.alloc(height * (1 + width * 3)); // filter byte 0 per row, black pixels
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A ZIP with one stored file (local header, central directory, end record). */
function zip(): Buffer {
  const name = Buffer.from('a.txt');
  const content = Buffer.from('hello zip\n');
  const crc = crc32(content);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(content.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(content.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(name.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(local.length + name.length + content.length, 16);
  return Buffer.concat([local, name, content, central, name, end]);
}

/** The start of a 64-bit ELF executable. */
const elf = () => Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(120, 0)]);

/** Printable ASCII (a `text/plain` upload) of any length, different each call. */
function text(size: number): Buffer {
  const bytes = randomFillSync(Buffer.allocUnsafe(size));
  for (let i = 0; i < bytes.length; i++) bytes[i] = 0x61 + ((bytes[i] as number) & 15);
  return bytes;
}

// ---------------------------------------------------------------------------------------
// Multipart by hand (the test controls every byte of the filename)
// ---------------------------------------------------------------------------------------

const BOUNDARY = '----files-test-7MA4YWxkTrZu0gW';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

interface PartOptions {
  /** What the client claims; the server must not believe it. */
  type?: string;
  /** A whole Content-Disposition header value instead of the quoted `filename`. */
  disposition?: string;
}

function partHead(name: string, options: PartOptions = {}): Buffer {
  const quoted = name.replace(/[\\"]/g, (c) => `\\${c}`);
  const disposition = options.disposition ?? `form-data; name="file"; filename="${quoted}"`;
  const type = options.type ?? 'application/octet-stream';
  return Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\nContent-Type: ${type}\r\n\r\n`);
}
const PART_TAIL = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
const multipart = (name: string, bytes: Uint8Array, options?: PartOptions) =>
  Buffer.concat([partHead(name, options), bytes, PART_TAIL]);

/**
 * The client of the big upload, in a process of its own: the test process then holds the
 * server alone, so its memory is the server's (undici keeps much of a streamed request body
 * alive while it is sent, which would hide what the server does). The body is generated
 * lazily (a ReadableStream, `duplex: 'half'`), multipart framing written by hand, and
 * hashed as it is generated.
 */
const UPLOAD_CLIENT = `
const { createHash, randomFillSync } = require('node:crypto');
const { url, authorization, contentType, head, tail, size } = JSON.parse(process.argv[1]);
const hash = createHash('sha256');
let generated = 0;
let state = 'head';
const body = new ReadableStream({
  pull(controller) {
    if (state === 'head') {
      state = 'bytes';
      controller.enqueue(Buffer.from(head, 'base64'));
    } else if (generated < size) {
      const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(256 * 1024, size - generated)));
      for (let i = 0; i < chunk.length; i++) chunk[i] = 0x61 + (chunk[i] & 15);
      hash.update(chunk);
      generated += chunk.length;
      controller.enqueue(chunk);
    } else {
      controller.enqueue(Buffer.from(tail, 'base64'));
      controller.close();
    }
  },
});
fetch(url, { method: 'POST', headers: { authorization, 'content-type': contentType }, body, duplex: 'half' })
  .then(async (response) => {
    const answer = { status: response.status, body: await response.json(), sha256: hash.digest('hex'), generated };
    process.stdout.write(JSON.stringify(answer));
  })
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
`;

async function streamUpload(input: { url: string; account: Account; name: string; size: number }) {
  const args = JSON.stringify({
    url: input.url,
    authorization: bearer(input.account).authorization,
    contentType: MULTIPART,
    head: partHead(input.name, { type: 'text/plain' }).toString('base64'),
    tail: PART_TAIL.toString('base64'),
    size: input.size,
  });
  const child = spawn(process.execPath, ['-e', UPLOAD_CLIENT, args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`the upload client failed (${code}): ${errors}`);
  return JSON.parse(output) as { status: number; body: FileDto; sha256: string; generated: number };
}

// ---------------------------------------------------------------------------------------
// A server with a store of its own
// ---------------------------------------------------------------------------------------

type Driver = 'local' | 's3';
type FilesServer = TestApp & { url: string; dir: string | undefined; s3: S3Server | undefined };

const s3Env = (s3: S3Server) => ({
  STORAGE_DRIVER: 's3',
  S3_BUCKET: s3.bucket,
  S3_ENDPOINT: s3.endpoint,
  S3_ACCESS_KEY_ID: s3.accessKeyId,
  S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  S3_REGION: s3.region,
  S3_FORCE_PATH_STYLE: 'true',
});

/** A real HTTP server over a fresh database and store (a temporary FILES_DIR, or an s3rver). */
async function startFilesServer(
  options: { driver?: Driver; env?: Record<string, string>; clock?: FakeClock; s3?: S3Server } = {},
): Promise<FilesServer> {
  const driver = options.driver ?? 'local';
  const dir = driver === 'local' ? await mkdtemp(path.join(os.tmpdir(), 'files-test-')) : undefined;
  const s3 = driver === 's3' ? (options.s3 ?? (await startS3Server())) : undefined;
  const server = await startTestServer({
    env: {
      RATE_LIMIT_DEFAULT_PER_MINUTE: '1000000',
      ...(dir && { FILES_DIR: dir }),
      ...(s3 && s3Env(s3)),
      ...options.env,
    },
    ...(options.clock && { overrides: { clock: options.clock } }),
  });
  return {
    ...server,
    dir,
    s3,
    async close() {
      // Every response has been read by now, but the server may not have marked the last
      // connection idle yet: left open, it would hold close() for the 72 s keep-alive.
      const closing = server.close();
      server.app.server.closeAllConnections();
      await closing;
      if (dir) await rm(dir, { recursive: true, force: true });
      if (s3 && !options.s3) await s3.close();
    },
  };
}

async function upload(
  server: FilesServer,
  account: Account | undefined,
  name: string,
  bytes: Uint8Array,
  options?: PartOptions,
) {
  const response = await fetch(`${server.url}/api/files`, {
    method: 'POST',
    headers: { ...(account && bearer(account)), 'content-type': MULTIPART },
    body: multipart(name, bytes, options),
  });
  return {
    status: response.status,
    body: (await response.json()) as FileDto & { appCode?: string; details?: unknown },
  };
}

async function uploaded(server: FilesServer, account: Account, name: string, bytes: Uint8Array, options?: PartOptions) {
  const { status, body } = await upload(server, account, name, bytes, options);
  expect(status, JSON.stringify(body)).toBe(201);
  return body as FileDto;
}

/** GET /api/files/:id/content over real HTTP. */
const content = (server: FilesServer, id: string, account?: Account, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/api/files/${id}/content`, {
    headers: { ...(account && bearer(account)), ...headers },
    redirect: 'manual',
  });

/** A JSON procedure over REST, as `account`. */
const call = (
  server: FilesServer,
  account: Account | undefined,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  payload?: object,
) =>
  server.app.inject({
    method,
    url,
    headers: { ...(account && bearer(account)) },
    ...(payload && { payload }),
  });

/** Every object the store holds under `files/` (unfinished local writes included). */
async function objectKeys(server: FilesServer): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of server.services.storage.list('files/')) keys.push(object.key);
  return keys.sort();
}

const rowsOf = (server: FilesServer, ownerId: string) =>
  server.services.db
    .selectFrom('files')
    .select(['id', 'storage_key', 'status'])
    .where('owner_id', '=', ownerId)
    .execute();

/** Waits until every queued removal of stored bytes has run. */
const removalsRun = (server: FilesServer) => server.services.jobs.settle([STORAGE_DELETE_QUEUE.name]);

/** The `storage-delete` jobs (in any state) that name `key`. */
async function removalJobsOf(server: FilesServer, key: string) {
  const boss = await server.services.jobs.ready();
  return (await boss.findJobs<{ keys: string[] }>(STORAGE_DELETE_QUEUE.name)).filter((job) =>
    job.data.keys.includes(key),
  );
}

const storageKeyOf = async (server: FilesServer, id: string) =>
  (await server.services.db.selectFrom('files').select('storage_key').where('id', '=', id).executeTakeFirstOrThrow())
    .storage_key;

/** A role of its own holding `permission`, given to the user. */
async function grantPermission(server: FilesServer, userId: string, permission: Permission): Promise<void> {
  const { db } = server.services;
  const role = await db
    .insertInto('roles')
    .values({ name: `files-${randomBytes(5).toString('hex')}` })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db.insertInto('role_permissions').values({ role_id: role.id, permission }).execute();
  await db.insertInto('user_roles').values({ user_id: userId, role_id: role.id }).execute();
}

/** Polls until `check` holds (true) or time runs out (false). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(50);
  }
  return check();
}

/** Every file under the directory (temporary files included). */
const filesUnder = async (dir: string) =>
  (await readdir(dir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((e) => e.name);

const SOME_ID = '01900000-0000-7000-8000-000000000000';

/**
 * Errors nobody handled (an 'error' event without a listener): vitest reports them, and in
 * production each one ends the process. Tests that provoke failing streams check for them.
 */
const uncaught: unknown[] = [];
const recordUncaught = (error: unknown) => {
  uncaught.push(error);
};
beforeAll(() => {
  process.on('uncaughtExceptionMonitor', recordUncaught);
});
afterAll(() => {
  process.off('uncaughtExceptionMonitor', recordUncaught);
});
const takeUncaught = () =>
  uncaught.splice(0).map((error) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error)));
const NOTHING_UNCAUGHT = 'errors nobody handled (each one a crash in production)';

// ---------------------------------------------------------------------------------------
// Both drivers
// ---------------------------------------------------------------------------------------

describe.each(['local', 's3'] as const)('uploading and downloading (%s storage)', (driver) => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer({
      driver,
      env: { FILES_MAX_BYTES: String(64 * KiB), FILES_QUOTA_BYTES: String(100 * KiB) },
    });
  });
  afterAll(() => server?.close());

  it('stores the bytes and answers their size, SHA-256 and sniffed type', async () => {
    const alice = await registerAccount(server.app);
    const bytes = Buffer.from('Hello, files!\nSecond line.\n');
    const file = await uploaded(server, alice, 'hello.txt', bytes, { type: 'application/x-msdownload' });
    expect(file).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'hello.txt',
      contentType: 'text/plain',
      size: bytes.length,
      sha256: sha256(bytes),
      createdAt: expect.any(String),
    });
    expect(Number.isNaN(Date.parse(file.createdAt))).toBe(false);

    const image = png();
    const disguised = await uploaded(server, alice, 'evil.html', image, { type: 'text/html' });
    expect(disguised).toMatchObject({
      name: 'evil.html',
      contentType: 'image/png',
      size: image.length,
      sha256: sha256(image),
    });

    const empty = await uploaded(server, alice, 'empty.txt', Buffer.alloc(0));
    expect(empty).toMatchObject({ contentType: 'text/plain', size: 0, sha256: sha256(Buffer.alloc(0)) });

    // Text that starts as a bitmap's signature does (`BM`) is text all the same.
    const csv = await uploaded(server, alice, 'bmi.csv', Buffer.from('BMI,height,weight\n22.5,180,73\n'));
    expect(csv.contentType).toBe('text/plain');

    const unicode = await uploaded(server, alice, 'Überprüfung 📄.txt', Buffer.from('Grüße 👋\n'));
    expect(unicode.name).toBe('Überprüfung 📄.txt');
    expect((await call(server, alice, 'GET', `/api/files/${unicode.id}`)).json()).toEqual(unicode);
    expect(await objectKeys(server)).toHaveLength(5);
  });

  it('sniffs text that starts as a short binary signature does as text, and keeps the formats that can be text', async () => {
    for (const start of [
      'BMI,height\n',
      'MZ-300 parts\n',
      'AC1015 parts,2026\n',
      'ID3 notes\n',
      'FORM 1040\n',
      'SQLite notes\n',
    ]) {
      const bytes = Buffer.from(`${start}1,2,3\n`);
      expect([start, await sniffContentType(bytes, { complete: true })]).toEqual([start, 'text/plain']);
    }
    // The same signatures in their binary formats.
    const bitmap = Buffer.concat([Buffer.from('BM'), Buffer.alloc(60, 0)]);
    expect(await sniffContentType(bitmap, { complete: true })).toBe('image/bmp');
    const executable = Buffer.concat([Buffer.from('MZ'), Buffer.from([0x90, 0, 3, 0]), Buffer.alloc(58, 0)]);
    expect(await sniffContentType(executable, { complete: true })).toBe('application/x-msdownload');
    // Formats that can be wholly text keep their type.
    const formats = {
      '<?xml version="1.0"?>\n<notes/>\n': 'application/xml',
      '%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n': 'application/pdf',
      '{\\rtf1\\ansi Hello}\n': 'application/rtf',
      '%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n': 'application/eps',
      '-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n': 'application/pgp-encrypted',
    };
    for (const [start, type] of Object.entries(formats)) {
      expect(await sniffContentType(Buffer.from(start), { complete: true })).toBe(type);
    }
  });

  it('refuses a type that is not allowed with 415, keeping nothing', async () => {
    const bob = await registerAccount(server.app);
    const before = await objectKeys(server);
    for (const [name, bytes] of [
      ['archive.txt', zip()],
      ['program.png', elf()],
    ] as const) {
      const { status, body } = await upload(server, bob, name, bytes, { type: 'text/plain' });
      expect(status, name).toBe(415);
      expect(body.appCode).toBe('UNSUPPORTED_FILE_TYPE');
    }
    expect(await rowsOf(server, bob.id)).toEqual([]);
    expect(await objectKeys(server)).toEqual(before);
  });

  it('answers a file over FILES_MAX_BYTES with a JSON 413 (not a reset), keeping nothing', async () => {
    const carol = await registerAccount(server.app);
    const before = await objectKeys(server);
    takeUncaught();
    const { status, body } = await upload(server, carol, 'big.txt', text(MiB));
    expect(status).toBe(413);
    expect(body).toMatchObject({ appCode: 'FILE_TOO_LARGE' });
    expect.soft(takeUncaught(), NOTHING_UNCAUGHT).toEqual([]);
    expect(await rowsOf(server, carol.id)).toEqual([]);
    expect(await objectKeys(server)).toEqual(before);
    // Exactly the limit is fine.
    expect((await upload(server, carol, 'max.txt', text(64 * KiB))).status).toBe(201);
  });

  it('answers an upload over the account quota with 413 QUOTA_EXCEEDED, keeping nothing', async () => {
    const dave = await registerAccount(server.app);
    await uploaded(server, dave, 'first.txt', text(60 * KiB));
    const before = await objectKeys(server);
    takeUncaught();
    const { status, body } = await upload(server, dave, 'second.txt', text(60 * KiB));
    expect(status).toBe(413);
    expect(body).toMatchObject({ appCode: 'QUOTA_EXCEEDED' });
    expect.soft(takeUncaught(), NOTHING_UNCAUGHT).toEqual([]);
    expect(await rowsOf(server, dave.id)).toHaveLength(1);
    expect(await objectKeys(server)).toEqual(before);
    // What is left of the quota still fits.
    expect((await upload(server, dave, 'rest.txt', text(40 * KiB))).status).toBe(201);
    expect((await upload(server, dave, 'one-more.txt', Buffer.from('x'))).body.appCode).toBe('QUOTA_EXCEEDED');
    expect.soft(takeUncaught(), NOTHING_UNCAUGHT).toEqual([]);
  });

  it('keeps the bytes of an upload whose commit went through but was not answered (503: a row names them)', async () => {
    const erin = await registerAccount(server.app);
    const { db } = server.services;
    const transaction = db.transaction;
    // The next transaction commits, then its answer is lost: a connection that breaks right after COMMIT.
    db.transaction = () => {
      const builder = transaction.call(db);
      return Object.assign(Object.create(builder), {
        execute: async (work: Parameters<typeof builder.execute>[0]) => {
          await builder.execute(work);
          throw new Error('Connection terminated unexpectedly');
        },
      });
    };
    let answer: Awaited<ReturnType<typeof upload>>;
    try {
      answer = await upload(server, erin, 'committed.txt', Buffer.from('committed\n'));
    } finally {
      db.transaction = transaction;
    }
    expect([answer.status, answer.body.appCode]).toEqual([503, 'DEPENDENCY_DOWN']);
    // The row was written: its bytes are still there to download (the retry makes a second file).
    const [row] = await rowsOf(server, erin.id);
    const download = await call(server, erin, 'GET', `/api/files/${row?.id}/content`);
    expect([download.statusCode, download.body]).toEqual([200, 'committed\n']);
  });

  it('lists, reads and deletes the caller’s files; another user gets 404 everywhere', async () => {
    const owner = await registerAccount(server.app);
    const other = await registerAccount(server.app);
    const file = await uploaded(server, owner, 'mine.txt', Buffer.from('mine\n'));
    const key = await storageKeyOf(server, file.id);

    expect((await call(server, owner, 'GET', '/api/files')).json()).toEqual({ items: [file], nextCursor: null });
    expect((await call(server, other, 'GET', '/api/files')).json()).toEqual({ items: [], nextCursor: null });
    expect((await call(server, owner, 'GET', `/api/files/${file.id}`)).json()).toEqual(file);

    const hidden = await call(server, other, 'GET', `/api/files/${file.id}`);
    expect([hidden.statusCode, hidden.json().appCode]).toEqual([404, 'NOT_FOUND']);
    expect((await content(server, file.id, other)).status).toBe(404);
    expect((await content(server, file.id)).status).toBe(404);
    const refused = await call(server, other, 'DELETE', `/api/files/${file.id}`);
    expect([refused.statusCode, refused.json().appCode]).toEqual([404, 'NOT_FOUND']);
    expect(await server.services.storage.head(key)).toBeDefined();

    expect(await removalJobsOf(server, key)).toEqual([]);
    expect((await call(server, owner, 'DELETE', `/api/files/${file.id}`)).json()).toEqual({ ok: true });
    // The row went with a queued job that removes the bytes.
    expect(await removalJobsOf(server, key)).toHaveLength(1);
    await removalsRun(server);
    expect(await server.services.storage.head(key)).toBeUndefined();
    expect((await call(server, owner, 'GET', `/api/files/${file.id}`)).statusCode).toBe(404);
    expect((await content(server, file.id, owner)).status).toBe(404);
    expect((await call(server, owner, 'DELETE', `/api/files/${file.id}`)).statusCode).toBe(404);
  });

  it('downloads with the stored type, length, ETag, ranges and nosniff', async () => {
    const owner = await registerAccount(server.app);
    const bytes = Buffer.from(Array.from({ length: 100 }, (_, i) => 0x41 + (i % 26)));
    const file = await uploaded(server, owner, 'letters.txt', bytes);

    const whole = await content(server, file.id, owner);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(whole.headers.get('content-length')).toBe('100');
    expect(whole.headers.get('etag')).toBe(`"${file.sha256}"`);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(whole.headers.get('x-content-type-options')).toBe('nosniff');
    expect(whole.headers.get('content-disposition')).toMatch(/^attachment; /);
    expect(Buffer.from(await whole.arrayBuffer())).toEqual(bytes);

    const cached = await content(server, file.id, owner, { 'if-none-match': `"${file.sha256}"` });
    expect(cached.status).toBe(304);
    expect(await cached.text()).toBe('');
    expect((await content(server, file.id, owner, { 'if-none-match': '"stale"' })).status).toBe(200);
    // Compared weakly: a list, a tag a compressing proxy marked weak, or any.
    for (const ifNoneMatch of [`"stale", "${file.sha256}"`, `W/"${file.sha256}"`, '*']) {
      expect((await content(server, file.id, owner, { 'if-none-match': ifNoneMatch })).status, ifNoneMatch).toBe(304);
    }

    const first = await content(server, file.id, owner, { range: 'bytes=0-9' });
    expect(first.status).toBe(206);
    expect(first.headers.get('content-range')).toBe('bytes 0-9/100');
    expect(first.headers.get('content-length')).toBe('10');
    expect(first.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await first.arrayBuffer())).toEqual(bytes.subarray(0, 10));

    const suffix = await content(server, file.id, owner, { range: 'bytes=-5' });
    expect(suffix.status).toBe(206);
    expect(suffix.headers.get('content-range')).toBe('bytes 95-99/100');
    expect(Buffer.from(await suffix.arrayBuffer())).toEqual(bytes.subarray(95));

    const middle = await content(server, file.id, owner, { range: 'bytes=40-' });
    expect(middle.headers.get('content-range')).toBe('bytes 40-99/100');
    expect(Buffer.from(await middle.arrayBuffer())).toEqual(bytes.subarray(40));

    for (const range of ['bytes=100-', 'bytes=500-600', 'bytes=-0']) {
      const unsatisfiable = await content(server, file.id, owner, { range });
      expect(unsatisfiable.status, range).toBe(416);
      expect(unsatisfiable.headers.get('content-range')).toBe('bytes */100');
      // An error of this request: no cache keeps it, nor revalidates it as the file.
      expect(unsatisfiable.headers.get('cache-control')).toBe('no-store');
      expect(unsatisfiable.headers.get('etag')).toBeNull();
      await unsatisfiable.arrayBuffer();
    }
    // A last position before the first is no valid range: ignored, the whole file.
    for (const range of ['bytes=5-3', 'bytes=500-3']) {
      const ignored = await content(server, file.id, owner, { range });
      expect(ignored.status, range).toBe(200);
      expect(Buffer.from(await ignored.arrayBuffer())).toEqual(bytes);
    }

    const image = await uploaded(server, owner, 'pixel.png', png());
    const inline = await content(server, image.id, owner);
    expect(inline.headers.get('content-type')).toBe('image/png');
    expect(inline.headers.get('content-disposition')).toMatch(/^inline; /);
    expect(Buffer.from(await inline.arrayBuffer())).toEqual(png());
  });
});

// ---------------------------------------------------------------------------------------
// The local disk
// ---------------------------------------------------------------------------------------

describe('what the first bytes do not show (local storage)', () => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer({ env: { FILES_QUOTA_BYTES: String(2 * MiB) } });
  });
  afterAll(() => server?.close());

  it('refuses a "text" file whose bytes turn binary after the sniffed part, keeping nothing', async () => {
    const account = await registerAccount(server.app);
    const hidden = Buffer.concat([text(64 * KiB), zip()]);
    const { status, body } = await upload(server, account, 'readme.txt', hidden);
    expect([status, body.appCode]).toEqual([415, 'UNSUPPORTED_FILE_TYPE']);
    expect(await rowsOf(server, account.id)).toEqual([]);
  });

  it('keeps a "text" file whose bytes turn binary as binary where binary files are accepted', async () => {
    const allowing = await startFilesServer({ env: { FILES_ALLOWED_TYPES: 'text/plain,application/octet-stream' } });
    try {
      const account = await registerAccount(allowing.app);
      const hidden = Buffer.concat([text(64 * KiB), zip()]);
      // Before: refused (415), as if binary files were not accepted.
      const stored = await uploaded(allowing, account, 'readme.txt', hidden);
      expect(stored).toMatchObject({ contentType: 'application/octet-stream', size: hidden.length });
      const response = await content(allowing, stored.id, account);
      expect(response.headers.get('content-type')).toBe('application/octet-stream');
      expect(Buffer.from(await response.arrayBuffer()).equals(hidden)).toBe(true);
      // Text to its end stays text.
      expect((await uploaded(allowing, account, 'plain.txt', text(64 * KiB))).contentType).toBe('text/plain');
    } finally {
      await allowing.close();
    }
  });

  it('names a download by what it is, and drops invisible and reordering characters from names', async () => {
    const account = await registerAccount(server.app);
    const page = await uploaded(server, account, 'page.html', text(100));
    const response = await content(server, page.id, account);
    await response.arrayBuffer();
    expect(response.headers.get('content-disposition')).toContain('filename="page.html.txt"');
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    const spoofed = await uploaded(server, account, 'invoice\u202Egpj.exe', text(10));
    expect(spoofed.name).toBe('invoicegpj.exe');
    for (const name of ['pay\u200Bpal\u2066.txt', 'pay\u200Dpal.txt', 'paypal\u200C.txt', '\u200Dpaypal.txt']) {
      expect((await uploaded(server, account, name, text(10))).name).toBe('paypal.txt');
    }
    expect((await uploaded(server, account, '\u200D\u200C', text(10))).name).toBe('file');
    // The joiners are part of words and emoji: kept.
    for (const name of ['گزارش\u200Cها.txt', '👨\u200D👩\u200D👧.txt']) {
      expect((await uploaded(server, account, name, text(10))).name).toBe(name);
    }
  });

  it('answers HEAD with the headers only', async () => {
    const account = await registerAccount(server.app);
    const file = await uploaded(server, account, 'head.txt', text(5_000));
    const head = await fetch(`${server.url}/api/files/${file.id}/content`, {
      method: 'HEAD',
      headers: bearer(account),
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('5000');
    expect(head.headers.get('etag')).toBe(`"${file.sha256}"`);
    expect(await head.text()).toBe('');
  });

  it('answers an error without the file’s ETag, name, range or caching (bytes gone from the store)', async () => {
    const account = await registerAccount(server.app);
    const file = await uploaded(server, account, 'gone.txt', text(100));
    await server.services.storage.delete(await storageKeyOf(server, file.id));
    for (const headers of [{}, { range: 'bytes=0-9' }] as Record<string, string>[]) {
      const response = await content(server, file.id, account, headers);
      expect(response.status).toBe(404);
      expect(((await response.json()) as { appCode: string }).appCode).toBe('NOT_FOUND');
      for (const name of ['etag', 'content-disposition', 'content-range', 'accept-ranges']) {
        expect(response.headers.get(name), name).toBeNull();
      }
      expect(response.headers.get('cache-control')).toBe('no-store');
    }
    // A HEAD says what a GET would: not the headers of bytes it cannot send.
    const head = await fetch(`${server.url}/api/files/${file.id}/content`, {
      method: 'HEAD',
      headers: bearer(account),
    });
    expect(head.status).toBe(404);
    expect(head.headers.get('etag')).toBeNull();
    expect(head.headers.get('content-disposition')).toBeNull();
    expect(head.headers.get('content-length')).not.toBe('100');
  });

  it('keeps concurrent uploads within the quota', async () => {
    const account = await registerAccount(server.app);
    // Three uploads of 900 KiB at once against a 2 MiB quota: two fit, the third does not.
    const results = await Promise.all([1, 2, 3].map((n) => upload(server, account, `part-${n}.txt`, text(900 * KiB))));
    const stored = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status !== 201);
    expect(stored).toHaveLength(2);
    expect(refused.map((r) => r.body.appCode)).toEqual(refused.map(() => 'QUOTA_EXCEEDED'));
    expect((await rowsOf(server, account.id)).length).toBe(stored.length);
  });
});

describe('upload requests (local storage)', () => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer();
  });
  afterAll(() => server?.close());

  it('needs a token, multipart and the field `file`', async () => {
    expect((await upload(server, undefined, 'a.txt', Buffer.from('a'))).status).toBe(401);
    const account = await registerAccount(server.app);
    const json = await fetch(`${server.url}/api/files`, {
      method: 'POST',
      headers: { ...bearer(account), 'content-type': 'application/json' },
      body: '{}',
    });
    expect([json.status, ((await json.json()) as { appCode: string }).appCode]).toEqual([
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ]);
    const wrongField = await upload(server, account, 'a.txt', Buffer.from('a'), {
      disposition: 'form-data; name="attachment"; filename="a.txt"',
    });
    expect([wrongField.status, wrongField.body.appCode]).toEqual([400, 'BAD_REQUEST']);
    // Multipart without its boundary, with one longer than RFC 2046's 70 characters (plain or
    // quoted), and a body cut off before the part ends: 400, never a 500.
    const long = 'b'.repeat(300);
    for (const [contentType, body] of [
      ['multipart/form-data', 'no boundary'],
      [`multipart/form-data; boundary=${long}`, `--${long}\r\n`],
      [`multipart/form-data; boundary="${'q'.repeat(71)}"`, 'x'],
      // Spaces busboy drops around the value: past the length check, refused by busboy itself.
      [`multipart/form-data; boundary = ${long}`, `--${long}\r\n`],
      [MULTIPART, `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nabc`],
      // Cut off as large: the upload is reading the part when the body ends.
      [MULTIPART, Buffer.concat([partHead('big.txt'), text(MiB)])],
    ] as const) {
      const broken = await fetch(`${server.url}/api/files`, {
        method: 'POST',
        headers: { ...bearer(account), 'content-type': contentType },
        body,
      });
      expect(broken.status, contentType).toBe(400);
      expect(((await broken.json()) as { appCode: string }).appCode, contentType).toBe('BAD_REQUEST');
    }
    // Twelve fields before the file, over the parser's limits (10 fields, 12 parts): 413 PAYLOAD_TOO_LARGE, as documented.
    const fields = Array.from(
      { length: 12 },
      (_, i) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="field${i}"\r\n\r\nv\r\n`,
    ).join('');
    const crowded = await fetch(`${server.url}/api/files`, {
      method: 'POST',
      headers: { ...bearer(account), 'content-type': MULTIPART },
      body: Buffer.concat([Buffer.from(fields), multipart('a.txt', Buffer.from('a'))]),
    });
    expect([crowded.status, ((await crowded.json()) as { appCode: string }).appCode]).toEqual([
      413,
      'PAYLOAD_TOO_LARGE',
    ]);
    expect(await rowsOf(server, account.id)).toEqual([]);
  });

  it('keeps nothing of an upload aborted mid-stream', async () => {
    const account = await registerAccount(server.app);
    const dir = server.dir as string;
    expect(await objectKeys(server)).toEqual([]);
    const head = partHead('aborted.txt', { type: 'text/plain' });
    const request = http.request(`${server.url}/api/files`, {
      method: 'POST',
      headers: {
        ...bearer(account),
        'content-type': MULTIPART,
        'content-length': String(head.length + 20 * MiB + PART_TAIL.length),
      },
    });
    request.on('error', () => {}); // the socket is destroyed on purpose
    takeUncaught();
    request.write(head);
    request.write(text(2 * MiB));
    // The server is writing the object when the client goes away.
    expect(await eventually(async () => (await filesUnder(dir)).length > 0)).toBe(true);
    request.destroy();

    const clean = async () =>
      (await objectKeys(server)).length === 0 &&
      (await filesUnder(dir)).length === 0 &&
      (await rowsOf(server, account.id)).length === 0;
    const cleaned = await eventually(clean);
    expect.soft(takeUncaught(), NOTHING_UNCAUGHT).toEqual([]);
    expect(cleaned, `left behind: ${(await filesUnder(dir)).join(', ')}`).toBe(true);
    await sleep(300);
    expect(await clean(), 'still clean a moment later').toBe(true);
    // The server still answers.
    expect((await upload(server, account, 'after.txt', Buffer.from('ok'))).status).toBe(201);
  });

  it('refuses a file name with line breaks (the multipart parser drops the part)', async () => {
    const account = await registerAccount(server.app);
    const before = await objectKeys(server);
    const { status } = await upload(server, account, 'ignored', Buffer.from('x'), {
      disposition: `form-data; name="file"; filename*=UTF-8''line%0D%0AInjected%3A%201.txt`,
    });
    expect(status).toBe(400);
    expect(await rowsOf(server, account.id)).toEqual([]);
    expect(await objectKeys(server)).toEqual(before);
  });

  it('names the file safely in Content-Disposition, whatever its name', async () => {
    const account = await registerAccount(server.app);
    const names: [sent: string, stored: string][] = [
      ['a"b.txt', 'a"b.txt'],
      ['../../etc/passwd', 'passwd'],
      ['名前.txt', '名前.txt'],
      ['Überprüfung 📄.txt', 'Überprüfung 📄.txt'],
      ['tab\there\u001b[31m red\u007f.txt', 'tabhere[31m red.txt'],
      ["100% (draft) it's *.txt; filename=evil.exe", "100% (draft) it's *.txt; filename=evil.exe"],
    ];
    for (const [sent, stored] of names) {
      const file = await uploaded(server, account, sent, Buffer.from('some text\n'));
      expect(file.name, JSON.stringify(sent)).toBe(stored);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: what must not be stored
      expect(file.name).not.toMatch(/[\u0000-\u001f\u007f/\\]/);
      const response = await content(server, file.id, account);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      const disposition = response.headers.get('content-disposition') ?? '';
      expect(disposition).not.toMatch(/[\r\n]/);
      const match = /^attachment; filename="([\x20-\x7e]*)"; filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]+)$/.exec(
        disposition,
      );
      expect(match, disposition).not.toBeNull();
      const [, ascii, encoded] = match as unknown as [string, string, string];
      expect(ascii).not.toMatch(/["\\]/);
      // Downloaded under a name that opens as what it is (text: `.txt`).
      expect(decodeURIComponent(encoded)).toBe(stored.endsWith('.txt') ? stored : `${stored}.txt`);
    }
  });

  it('has no direct uploads: 400 DIRECT_UPLOADS_UNAVAILABLE', async () => {
    const account = await registerAccount(server.app);
    const response = await call(server, account, 'POST', '/api/files/uploads', {
      name: 'a.png',
      contentType: 'image/png',
      size: 10,
    });
    expect(response.json().appCode).toBe('DIRECT_UPLOADS_UNAVAILABLE');
    expect(await rowsOf(server, account.id)).toEqual([]);
  });
});

describe('a 200 MB upload (local storage)', () => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer({ env: { FILES_MAX_BYTES: String(300 * MiB) } });
  });
  afterAll(() => server?.close());

  it('streams to storage without holding the file in memory', { timeout: 180_000 }, async () => {
    const account = await registerAccount(server.app);
    const send = (name: string, size: number) => streamUpload({ url: `${server.url}/api/files`, account, name, size });
    // A first upload brings the process's allocators to their working size: what the big
    // one adds on top is what it holds.
    expect((await send('warm-up.txt', 32 * MiB)).status).toBe(201);

    const size = 200 * MiB;
    const baseline = process.memoryUsage.rss();
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 20);
    const sent = await send('big.txt', size).finally(() => clearInterval(sampler));
    const growth = (peak - baseline) / MiB;
    console.log(
      `200 MB upload: RSS ${(baseline / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB, ` +
        `growth ${growth.toFixed(1)} MiB`,
    );
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    expect(sent.generated).toBe(size);
    expect(sent.body).toMatchObject({ name: 'big.txt', contentType: 'text/plain', size, sha256: sent.sha256 });
    expect((await server.services.storage.head(await storageKeyOf(server, sent.body.id)))?.size).toBe(size);
    expect(growth).toBeLessThan(128);
  });
});

describe('listing and permissions (local storage)', () => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer();
  });
  afterAll(() => server?.close());

  it('lists only the caller’s files, newest first, page by page', async () => {
    const owner = await registerAccount(server.app);
    const other = await registerAccount(server.app);
    const made: FileDto[] = [];
    for (let i = 0; i < 5; i++) made.push(await uploaded(server, owner, `file-${i}.txt`, Buffer.from(`file ${i}\n`)));
    await uploaded(server, other, 'not-yours.txt', Buffer.from('other\n'));

    const seen: FileDto[] = [];
    const pages: number[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/files?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await call(server, owner, 'GET', url)).json() as { items: FileDto[]; nextCursor: string | null };
      seen.push(...page.items);
      pages.push(page.items.length);
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).toEqual([2, 2, 1]);
    expect(seen).toEqual([...made].reverse());
  });

  it('lets files:read-any read (not delete) and files:delete-any delete anyone’s file', async () => {
    const owner = await registerAccount(server.app);
    const reader = await registerAccount(server.app);
    const deleter = await registerAccount(server.app);
    await grantPermission(server, reader.id, 'files:read-any');
    await grantPermission(server, deleter.id, 'files:delete-any');
    const bytes = Buffer.from('private\n');
    const file = await uploaded(server, owner, 'private.txt', bytes);
    const key = await storageKeyOf(server, file.id);

    expect((await call(server, reader, 'GET', `/api/files/${file.id}`)).json()).toEqual(file);
    const read = await content(server, file.id, reader);
    expect(read.status).toBe(200);
    expect(Buffer.from(await read.arrayBuffer())).toEqual(bytes);
    expect((await call(server, reader, 'DELETE', `/api/files/${file.id}`)).statusCode).toBe(404);
    expect((await call(server, reader, 'GET', '/api/files')).json().items).toEqual([]);

    expect((await call(server, deleter, 'GET', `/api/files/${file.id}`)).statusCode).toBe(404);
    expect((await content(server, file.id, deleter)).status).toBe(404);
    expect((await call(server, deleter, 'DELETE', `/api/files/${file.id}`)).statusCode).toBe(200);
    await removalsRun(server);
    expect(await server.services.storage.head(key)).toBeUndefined();
    expect((await call(server, owner, 'GET', `/api/files/${file.id}`)).statusCode).toBe(404);
  });

  it('lets one of two concurrent deletes win', async () => {
    const owner = await registerAccount(server.app);
    const file = await uploaded(server, owner, 'twice.txt', Buffer.from('twice\n'));
    const key = await storageKeyOf(server, file.id);
    const answers = await Promise.all([
      call(server, owner, 'DELETE', `/api/files/${file.id}`),
      call(server, owner, 'DELETE', `/api/files/${file.id}`),
    ]);
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 404]);
    expect(await removalJobsOf(server, key)).toHaveLength(1);
    await removalsRun(server);
    expect(await server.services.storage.head(key)).toBeUndefined();
    expect(await rowsOf(server, owner.id)).toEqual([]);
  });

  it('answers 404 for an unknown or malformed id', async () => {
    const owner = await registerAccount(server.app);
    expect((await call(server, owner, 'GET', `/api/files/${SOME_ID}`)).json().appCode).toBe('NOT_FOUND');
    expect((await call(server, owner, 'DELETE', `/api/files/${SOME_ID}`)).json().appCode).toBe('NOT_FOUND');
    expect((await content(server, SOME_ID, owner)).status).toBe(404);
    expect((await content(server, 'not-a-uuid', owner)).status).toBe(404);
  });
});

describe('profile pictures', () => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer();
  });
  afterAll(() => server?.close());

  it('makes the chosen image public until it is removed', async () => {
    const alice = await registerAccount(server.app);
    const bob = await registerAccount(server.app);
    const image = await uploaded(server, alice, 'me.png', png(3, 3));

    const set = await call(server, alice, 'PUT', '/api/users/me/avatar', { fileId: image.id });
    expect(set.statusCode).toBe(200);
    const avatarUrl = set.json().avatarUrl as string;
    expect(URL.canParse(avatarUrl)).toBe(true);
    expect(avatarUrl).toMatch(new RegExp(`^https?://[^/]+/api/files/${image.id}/content$`));
    expect((await call(server, alice, 'GET', '/api/users/me')).json().avatarUrl).toBe(avatarUrl);

    const anonymous = await fetch(`${server.url}${new URL(avatarUrl).pathname}`);
    expect(anonymous.status).toBe(200);
    expect(anonymous.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await anonymous.arrayBuffer())).toEqual(png(3, 3));
    expect((await content(server, image.id, bob)).status).toBe(200);
    // Still private metadata: the procedures show it to its owner only.
    expect((await call(server, bob, 'GET', `/api/files/${image.id}`)).statusCode).toBe(404);

    const removed = await call(server, alice, 'DELETE', '/api/users/me/avatar');
    expect(removed.json().avatarUrl).toBeNull();
    expect((await content(server, image.id)).status).toBe(404);
    expect((await content(server, image.id, bob)).status).toBe(404);
    expect((await content(server, image.id, alice)).status).toBe(200);
  });

  it('takes each image format it names (PNG, JPEG, GIF, WebP, AVIF) under the default FILES_ALLOWED_TYPES', async () => {
    const alice = await registerAccount(server.app);
    const pad = (start: number[] | string) => Buffer.concat([Buffer.from(start as never), Buffer.alloc(64)]);
    const images = {
      'image/png': png(),
      'image/jpeg': pad([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, ...Buffer.from('JFIF\0')]),
      'image/gif': pad('GIF89a'),
      'image/webp': Buffer.concat([Buffer.from('RIFF'), Buffer.from([56, 0, 0, 0]), pad('WEBPVP8 ')]),
      // An ISO media file whose major brand is AVIF's.
      'image/avif': pad([0, 0, 0, 0x1c, ...Buffer.from('ftypavif'), 0, 0, 0, 0, ...Buffer.from('avifmif1miaf')]),
    };
    for (const [type, bytes] of Object.entries(images)) {
      const image = await uploaded(server, alice, 'me', bytes);
      expect(image.contentType, type).toBe(type);
      const set = await call(server, alice, 'PUT', '/api/users/me/avatar', { fileId: image.id });
      expect(set.statusCode, type).toBe(200);
      const picture = await fetch(`${server.url}${new URL(set.json().avatarUrl as string).pathname}`);
      expect(picture.headers.get('content-type'), type).toBe(type);
      expect(Buffer.from(await picture.arrayBuffer()), type).toEqual(bytes);
    }
  });

  it('refuses a file that is not one of your images: 400 NOT_AN_IMAGE', async () => {
    const alice = await registerAccount(server.app);
    const bob = await registerAccount(server.app);
    const notes = await uploaded(server, alice, 'notes.txt', Buffer.from('not an image\n'));
    const bobsImage = await uploaded(server, bob, 'bob.png', png());
    for (const fileId of [notes.id, bobsImage.id, SOME_ID]) {
      const response = await call(server, alice, 'PUT', '/api/users/me/avatar', { fileId });
      expect([response.statusCode, response.json().appCode]).toEqual([400, 'NOT_AN_IMAGE']);
    }
    expect((await call(server, alice, 'GET', '/api/users/me')).json().avatarUrl).toBeNull();
    expect((await content(server, bobsImage.id)).status).toBe(404);
  });

  it('lets a page of another origin show the picture (no same-origin resource policy), and caches keep it a while', async () => {
    const alice = await registerAccount(server.app);
    const image = await uploaded(server, alice, 'me.png', png());
    await call(server, alice, 'PUT', '/api/users/me/avatar', { fileId: image.id });
    const response = await content(server, image.id);
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    // An <img> on the front end's origin is a no-cors request: CORP same-origin blocks it.
    expect(response.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    // A private file keeps the default: same-origin; and is asked for again every time.
    const note = await uploaded(server, alice, 'private.txt', text(100));
    const own = await content(server, note.id, alice);
    await own.arrayBuffer();
    expect(own.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(own.headers.get('cache-control')).toBe('private, no-cache');
  });

  it('takes only raster images every browser shows', async () => {
    const alice = await registerAccount(server.app);
    // An ICO sniffs as an image, but is not one of the picture types.
    const ico = Buffer.concat([Buffer.from([0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0]), Buffer.alloc(200, 0)]);
    const { status, body } = await upload(server, alice, 'icon.ico', ico);
    if (status === 201) {
      const refused = await call(server, alice, 'PUT', '/api/users/me/avatar', { fileId: body.id });
      expect(refused.json().appCode).toBe('NOT_AN_IMAGE');
    } else {
      expect(body.appCode).toBe('UNSUPPORTED_FILE_TYPE');
    }
  });
});

describe('deleting an account', () => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer();
  });
  afterAll(() => server?.close());

  const withFiles = async () => {
    const account = await registerAccount(server.app);
    const image = await uploaded(server, account, 'me.png', png());
    await uploaded(server, account, 'notes.txt', Buffer.from('notes\n'));
    await call(server, account, 'PUT', '/api/users/me/avatar', { fileId: image.id });
    const keys = (await rowsOf(server, account.id)).map((row) => row.storage_key);
    expect(keys).toHaveLength(2);
    return { account, keys };
  };
  const gone = async (keys: string[]) => {
    await removalsRun(server);
    return (await Promise.all(keys.map((key) => server.services.storage.head(key)))).every(
      (info) => info === undefined,
    );
  };

  it('by an admin removes the user’s file rows and objects', async () => {
    const admin = await registerAdmin(server.app, server.services.db);
    const { account, keys } = await withFiles();
    expect((await call(server, admin, 'DELETE', `/api/users/${account.id}`)).statusCode).toBe(200);
    expect(await rowsOf(server, account.id)).toEqual([]);
    expect(await gone(keys)).toBe(true);
  });

  it('by the user removes their file rows and objects', async () => {
    const { account, keys } = await withFiles();
    const others = await registerAccount(server.app);
    const kept = await uploaded(server, others, 'kept.txt', Buffer.from('kept\n'));
    const deleted = await call(server, account, 'DELETE', '/api/users/me', { password: account.password });
    expect(deleted.statusCode).toBe(200);
    expect(await rowsOf(server, account.id)).toEqual([]);
    expect(await gone(keys)).toBe(true);
    expect(await server.services.storage.head(await storageKeyOf(server, kept.id))).toBeDefined();
  });
});

describe('the sweep', () => {
  let clock: FakeClock;
  let server: FilesServer;
  beforeAll(async () => {
    clock = fakeClock();
    server = await startFilesServer({ clock });
  });
  afterAll(() => server?.close());

  it('removes an object no row names once it is older than the grace period', async () => {
    const account = await registerAccount(server.app);
    const file = await uploaded(server, account, 'kept.txt', Buffer.from('kept\n'));
    const kept = await storageKeyOf(server, file.id);
    const orphan = `files/${randomUUID()}`;
    await server.services.storage.put(orphan, Readable.from([Buffer.from('left by a crash')]), {
      contentType: 'text/plain',
    });

    expect(await sweepFiles(server.services)).toEqual({ expiredUploads: 0, orphanObjects: 0 });
    clock.advance(59 * 60_000);
    expect(await sweepFiles(server.services)).toEqual({ expiredUploads: 0, orphanObjects: 0 });
    expect(await objectKeys(server)).toEqual([kept, orphan].sort());

    clock.advance(2 * 60_000);
    expect(await sweepFiles(server.services)).toEqual({ expiredUploads: 0, orphanObjects: 1 });
    expect(await objectKeys(server)).toEqual([kept]);
    expect(await filesUnder(server.dir as string)).toHaveLength(1);
  });

  it('stops between objects once its job is stopped (it expired, or the worker is stopping)', async () => {
    const orphans = [`files/${randomUUID()}`, `uploads/${randomUUID()}`];
    for (const key of orphans) {
      await server.services.storage.put(key, Readable.from([Buffer.from('left by a crash')]), {
        contentType: 'text/plain',
      });
    }
    clock.advance(61 * 60_000);
    const stopped = new AbortController();
    stopped.abort(new Error('the job expired'));
    await expect(sweepFiles(server.services, stopped.signal)).rejects.toThrow('the job expired');
    for (const key of orphans) expect(await server.services.storage.head(key), key).toBeDefined();
    expect(await sweepFiles(server.services)).toMatchObject({ orphanObjects: 2 });
    for (const key of orphans) expect(await server.services.storage.head(key), key).toBeUndefined();
  });

  it('walks the whole store from its first key while the key-value store (where a walk goes on) is away', async () => {
    const orphan = `uploads/${randomUUID()}`;
    await server.services.storage.put(orphan, Readable.from([Buffer.from('left by a crash')]), {
      contentType: 'text/plain',
    });
    clock.advance(61 * 60_000);
    const { kv } = server.services;
    const own = { get: kv.get, set: kv.set, delete: kv.delete };
    const away = () => Promise.reject(new DependencyUnavailableError('redis', 'Redis is away'));
    Object.assign(kv, { get: away, set: away, delete: away });
    try {
      expect(await sweepFiles(server.services)).toMatchObject({ orphanObjects: 1 });
    } finally {
      Object.assign(kv, own);
    }
    expect(await server.services.storage.head(orphan)).toBeUndefined();
  });

  it('walks uploads/ first, and a store too large for one run over several, each going on where the last stopped', async () => {
    const { storage } = server.services;
    const dir = server.dir as string;
    // Left in uploads/ long ago; and in files/, 1,200 objects the sweep keeps (too young to go).
    const orphans = Array.from({ length: 3 }, () => `uploads/${randomUUID()}`);
    const young = Array.from({ length: 1_200 }, () => `files/${randomUUID()}`);
    await mkdir(path.join(dir, 'uploads'), { recursive: true });
    await mkdir(path.join(dir, 'files'), { recursive: true });
    const writeAt = async (key: string, at: number) => {
      await writeFile(path.join(dir, key), key);
      await utimes(path.join(dir, key), at / 1000, at / 1000);
    };
    for (const key of orphans) await writeAt(key, clock.now() - 2 * 60 * 60_000);
    for (const key of young) await writeAt(key, clock.now());
    const everyKey = async () => (await readdir(path.join(dir, 'files'))).map((name) => `files/${name}`).sort();

    // Each walk of files/ the sweep makes, with where it began and what it was given.
    const walks: { after: string | undefined; keys: string[] }[] = [];
    let stopAfter = Number.POSITIVE_INFINITY;
    const stopped = new AbortController();
    const list = storage.list.bind(storage);
    storage.list = (prefix, options) => {
      if (prefix !== 'files/') return list(prefix, options);
      const walk = { after: options?.after, keys: [] as string[] };
      walks.push(walk);
      return (async function* () {
        for await (const object of list(prefix, options)) {
          walk.keys.push(object.key);
          if (walk.keys.length === stopAfter) stopped.abort(new Error('the job expired'));
          yield object;
        }
      })();
    };
    try {
      // The first run stops (its job expired) at the 1,100th object of files/: uploads/ was walked before.
      stopAfter = 1_100;
      await expect(sweepFiles(server.services, stopped.signal)).rejects.toThrow('the job expired');
      for (const key of orphans) expect(await storage.head(key), key).toBeUndefined();
      expect(walks).toHaveLength(1);
      const [first] = walks as [(typeof walks)[number]];
      expect(first.after).toBeUndefined();

      // The next goes on after the last key the first one dealt with (its 1,000th), and to the end.
      stopAfter = Number.POSITIVE_INFINITY;
      expect(await sweepFiles(server.services)).toMatchObject({ orphanObjects: 0 });
      const [, second] = walks as [unknown, (typeof walks)[number]];
      expect(second.after).toBe(first.keys[999]);
      expect(second.keys).toEqual((await everyKey()).filter((key) => key > (second.after as string)));
      // Having reached the end, the one after starts from the first key again.
      await sweepFiles(server.services);
      expect(walks).toHaveLength(3);
      expect(walks[2]?.after).toBeUndefined();
      expect(walks[2]?.keys).toEqual(await everyKey());
    } finally {
      storage.list = list;
      for (const key of young) await storage.delete(key);
    }
  });
});

// ---------------------------------------------------------------------------------------
// S3: direct uploads and download redirects
// ---------------------------------------------------------------------------------------

describe('direct uploads (S3)', () => {
  let clock: FakeClock;
  let server: FilesServer;
  beforeAll(async () => {
    clock = fakeClock();
    server = await startFilesServer({
      driver: 's3',
      clock,
      env: { FILES_MAX_BYTES: String(MiB), FILES_QUOTA_BYTES: String(3 * MiB) },
    });
  });
  afterAll(() => server?.close());

  interface Upload {
    id: string;
    url: string;
    method: 'PUT';
    headers: Record<string, string>;
    expiresAt: string;
  }
  const start = async (account: Account, input: { name: string; contentType: string; size: number }) => {
    const response = await call(server, account, 'POST', '/api/files/uploads', input);
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as Upload;
  };
  const put = async (created: Upload, bytes: Uint8Array) => {
    const response = await fetch(created.url, { method: created.method, headers: created.headers, body: bytes });
    expect(response.status, await response.text()).toBe(200);
  };
  const complete = (account: Account, id: string) =>
    call(server, account, 'POST', `/api/files/uploads/${id}/complete`, {});
  type Copy = ObjectStorage['copy'];
  /** Runs `body` with the store's copies going through `copy` (given the store's own). */
  const whileCopying = async <T>(
    copy: (own: Copy, ...args: Parameters<Copy>) => ReturnType<Copy>,
    body: () => Promise<T>,
  ): Promise<T> => {
    const { storage } = server.services;
    const own = storage.copy.bind(storage);
    storage.copy = (from, to, options) => copy(own, from, to, options);
    try {
      return await body();
    } finally {
      storage.copy = own;
    }
  };
  type Get = ObjectStorage['get'];
  /** Completes with the store's reads going through `get` (given the store's own). */
  const completeReading = async (
    account: Account,
    id: string,
    get: (read: Get, ...args: Parameters<Get>) => ReturnType<Get>,
  ) => {
    const { storage } = server.services;
    const read = storage.get.bind(storage);
    storage.get = (key, range) => get(read, key, range);
    try {
      return await complete(account, id);
    } finally {
      storage.get = read;
    }
  };

  const listOf = async (account: Account) =>
    (await call(server, account, 'GET', '/api/files')).json() as { items: FileDto[] };

  it('PUTs the bytes to the store, then completes: the file is listed and downloads', async () => {
    const account = await registerAccount(server.app);
    const image = png(4, 4);
    const created = await start(account, { name: 'direct.png', contentType: 'image/png', size: image.length });
    expect(created).toMatchObject({ method: 'PUT', headers: { 'content-type': 'image/png' } });
    expect(Date.parse(created.expiresAt)).toBe(clock.now() + 15 * 60_000);
    expect((await call(server, account, 'GET', '/api/files')).json().items).toEqual([]);

    await put(created, image);
    const uploadedKey = await storageKeyOf(server, created.id);
    const completed = await complete(account, created.id);
    expect(completed.statusCode, completed.body).toBe(200);
    const file = completed.json() as FileDto;
    expect(file).toMatchObject({
      id: created.id,
      name: 'direct.png',
      contentType: 'image/png',
      size: image.length,
      sha256: sha256(image),
    });
    expect((await call(server, account, 'GET', '/api/files')).json().items).toEqual([file]);
    const download = await content(server, file.id, account);
    expect(download.headers.get('etag')).toBe(`"${sha256(image)}"`);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(image);
    // Completing again answers the same file.
    expect((await complete(account, created.id)).json()).toEqual(file);
    // The row names a copy: the uploaded object is removed by the job queued with that change.
    expect(await removalJobsOf(server, uploadedKey)).toHaveLength(1);
    await removalsRun(server);
    expect(await server.services.storage.head(uploadedKey)).toBeUndefined();
    expect(await server.services.storage.head(await storageKeyOf(server, file.id))).toBeDefined();
  });

  it('keeps a file whose text turns binary past its head, declared binary, where binary files are accepted', async () => {
    const allowing = await startFilesServer({
      driver: 's3',
      env: { FILES_ALLOWED_TYPES: 'text/plain,application/octet-stream' },
    });
    try {
      const account = await registerAccount(allowing.app);
      const hidden = Buffer.concat([text(64 * KiB), zip()]);
      const directly = async (contentType: string) => {
        const started = await call(allowing, account, 'POST', '/api/files/uploads', {
          name: 'readme.txt',
          contentType,
          size: hidden.length,
        });
        expect(started.statusCode, started.body).toBe(200);
        const created = started.json() as Upload;
        const response = await fetch(created.url, { method: created.method, headers: created.headers, body: hidden });
        expect(response.status).toBe(200);
        return call(allowing, account, 'POST', `/api/files/uploads/${created.id}/complete`, {});
      };
      // Before: refused as text/plain (its head), so no declared type was taken.
      const binary = await directly('application/octet-stream');
      expect(binary.statusCode, binary.body).toBe(200);
      expect(binary.json()).toMatchObject({ contentType: 'application/octet-stream', size: hidden.length });
      // Declared text, it is not.
      const declaredText = await directly('text/plain');
      expect([declaredText.statusCode, declaredText.json().details]).toEqual([400, { reason: 'type' }]);
    } finally {
      await allowing.close();
    }
  });

  it('keeps a completed file as checked, whatever is PUT to its URL afterwards', async () => {
    const account = await registerAccount(server.app);
    const image = png(3, 3);
    const created = await start(account, { name: 'fixed.png', contentType: 'image/png', size: image.length });
    await put(created, image);
    const file = (await complete(account, created.id)).json() as FileDto;
    // The same URL again (same size and type signed in), with other bytes.
    const other = Buffer.alloc(image.length, 0x41);
    await put(created, other);
    const download = await content(server, file.id, account);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(image);
    expect(sha256(image)).toBe(file.sha256);
  });

  it('keeps the bytes it checked when other bytes are PUT to the URL while it checks them', async () => {
    const account = await registerAccount(server.app);
    const image = png(5, 5);
    const created = await start(account, { name: 'raced.png', contentType: 'image/png', size: image.length });
    await put(created, image);
    // Other bytes of the signed size and type arrive at the URL just as the check reads the upload.
    const completed = await completeReading(account, created.id, async (read, key, range) => {
      const body = await read(key, range);
      await put(created, Buffer.alloc(image.length, 0x41));
      return body;
    });
    expect(completed.statusCode, completed.body).toBe(200);
    const file = completed.json() as FileDto;
    const download = await content(server, file.id, account);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(image);
    expect(file.sha256).toBe(sha256(image));
  });

  it('answers 503 when the store fails while the upload is read back, and the upload can be completed later', async () => {
    const account = await registerAccount(server.app);
    const image = png(6, 6);
    const created = await start(account, { name: 'cut.png', contentType: 'image/png', size: image.length });
    await put(created, image);
    const failed = await completeReading(
      account,
      created.id,
      async () =>
        new Readable({
          read() {
            this.push(image.subarray(0, 8));
            this.destroy(Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }));
          },
        }),
    );
    expect(failed.statusCode, failed.body).toBe(503);
    expect(failed.json()).toMatchObject({ appCode: 'DEPENDENCY_DOWN', details: { dependency: 'storage' } });
    const completed = await complete(account, created.id);
    expect(completed.statusCode, completed.body).toBe(200);
    expect(completed.json()).toMatchObject({ sha256: sha256(image) });
  });

  it('answers an upload whose object went between its check and its copy as not uploaded (400 missing), not as an outage', async () => {
    const account = await registerAccount(server.app);
    const image = png();
    const created = await start(account, { name: 'gone.png', contentType: 'image/png', size: image.length });
    await put(created, image);
    // Swept, or removed by a cancellation's job, just after the completion saw it.
    const response = await whileCopying(
      async (copy, from, to, options) => {
        await server.services.storage.delete(from);
        return copy(from, to, options);
      },
      () => complete(account, created.id),
    );
    expect([response.statusCode, response.json().appCode, response.json().details?.reason]).toEqual([
      400,
      'UPLOAD_REJECTED',
      'missing',
    ]);
    // Still pending: a PUT that lands now can be completed.
    await put(created, image);
    expect((await complete(account, created.id)).statusCode).toBe(200);
  });

  it('rejects an upload of another size or type, removing the object (its URL stays counted, hidden)', async () => {
    const account = await registerAccount(server.app);
    const image = png();
    const rejected = async (created: Upload, reason: string) => {
      const key = await storageKeyOf(server, created.id);
      const response = await complete(account, created.id);
      expect([response.statusCode, response.json().appCode, response.json().details?.reason]).toEqual([
        400,
        'UPLOAD_REJECTED',
        reason,
      ]);
      expect((await rowsOf(server, account.id)).find((row) => row.id === created.id)?.status).toBe('spent');
      expect((await listOf(account)).items).toEqual([]);
      await removalsRun(server);
      expect(await server.services.storage.head(key)).toBeUndefined();
      expect((await complete(account, created.id)).json().appCode).toBe('NOT_FOUND');
    };

    // s3rver does not check presigned signatures, so it stores what real S3 would refuse.
    const wrongSize = await start(account, { name: 'a.png', contentType: 'image/png', size: image.length });
    await put(wrongSize, Buffer.concat([image, Buffer.from('extra')]));
    await rejected(wrongSize, 'size');

    const textBytes = Buffer.from('I am not a PNG at all, only text pretending.\n');
    const wrongType = await start(account, { name: 'b.png', contentType: 'image/png', size: textBytes.length });
    await put(wrongType, textBytes);
    await rejected(wrongType, 'type');
  });

  it('keeps an upload whose bytes have not arrived yet: completed once they have, swept an hour after its URL expires', async () => {
    const account = await registerAccount(server.app);
    const image = png();
    const early = await start(account, { name: 'early.png', contentType: 'image/png', size: image.length });
    const tooEarly = await complete(account, early.id);
    expect([tooEarly.statusCode, tooEarly.json().appCode, tooEarly.json().details?.reason]).toEqual([
      400,
      'UPLOAD_REJECTED',
      'missing',
    ]);
    // The PUT lands (it started before the URL expired), then the completion goes through.
    await put(early, image);
    const completed = await complete(account, early.id);
    expect(completed.statusCode, completed.body).toBe(200);
    expect(completed.json()).toMatchObject({ name: 'early.png', sha256: sha256(image) });

    // Never uploaded: the row outlives its URL by COMPLETION_GRACE_MS, then the sweep takes it.
    const abandoned = await start(account, { name: 'never.png', contentType: 'image/png', size: image.length });
    const row = await server.services.db
      .selectFrom('files')
      .select('expires_at')
      .where('id', '=', abandoned.id)
      .executeTakeFirstOrThrow();
    expect(row.expires_at?.getTime()).toBe(Date.parse(abandoned.expiresAt) + COMPLETION_GRACE_MS);
  });

  it('refuses what it would not accept, before any URL', async () => {
    const account = await registerAccount(server.app);
    const code = async (input: object) =>
      (await call(server, account, 'POST', '/api/files/uploads', input)).json().appCode as string;
    expect(await code({ name: 'a.zip', contentType: 'application/zip', size: 10 })).toBe('UNSUPPORTED_FILE_TYPE');
    expect(await code({ name: 'a.png', contentType: 'image/png', size: MiB + 1 })).toBe('FILE_TOO_LARGE');
    for (let i = 0; i < 3; i++) await start(account, { name: `p${i}.png`, contentType: 'image/png', size: MiB });
    expect(await code({ name: 'p.png', contentType: 'image/png', size: 1 })).toBe('QUOTA_EXCEEDED');
    expect(await rowsOf(server, account.id)).toHaveLength(3);

    const stranger = await registerAccount(server.app);
    const [pending] = await rowsOf(server, account.id);
    expect((await complete(stranger, pending?.id as string)).json().appCode).toBe('NOT_FOUND');
    expect((await complete(stranger, SOME_ID)).json().appCode).toBe('NOT_FOUND');
  });

  it('stores a name without control characters, and downloads it under a safe Content-Disposition', async () => {
    const account = await registerAccount(server.app);
    const bytes = Buffer.from('direct text\n');
    const created = await start(account, {
      name: 'line\r\nInjected: 1.txt',
      contentType: 'text/plain',
      size: bytes.length,
    });
    await put(created, bytes);
    const file = (await complete(account, created.id)).json() as FileDto;
    expect(file.name).toBe('lineInjected: 1.txt');
    const response = await content(server, file.id, account);
    await response.arrayBuffer();
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="lineInjected: 1.txt"; filename*=UTF-8''lineInjected%3A%201.txt`,
    );
  });

  it('cancels an upload its owner deletes before completing it: the object goes, its size stays counted while the URL lives', async () => {
    const account = await registerAccount(server.app);
    const image = png();
    // The quota is 3 MiB: three pending uploads of 1 MiB hold all of it.
    const pending = [];
    for (let i = 0; i < 3; i++)
      pending.push(await start(account, { name: `p${i}.png`, contentType: 'image/png', size: MiB }));
    const [first] = pending as [Upload];
    await put(first, image);
    const key = await storageKeyOf(server, first.id);
    // Someone else's pending upload is nobody's to cancel but its owner's.
    expect((await call(server, await registerAccount(server.app), 'DELETE', `/api/files/${first.id}`)).statusCode).toBe(
      404,
    );
    expect((await call(server, account, 'DELETE', `/api/files/${first.id}`)).statusCode).toBe(200);
    expect((await complete(account, first.id)).json().appCode).toBe('NOT_FOUND');
    await removalsRun(server);
    expect(await server.services.storage.head(key)).toBeUndefined();
    // Its megabyte is not free yet: bytes can still be PUT to its URL.
    const again = await call(server, account, 'POST', '/api/files/uploads', {
      name: 'again.png',
      contentType: 'image/png',
      size: MiB,
    });
    expect([again.statusCode, again.json().appCode]).toEqual([413, 'QUOTA_EXCEEDED']);
  });

  it('completes an upload once when completions are sent together: the others are told to try again (409)', async () => {
    const account = await registerAccount(server.app);
    const image = png();
    const created = await start(account, { name: 'once.png', contentType: 'image/png', size: image.length });
    await put(created, image);
    let copies = 0;
    const copying = Promise.withResolvers<void>();
    const copied = Promise.withResolvers<void>();
    await whileCopying(
      async (copy, from, to, options) => {
        copies += 1;
        copying.resolve();
        await copied.promise;
        return copy(from, to, options);
      },
      async () => {
        const first = complete(account, created.id);
        await copying.promise;
        const second = await complete(account, created.id);
        expect([second.statusCode, second.json().appCode]).toEqual([409, 'CONFLICT']);
        copied.resolve();
        expect((await first).statusCode).toBe(200);
      },
    );
    expect(copies).toBe(1);
    // Tried again: the file.
    const again = await complete(account, created.id);
    expect([again.statusCode, again.json().id]).toEqual([200, created.id]);
  });

  it('completes an upload while the store of completion turns (Redis) is away', async () => {
    const account = await registerAccount(server.app);
    const image = png();
    const created = await start(account, { name: 'away.png', contentType: 'image/png', size: image.length });
    await put(created, image);
    const { kv } = server.services;
    const increment = kv.increment.bind(kv);
    // Only the turn's key fails: the in-memory store (no REDIS_URL) counts rate limits through
    // the same method.
    kv.increment = (key, options) =>
      key.startsWith('completing-upload:')
        ? Promise.reject(new DependencyUnavailableError('redis', 'Redis is away'))
        : increment(key, options);
    try {
      expect((await complete(account, created.id)).statusCode).toBe(200);
    } finally {
      kv.increment = increment;
    }
  });

  it('deletes an upload completed while its cancellation waited as the file it became', async () => {
    const account = await registerAccount(server.app);
    const bytes = Buffer.from('completed meanwhile\n');
    const created = await start(account, { name: 'race.txt', contentType: 'text/plain', size: bytes.length });
    await put(created, bytes);
    // A completion holds the row (it has just made it ready) while the deletion reads it as pending.
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = false;
    const completion = server.services.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('files')
        .set({ status: 'ready', sha256: sha256(bytes) })
        .where('id', '=', created.id)
        .execute();
      holding = true;
      await released;
    });
    await expect.poll(() => holding).toBe(true);
    const deletion = call(server, account, 'DELETE', `/api/files/${created.id}`);
    try {
      await untilWaitingOnLocks(server.services.db, 1, deletion);
    } finally {
      release();
      await completion;
    }
    expect((await deletion).statusCode).toBe(200);
    expect(await rowsOf(server, account.id)).toEqual([]);
  });

  it('counts a direct upload’s size while its URL may write, whatever became of it, then the sweep gives it back', async () => {
    const account = await registerAccount(server.app);
    const megabyte = Buffer.alloc(MiB, 'a');
    const input = { name: 'm.txt', contentType: 'text/plain', size: MiB };
    const upload = async () => {
      const created = await start(account, input);
      await put(created, megabyte);
      expect((await complete(account, created.id)).statusCode).toBe(200);
      return created;
    };
    // Kept: counted once, as a file.
    const kept = await upload();
    // Deleted at once, and cancelled: their URLs could still write a megabyte each.
    const deleted = await upload();
    expect((await call(server, account, 'DELETE', `/api/files/${deleted.id}`)).statusCode).toBe(200);
    const cancelled = await start(account, input);
    expect((await call(server, account, 'DELETE', `/api/files/${cancelled.id}`)).statusCode).toBe(200);
    const more = await call(server, account, 'POST', '/api/files/uploads', { ...input, size: 1 });
    expect([more.statusCode, more.json().appCode]).toEqual([413, 'QUOTA_EXCEEDED']);
    expect((await listOf(account)).items.map((file) => file.id)).toEqual([kept.id]);
    const statuses = async () => (await rowsOf(server, account.id)).map((row) => row.status).sort();
    expect(await statuses()).toEqual(['ready', 'spent', 'spent']);

    // Bytes PUT again to the deleted file's URL (once its removals ran) are under its counted size, and go with it.
    await removalsRun(server);
    await put(deleted, megabyte);
    const spentKeys = (await rowsOf(server, account.id)).filter((row) => row.status === 'spent');
    const [rePut] = (
      await Promise.all(
        spentKeys.map(async (row) => ((await server.services.storage.head(row.storage_key)) ? row : null)),
      )
    ).filter(Boolean);
    expect(rePut).toBeTruthy();

    // Once the URLs expired, and the hour a PUT in flight is given: the sweep takes both.
    clock.advance(Date.parse(cancelled.expiresAt) - clock.now() + COMPLETION_GRACE_MS + 60_000);
    await sweepFiles(server.services);
    await removalsRun(server);
    expect(await server.services.storage.head(rePut?.storage_key as string)).toBeUndefined();
    expect(await statuses()).toEqual(['ready']);
    // (Signed in again: the clock moved past the access token's life.)
    const signedIn = (await login(server.app, account.email, account.password)).json() as { accessToken: string };
    const again = { ...account, accessToken: signedIn.accessToken };
    await start(again, input);
    await start(again, input);
  });

  it('sweeps an expired pending upload, row and object, and leaves a live one', async () => {
    const account = await registerAccount(server.app);
    const bytes = Buffer.from('never completed\n');
    const expired = await start(account, { name: 'late.txt', contentType: 'text/plain', size: bytes.length });
    await put(expired, bytes);
    const expiredKey = await storageKeyOf(server, expired.id);
    clock.advance(10 * 60_000);
    const live = await start(account, { name: 'live.txt', contentType: 'text/plain', size: bytes.length });
    await put(live, bytes);
    // The first is 76 minutes old: past its URL's 15 and the hour its completion is given.
    clock.advance(6 * 60_000 + COMPLETION_GRACE_MS);

    // Pending uploads of earlier tests in this block expired too.
    const due = await server.services.db
      .selectFrom('files')
      .select('id')
      .where('status', 'in', ['pending', 'spent'])
      .where('expires_at', '<', new Date(clock.now()))
      .execute();
    expect(due.map((row) => row.id)).toContain(expired.id);
    expect(due.map((row) => row.id)).not.toContain(live.id);
    const swept = await sweepFiles(server.services);
    expect(swept.expiredUploads).toBe(due.length);
    expect((await rowsOf(server, account.id)).map((row) => row.id)).toEqual([live.id]);
    expect(await removalJobsOf(server, expiredKey)).toHaveLength(1);
    await removalsRun(server);
    expect(await server.services.storage.head(expiredKey)).toBeUndefined();
    expect(await server.services.storage.head(await storageKeyOf(server, live.id))).toBeDefined();
  });
});

describe('download redirects (S3 with FILES_DOWNLOAD_REDIRECT)', () => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer({ driver: 's3', env: { FILES_DOWNLOAD_REDIRECT: 'true' } });
  });
  afterAll(() => server?.close());

  it('answers 302 to a short-lived URL of the store that serves the bytes', async () => {
    const account = await registerAccount(server.app);
    const image = png(5, 5);
    const file = await uploaded(server, account, 'redirected.png', image);
    const response = await content(server, file.id, account);
    expect(response.status).toBe(302);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const location = response.headers.get('location') ?? '';
    expect(location.startsWith(`${server.s3?.endpoint}/`)).toBe(true);
    expect(new URL(location).searchParams.get('X-Amz-Expires')).toBe('300');
    const stored = await fetch(location);
    expect(stored.status).toBe(200);
    expect(Buffer.from(await stored.arrayBuffer())).toEqual(image);
    // Someone else still gets nothing, not even a URL.
    expect((await content(server, file.id, await registerAccount(server.app))).status).toBe(404);
    // A HEAD is answered by the server (a signed URL works for GET only).
    const head = await fetch(`${server.url}/api/files/${file.id}/content`, {
      method: 'HEAD',
      headers: bearer(account),
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(image.length));
    expect(head.headers.get('etag')).toBe(`"${file.sha256}"`);
  });

  it('serves profile pictures itself, cacheable (a page shows many)', async () => {
    const account = await registerAccount(server.app);
    const image = await uploaded(server, account, 'me.png', png(4, 4));
    const set = await call(server, account, 'PUT', '/api/users/me/avatar', { fileId: image.id });
    const avatar = await fetch(`${server.url}${new URL(set.json().avatarUrl as string).pathname}`);
    expect(avatar.status).toBe(200);
    expect(avatar.headers.get('cache-control')).toBe('public, max-age=300');
    expect(avatar.headers.get('ratelimit-remaining')).toBeNull(); // no client's budget in a shared cache
    expect(Buffer.from(await avatar.arrayBuffer())).toEqual(png(4, 4));
    // The owner's own signed-in download of it too; their other files still redirect.
    expect((await content(server, image.id, account)).status).toBe(200);
    const other = await uploaded(server, account, 'other.png', png(3, 3));
    expect((await content(server, other.id, account)).status).toBe(302);
  });

  it('has the store serve a direct upload with none of the headers its PUT was sent with (unsigned, kept by S3)', async () => {
    const account = await registerAccount(server.app);
    const image = png(6, 6);
    const started = await call(server, account, 'POST', '/api/files/uploads', {
      name: 'sent-along.png',
      contentType: 'image/png',
      size: image.length,
    });
    expect(started.statusCode, started.body).toBe(200);
    const target = started.json() as { id: string; url: string; method: string; headers: Record<string, string> };
    const sentAlong = {
      'content-encoding': 'gzip',
      'cache-control': 'public, max-age=31536000',
      'content-language': 'fr',
    };
    const put = await fetch(target.url, {
      method: target.method,
      headers: { ...target.headers, ...sentAlong },
      body: image,
    });
    expect(put.status).toBe(200);
    const completed = await call(server, account, 'POST', `/api/files/uploads/${target.id}/complete`, {});
    expect(completed.statusCode, completed.body).toBe(200);
    const location = (await content(server, target.id, account)).headers.get('location') ?? '';
    const stored = await fetch(location);
    expect(stored.status).toBe(200);
    // Before: gzip (a browser would try to decode the checked bytes), and the uploader's caching.
    expect({
      encoding: stored.headers.get('content-encoding'),
      caching: stored.headers.get('cache-control'),
      language: stored.headers.get('content-language'),
      type: stored.headers.get('content-type'),
    }).toEqual({ encoding: null, caching: null, language: null, type: 'image/png' });
    expect(Buffer.from(await stored.arrayBuffer())).toEqual(image);
  });

  it('has the store serve text as UTF-8, as the server does', async () => {
    const account = await registerAccount(server.app);
    const file = await uploaded(server, account, 'grüße.txt', Buffer.from('Grüße 👋\n'));
    const location = (await content(server, file.id, account)).headers.get('location') ?? '';
    expect(new URL(location).searchParams.get('response-content-type')).toBe('text/plain; charset=utf-8');
    const stored = await fetch(location);
    expect(stored.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await stored.text()).toBe('Grüße 👋\n');
  });
});

describe('a download its client pauses (S3)', () => {
  let server: FilesServer;
  beforeAll(async () => {
    server = await startFilesServer({
      driver: 's3',
      env: { S3_TIMEOUT_MS: '4000', FILES_MAX_BYTES: String(64 * MiB), FILES_QUOTA_BYTES: String(128 * MiB) },
    });
  });
  afterAll(() => server?.close());

  it('goes on after a pause longer than S3_TIMEOUT_MS (the store’s socket waits as long as the client may)', async () => {
    const account = await registerAccount(server.app);
    // More than every socket buffer between the store, the server and the client holds, PUT
    // directly (s3rver takes no multipart upload, which the server's own uploads of this size are).
    const bytes = text(40 * MiB);
    const started = await call(server, account, 'POST', '/api/files/uploads', {
      name: 'long.txt',
      contentType: 'text/plain',
      size: bytes.length,
    });
    expect(started.statusCode, started.body).toBe(200);
    const target = started.json() as { id: string; url: string; method: string; headers: Record<string, string> };
    const put = await fetch(target.url, { method: target.method, headers: target.headers, body: bytes });
    expect(put.status).toBe(200);
    const completed = await call(server, account, 'POST', `/api/files/uploads/${target.id}/complete`, {});
    expect(completed.statusCode, completed.body).toBe(200);
    const file = completed.json() as FileDto;
    const response = await content(server, file.id, account);
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let received = 0;
    while (received < 64 * KiB) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    await sleep(6_000); // the client stops reading: the store's body pauses with it
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    expect(received).toBe(bytes.length);
  }, 60_000);
});

/** A server whose S3 store is the test's own fake at 127.0.0.1:`port`, given `timeoutMs` (S3_TIMEOUT_MS). */
const startFakeS3Server = (port: number, timeoutMs: number) =>
  startTestServer({
    env: {
      STORAGE_DRIVER: 's3',
      S3_BUCKET: 'bucket',
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: 'x',
      S3_SECRET_ACCESS_KEY: 'y',
      S3_TIMEOUT_MS: String(timeoutMs),
    },
  });

describe('an S3 store that does not answer', () => {
  it('answers 503 DEPENDENCY_DOWN within S3_TIMEOUT_MS, never a hang or a 500', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent = createNetServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const server = await startFakeS3Server(port, 500);
    try {
      const account = await registerAccount(server.app);
      const response = await fetch(`${server.url}/api/files`, {
        method: 'POST',
        headers: { ...bearer(account), 'content-type': MULTIPART },
        body: multipart('late.txt', text(1_000)),
      });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { appCode: string; details: { dependency: string } };
      expect(body).toMatchObject({ appCode: 'DEPENDENCY_DOWN', details: { dependency: 'storage' } });
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.app.server.closeAllConnections();
      await server.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 30_000);
});

describe('an S3 store that fails a part while the client is still sending', () => {
  it('answers 503 DEPENDENCY_DOWN, not the error the store left on the body (a 500)', async () => {
    // Starts a multipart upload, then refuses every part: the SDK stops reading the body
    // midway, and Node ends it with an error of its own.
    const store = http.createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://store');
      request.resume();
      request.on('end', () => {
        if (request.method === 'POST' && url.searchParams.has('uploads')) {
          response.writeHead(200, { 'content-type': 'application/xml' });
          response.end(
            '<?xml version="1.0"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>',
          );
        } else if (request.method === 'PUT' && url.searchParams.has('partNumber')) {
          response.writeHead(503, { 'content-type': 'application/xml' });
          response.end('<Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>');
        } else {
          response.writeHead(204);
          response.end();
        }
      });
    });
    await new Promise<void>((resolve) => store.listen(0, '127.0.0.1', resolve));
    const { port } = store.address() as { port: number };
    const server = await startFakeS3Server(port, 2_000);
    try {
      const account = await registerAccount(server.app);
      // 24 MiB, sent at a client's pace: the store fails the first parts while more arrive.
      const total = 24 * 1024 * 1024;
      let sent = -1;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === -1) {
            controller.enqueue(partHead('big.txt', { type: 'text/plain' }));
            sent = 0;
          } else if (sent >= total) {
            controller.enqueue(PART_TAIL);
            controller.close();
          } else {
            await sleep(2);
            const chunk = text(256 * 1024);
            sent += chunk.length;
            controller.enqueue(chunk);
          }
        },
      });
      const response = await fetch(`${server.url}/api/files`, {
        method: 'POST',
        headers: { ...bearer(account), 'content-type': MULTIPART },
        body,
        duplex: 'half',
      } as RequestInit);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ appCode: 'DEPENDENCY_DOWN', details: { dependency: 'storage' } });
    } finally {
      server.app.server.closeAllConnections();
      await server.close();
      await new Promise((resolve) => store.close(resolve));
    }
  }, 30_000);
});

describe('an upload its client gives up on', () => {
  it("is logged as its client's doing, not as a dependency outage (503), and nothing is kept", async () => {
    const database = await createTestDatabase();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'files-abort-'));
    const server = spawnServer({
      DATABASE_URL: database.url,
      FILES_DIR: dir,
      LOG_LEVEL: 'info',
      REDIS_COMMAND_TIMEOUT_MS: '5000', // a loaded CI machine, not the code, may be slow
      ...sharedRedisEnv(),
    });
    try {
      const url = await listeningUrl(server);
      const registered = await fetch(`${url}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `abort-${randomUUID()}@example.com`, password: 'Sunny-day-42' }),
      });
      // (A refused sign-up would leave the upload a 401, and no file to wait for.)
      expect(registered.status, await registered.clone().text()).toBe(200);
      const { accessToken } = (await registered.json()) as { accessToken: string };
      const { hostname, port } = new URL(url);
      const socket = createConnection({ host: hostname, port: Number(port) });
      await once(socket, 'connect');
      const part = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n`;
      socket.write(
        `POST /api/files HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${accessToken}\r\n` +
          `Content-Type: ${MULTIPART}\r\nContent-Length: 1000000\r\nX-Request-Id: cut-off-upload\r\n\r\n${part}${'x'.repeat(64 * 1024)}`,
      );
      // The handler is streaming the body to storage once its temporary file exists (a fixed
      // pause was too short on a loaded machine).
      expect(await eventually(async () => (await filesUnder(dir)).length > 0, 20_000)).toBe(true);
      socket.destroy();
      // Before: "database unavailable: answering 503 (aborted)", an outage that was not one.
      await server.waitFor(/"requestId":"cut-off-upload".*upload cut off by its client/, 20_000);
      expect(server.output()).not.toMatch(/unavailable/);
      expect(await eventually(async () => (await filesUnder(dir)).length === 0)).toBe(true); // not the bytes, not a temporary file
    } finally {
      server.process.kill('SIGKILL');
      await server.exited;
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
