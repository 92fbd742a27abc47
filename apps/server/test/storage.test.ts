/**
 * The contract both storage drivers meet, with real bytes: the local disk (a temporary
 * directory) and S3 (s3rver, a local S3-compatible server, through the AWS SDK). Then what
 * removal jobs rely on: deleting a missing object succeeds, and a store that is away fails.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../src/infra/dependency-errors.ts';
import { localStorage } from '../src/infra/storage/local.ts';
import { s3Storage } from '../src/infra/storage/s3.ts';
import type { ByteRange, ObjectInfo, ObjectStorage } from '../src/infra/storage/storage.ts';
import { type S3Server, startS3Server } from './helpers/index.ts';

const MiB = 1024 * 1024;

interface Subject {
  storage: ObjectStorage;
  /** local: the root directory. */
  dir?: string;
  /** s3: the server, and a client of the test's own (to check what the store kept). */
  server?: S3Server;
  client?: S3Client;
  close(): Promise<void>;
}

const drivers: { name: 'local' | 's3'; start: () => Promise<Subject> }[] = [
  {
    name: 'local',
    async start() {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'storage-local-'));
      const storage = localStorage(dir, { timeoutMs: 10_000 });
      return {
        storage,
        dir,
        async close() {
          await storage.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 's3',
    async start() {
      const server = await startS3Server();
      const connection = {
        region: server.region,
        endpoint: server.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      };
      const storage = s3Storage({
        bucket: server.bucket,
        region: server.region,
        endpoint: server.endpoint,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
        forcePathStyle: true,
        timeoutMs: 30_000,
        bodyIdleMs: 60_000,
      });
      const client = new S3Client(connection);
      return {
        storage,
        server,
        client,
        async close() {
          client.destroy();
          await storage.close();
          await server.close();
        },
      };
    },
  },
];

const bodyOf = (bytes: Buffer) => Readable.from([bytes]);

async function readAll(stream: Readable | undefined): Promise<Buffer | undefined> {
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

async function listed(storage: ObjectStorage, prefix: string): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  for await (const object of storage.list(prefix)) objects.push(object);
  return objects.sort((a, b) => a.key.localeCompare(b.key));
}

/** `total` bytes in chunks made one at a time; throws on reaching `failAt` bytes. */
async function* generated(total: number, options: { chunkSize?: number; failAt?: number; onChunk?: () => void } = {}) {
  const chunkSize = options.chunkSize ?? 64 * 1024;
  for (let sent = 0; sent < total; sent += chunkSize) {
    if (options.failAt !== undefined && sent + chunkSize > options.failAt) {
      throw new Error('the upload broke off');
    }
    options.onChunk?.();
    yield Buffer.alloc(Math.min(chunkSize, total - sent), (sent / chunkSize) & 0xff);
  }
}

/** `bytes` in chunks with a pause between them: a slow upload. */
async function* trickle(bytes: Buffer, chunkSize: number, pauseMs: number) {
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    await sleep(pauseMs);
    yield bytes.subarray(offset, offset + chunkSize);
  }
}

describe.each(drivers)('$name storage', ({ name, start }) => {
  let subject: Subject;
  let storage: ObjectStorage;
  beforeAll(async () => {
    subject = await start();
    storage = subject.storage;
  });
  afterAll(async () => {
    await subject?.close();
  });

  async function contentTypeOf(key: string): Promise<string | undefined> {
    if (!subject.client || !subject.server) return undefined;
    const answer = await subject.client.send(new HeadObjectCommand({ Bucket: subject.server.bucket, Key: key }));
    return answer.ContentType;
  }

  it('reports its driver', () => {
    expect(storage.driver).toBe(name);
  });

  it.each([
    { label: 'a small object', size: 1000 },
    { label: 'an empty object', size: 0 },
    { label: 'a 12 MiB object (a multipart upload on S3)', size: 12 * MiB + 12_345 },
  ])('gives back the very bytes of $label, and its size', async ({ size }) => {
    const key = `roundtrip/${size}`;
    const bytes = randomBytes(size);
    await storage.put(key, bodyOf(bytes), { contentType: 'application/x-test' });
    const back = await readAll(await storage.get(key));
    expect(back?.length).toBe(size);
    expect(back?.equals(bytes)).toBe(true);
    const info = await storage.head(key);
    expect(info).toMatchObject({ key, size });
    expect(info?.lastModified).toBeInstanceOf(Date);
    if (name === 's3') expect(await contentTypeOf(key)).toBe('application/x-test');
  });

  it('gives back exactly the bytes of a range', async () => {
    const key = 'range/object';
    const bytes = randomBytes(100_000);
    await storage.put(key, bodyOf(bytes), { contentType: 'application/octet-stream' });
    const last = bytes.length - 1;
    const ranges: ByteRange[] = [
      { start: 0, end: 99 },
      { start: 40_000, end: 59_999 },
      { start: 50_000, end: 50_000 },
      { start: last, end: last },
      { start: last - 99, end: last },
      { start: 0, end: last },
    ];
    // s3rver 3.7.1 answers `bytes=0-0` with the whole object (it reads an end of 0 as "to the end");
    // AWS S3 does not, so the single first byte is checked on the local disk only.
    if (name === 'local') ranges.push({ start: 0, end: 0 });
    for (const range of ranges) {
      const back = await readAll(await storage.get(key, range));
      expect(back?.equals(bytes.subarray(range.start, range.end + 1)), `bytes=${range.start}-${range.end}`).toBe(true);
    }
  });

  it('answers undefined for a missing object, and deletes one quietly', async () => {
    expect(await storage.get('missing/object')).toBeUndefined();
    expect(await storage.get('missing/object', { start: 0, end: 9 })).toBeUndefined();
    expect(await storage.head('missing/object')).toBeUndefined();
    await expect(storage.delete('missing/object')).resolves.toBeUndefined();
    expect(await listed(storage, 'missing/')).toEqual([]);
  });

  it('copies an object, and answers false for a missing one, creating nothing', async () => {
    const bytes = randomBytes(10);
    await storage.put('copy/from', bodyOf(bytes), { contentType: 'text/plain' });
    expect(await storage.copy('copy/from', 'copy/to', { contentType: 'text/plain' })).toBe(true);
    expect(await readAll(await storage.get('copy/to'))).toEqual(bytes);
    expect(await storage.copy('copy/missing', 'copy/nowhere', { contentType: 'text/plain' })).toBe(false);
    expect(await storage.head('copy/nowhere')).toBeUndefined();
    expect((await listed(storage, 'copy/')).map((object) => object.key)).toEqual(['copy/from', 'copy/to']);
  });

  it('deletes an object', async () => {
    const key = 'delete/object';
    await storage.put(key, bodyOf(randomBytes(10)), { contentType: 'text/plain' });
    await storage.delete(key);
    expect(await storage.head(key)).toBeUndefined();
    expect(await storage.get(key)).toBeUndefined();
    expect(await listed(storage, 'delete/')).toEqual([]);
  });

  it('puts and deletes under one prefix at the same time, each as asked', async () => {
    // A removal job deleting the last object under a prefix while an upload lands beside it.
    for (let round = 0; round < 40; round++) {
      await storage.put(`together/old-${round}`, bodyOf(randomBytes(10)), { contentType: 'text/plain' });
      const bytes = randomBytes(10);
      await Promise.all([
        storage.delete(`together/old-${round}`),
        storage.put(`together/new-${round}`, bodyOf(bytes), { contentType: 'text/plain' }),
      ]);
      expect(await storage.head(`together/old-${round}`)).toBeUndefined();
      expect((await readAll(await storage.get(`together/new-${round}`)))?.equals(bytes)).toBe(true);
      await storage.delete(`together/new-${round}`);
    }
    expect(await listed(storage, 'together/')).toEqual([]);
  });

  it('treats a key that is only the start of other keys as missing', async () => {
    await storage.put('parent/child', bodyOf(randomBytes(10)), { contentType: 'text/plain' });
    expect(await storage.head('parent')).toBeUndefined();
    expect(await storage.get('parent')).toBeUndefined();
    expect(await storage.get('parent/child/grandchild')).toBeUndefined(); // through an object
  });

  it.each([
    { label: 'within the first part', failAt: 3 * MiB },
    { label: 'after whole parts were sent', failAt: 20 * MiB },
  ])('keeps nothing when the body fails $label', async ({ failAt }) => {
    const key = `broken/${failAt}`;
    const put = storage.put(key, Readable.from(generated(32 * MiB, { failAt })), { contentType: 'video/mp4' });
    // Failed as the store unavailable: only the caller, who made the body, knows it was the
    // reason (the files service then gives the body's own). (s3rver does not implement
    // AbortMultipartUpload: that the parts are gone on AWS S3 is the SDK's abort, not tested here.)
    await expect(put).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(await storage.head(key)).toBeUndefined();
    expect(await storage.get(key)).toBeUndefined();
    expect(await listed(storage, 'broken/')).toEqual([]);
    if (subject.dir) {
      // No temporary file left behind either.
      const files = await readdir(subject.dir, { recursive: true });
      expect(files.filter((file) => file.startsWith('broken/'))).toEqual([]);
    }
  });

  it('keeps the old object when a replacement fails', async () => {
    const key = 'kept/object';
    const bytes = randomBytes(1000);
    await storage.put(key, bodyOf(bytes), { contentType: 'text/plain' });
    await expect(
      storage.put(key, Readable.from(generated(16 * MiB, { failAt: 2 * MiB })), { contentType: 'text/plain' }),
    ).rejects.toThrow();
    expect((await readAll(await storage.get(key)))?.equals(bytes)).toBe(true);
    expect(await listed(storage, 'kept/')).toEqual([expect.objectContaining({ key, size: 1000 })]);
  });

  it('replaces an object with a second put', async () => {
    const key = 'overwrite/object';
    const first = randomBytes(2 * MiB);
    const second = randomBytes(1 * MiB);
    await storage.put(key, bodyOf(first), { contentType: 'text/plain' });
    await storage.put(key, bodyOf(second), { contentType: 'text/csv' });
    expect((await readAll(await storage.get(key)))?.equals(second)).toBe(true);
    expect(await storage.head(key)).toMatchObject({ size: second.length });
    expect(await listed(storage, 'overwrite/')).toEqual([expect.objectContaining({ key, size: second.length })]);
    if (name === 's3') expect(await contentTypeOf(key)).toBe('text/csv');
  });

  it('lists exactly the objects under a prefix, with their sizes', async () => {
    const objects = { 'list/a': 1, 'list/b/c': 22, 'list/b/d/e': 333, 'list/bb': 4444, 'listing/x': 5, 'other/y': 6 };
    for (const [key, size] of Object.entries(objects)) {
      await storage.put(key, bodyOf(randomBytes(size)), { contentType: 'text/plain' });
    }
    const summary = (list: ObjectInfo[]) => list.map(({ key, size }) => ({ key, size }));
    expect(summary(await listed(storage, 'list/'))).toEqual([
      { key: 'list/a', size: 1 },
      { key: 'list/b/c', size: 22 },
      { key: 'list/b/d/e', size: 333 },
      { key: 'list/bb', size: 4444 },
    ]);
    expect(summary(await listed(storage, 'list/b/'))).toEqual([
      { key: 'list/b/c', size: 22 },
      { key: 'list/b/d/e', size: 333 },
    ]);
    expect(await listed(storage, 'nothing/')).toEqual([]);
    for (const object of await listed(storage, 'list/')) expect(object.lastModified).toBeInstanceOf(Date);
  });

  it('lists in key order, and from after a given key (where an interrupted walk goes on)', async () => {
    // '.' sorts before '/', which sorts before '0': a folder's keys come between its neighbours.
    const keys = ['order/a.txt', 'order/a/x', 'order/a/y/z', 'order/a0', 'order/b', 'order/c'];
    for (const key of [...keys].reverse())
      await storage.put(key, bodyOf(Buffer.from(key)), { contentType: 'text/plain' });
    const walk = async (after?: string) => {
      const listed: string[] = [];
      for await (const object of storage.list('order/', after === undefined ? {} : { after })) listed.push(object.key);
      return listed;
    };
    // (s3rver, unlike S3, lists a folder's keys before a sibling that sorts before them: the order is the store's.)
    if (name === 'local') expect(await walk()).toEqual(keys);
    else expect((await walk()).sort()).toEqual(keys);
    expect(await walk('order/a/x')).toEqual(keys.slice(2));
    expect(await walk('order/a/')).toEqual(keys.slice(1)); // (no such key)
    expect(await walk('order/a0')).toEqual(['order/b', 'order/c']);
    expect(await walk('order/c')).toEqual([]);
    expect((await walk('order/')).sort()).toEqual(keys);
  });

  it('lists every object for the empty prefix', async () => {
    await storage.put('everything/one', bodyOf(randomBytes(7)), { contentType: 'text/plain' });
    const keys = (await listed(storage, '')).map((object) => object.key);
    expect(keys).toContain('everything/one');
    expect(keys).toContain('list/a');
  });

  it('streams a 200 MiB upload without holding it in memory', { timeout: 120_000 }, async () => {
    const key = 'memory/large';
    const size = 200 * MiB;
    const startRss = process.memoryUsage().rss;
    let maxRss = startRss;
    const sample = () => {
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
    };
    const timer = setInterval(sample, 20);
    try {
      await storage.put(key, Readable.from(generated(size, { onChunk: sample })), {
        contentType: 'application/octet-stream',
      });
    } finally {
      clearInterval(timer);
    }
    sample();
    const growthMiB = (maxRss - startRss) / MiB;
    console.log(`${name} storage: RSS grew by ${growthMiB.toFixed(1)} MiB during a 200 MiB put`);
    expect(await storage.head(key)).toMatchObject({ size });
    await storage.delete(key);
    expect(growthMiB).toBeLessThan(96);
  });

  if (name === 'local') {
    /** Outside the root, its parent, a sibling whose name starts with the root's, the root itself. */
    const escapingKeys = () => {
      const sibling = `../${path.basename(subject.dir as string)}-sibling/x`;
      return ['../x', 'a/../../x', sibling, '/etc/passwd', '', '.'];
    };

    it('refuses a key that would leave its root', async () => {
      for (const key of escapingKeys()) {
        await expect(storage.put(key, bodyOf(Buffer.from('x')), { contentType: 'text/plain' }), key).rejects.toThrow(
          /outside the root/,
        );
        await expect(storage.get(key), key).rejects.toThrow(/^storage key outside the root/);
        await expect(storage.delete(key), key).rejects.toThrow(/outside the root/);
      }
      await expect(listed(storage, '../')).rejects.toThrow(/outside the root/);
      await expect(listed(storage, '../sibling/')).rejects.toThrow(/outside the root/);
    });

    it('answers a path the disk cannot resolve (a symlink loop) as the storage unavailable, not as missing', async () => {
      const dir = path.join(subject.dir as string, 'looping');
      await mkdir(dir, { recursive: true });
      await symlink('self', path.join(dir, 'self'));
      for (const read of [() => storage.get('looping/self'), () => storage.head('looping/self')]) {
        await expect(read()).rejects.toBeInstanceOf(DependencyUnavailableError);
        await expect(read()).rejects.toThrow(/could not read: ELOOP/);
      }
      // A walk the disk fails fails as well: a sweep must not take it for an empty folder.
      await expect(listed(storage, 'looping/self/')).rejects.toBeInstanceOf(DependencyUnavailableError);
      await expect(listed(storage, 'looping/self/')).rejects.toThrow(/could not list: ELOOP/);
      // The link itself is no object the store wrote: a walk past it leaves it out.
      expect(await listed(storage, 'looping/')).toEqual([]);
      expect(await listed(storage, 'never-written/')).toEqual([]);
    });

    it('gives up on a disk that does not answer (a hung mount) as the storage unavailable', async () => {
      // Opening a FIFO for reading blocks until someone writes to it: a disk call that hangs.
      const key = 'hung/object';
      const fifo = path.join(subject.dir as string, key);
      await mkdir(path.dirname(fifo), { recursive: true });
      execFileSync('mkfifo', [fifo]);
      const hasty = localStorage(subject.dir as string, { timeoutMs: 200 });
      try {
        await expect(hasty.get(key)).rejects.toBeInstanceOf(DependencyUnavailableError);
        await expect(hasty.get(key)).rejects.toThrow(/could not read: the disk gave no answer within 200 ms/);
      } finally {
        // A writer lets the blocked opens finish (their late handles are closed).
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        await rm(path.dirname(fifo), { recursive: true, force: true });
      }
    });

    it('fails a write the disk refuses midway (a file size limit) as the storage unavailable, keeping nothing', async () => {
      // A child process under `ulimit -f` (256 blocks): its disk writes past that fail with EFBIG.
      const script = path.join(subject.dir as string, 'put.ts');
      const local = path.resolve(import.meta.dirname, '../src/infra/storage/local.ts');
      await writeFile(
        script,
        `import { Readable } from 'node:stream';
import { localStorage } from ${JSON.stringify(local)};
const storage = localStorage(process.argv[2], { timeoutMs: 5_000 });
const body = Readable.from([Buffer.alloc(1024 * 1024), Buffer.alloc(1024 * 1024)]);
const outcome = await storage.put('limited/object', body, { contentType: 'text/plain' }).then(
  () => 'stored',
  (error) => error.constructor.name + ': ' + error.message,
);
await storage.close();
console.log(outcome);
`,
      );
      const root = path.join(subject.dir as string, 'limited-root');
      const output = execFileSync('sh', ['-c', 'ulimit -f 256 && exec "$0" "$@"', process.execPath, script, root], {
        encoding: 'utf8',
      });
      expect(output.trim()).toMatch(/^DependencyUnavailableError: the file storage could not write: EFBIG/);
      expect(await readdir(path.join(root, 'limited')).catch(() => [])).toEqual([]);
    });

    it('refuses such a key in head too, rather than calling it missing', async () => {
      for (const key of escapingKeys()) await expect(storage.head(key), key).rejects.toThrow(/outside the root/);
    });

    it('leaves no file open: read whole, abandoned unread, empty, missing, or a folder', async () => {
      const openFiles = async () => (await readdir('/proc/self/fd')).length;
      await storage.put('handles/object', bodyOf(randomBytes(200_000)), { contentType: 'text/plain' });
      await storage.put('handles/empty', bodyOf(Buffer.alloc(0)), { contentType: 'text/plain' });
      const before = await openFiles();
      for (let i = 0; i < 200; i++) {
        await readAll(await storage.get('handles/object', { start: 10, end: 150_000 }));
        const abandoned = await storage.get('handles/object');
        abandoned?.destroy();
        await readAll(await storage.get('handles/empty'));
        expect(await storage.get('handles/missing')).toBeUndefined();
        expect(await storage.get('handles')).toBeUndefined();
      }
      await sleep(100); // the abandoned streams' handles close as they are destroyed
      expect(await openFiles()).toBeLessThanOrEqual(before);
    });

    it('never shows a reader half of a replacement', async () => {
      const key = 'atomic/object';
      const first = randomBytes(2 * MiB);
      const second = randomBytes(2 * MiB);
      await storage.put(key, bodyOf(first), { contentType: 'text/plain' });
      let writing = true;
      const put = storage
        .put(key, Readable.from(trickle(second, 128 * 1024, 10)), { contentType: 'text/plain' })
        .finally(() => {
          writing = false;
        });
      const seen: string[] = [];
      while (writing) {
        const back = await readAll(await storage.get(key));
        seen.push(back?.equals(first) ? 'first' : back?.equals(second) ? 'second' : `a mix of ${back?.length} bytes`);
      }
      await put;
      seen.push((await readAll(await storage.get(key)))?.equals(second) ? 'second' : 'not the second');
      expect(seen.length).toBeGreaterThan(2);
      expect(seen.filter((outcome) => outcome !== 'first' && outcome !== 'second')).toEqual([]);
      expect(seen.at(-1)).toBe('second');
    });
  }

  if (name === 's3') {
    it('presigns a PUT with the size and type signed in, that stores the bytes', async () => {
      const key = 'presigned/put';
      const bytes = randomBytes(50_000);
      const presigned = await storage.presignPut?.(key, {
        contentType: 'image/png',
        size: bytes.length,
        expiresInSeconds: 300,
      });
      if (!presigned) throw new Error('the s3 driver presigns PUTs');
      const signed = new URL(presigned.url).searchParams.get('X-Amz-SignedHeaders')?.split(';') ?? [];
      expect(signed).toEqual(expect.arrayContaining(['content-length', 'content-type']));
      expect(new URL(presigned.url).searchParams.get('X-Amz-Expires')).toBe('300');
      // No checksum of a body the URL has not seen (the SDK's default, refused by R2).
      expect([...new URL(presigned.url).searchParams.keys()].filter((name) => /checksum/i.test(name))).toEqual([]);
      expect(Object.keys(presigned.headers).filter((name) => /checksum/i.test(name))).toEqual([]);
      const response = await fetch(presigned.url, { method: 'PUT', body: bytes, headers: presigned.headers });
      expect(response.status).toBe(200);
      expect(await storage.head(key)).toMatchObject({ size: bytes.length });
      expect((await readAll(await storage.get(key)))?.equals(bytes)).toBe(true);
      expect(await contentTypeOf(key)).toBe('image/png');
    });

    it('presigns a GET that answers the bytes with the asked type and disposition', async () => {
      const key = 'presigned/get';
      const bytes = randomBytes(30_000);
      await storage.put(key, bodyOf(bytes), { contentType: 'application/octet-stream' });
      const disposition = `attachment; filename="report.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`;
      const url = await storage.presignGet?.(key, {
        expiresInSeconds: 60,
        contentType: 'application/pdf',
        contentDisposition: disposition,
      });
      if (!url) throw new Error('the s3 driver presigns GETs');
      expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('60');
      expect([...new URL(url).searchParams.keys()].filter((name) => /checksum/i.test(name))).toEqual([]);
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-disposition')).toBe(disposition);
      expect(response.headers.get('content-type')).toBe('application/pdf');
      expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
    });
  }
});

describe('uploading to an S3-compatible store over a slow link', () => {
  it('stores a body that takes longer than S3_TIMEOUT_MS to send, the store reading all along', async () => {
    // A store that answers once it has read the body, at ~256 KB/s: 512 KiB take ~2 s.
    let received = 0;
    const checksums: string[] = [];
    const store = http.createServer((request, response) => {
      checksums.push(
        ...Object.keys(request.headers).filter((name) => name.startsWith('x-amz-checksum-')),
        ...String(request.headers['x-amz-trailer'] ?? '')
          .split(',')
          .filter(Boolean),
      );
      request.on('data', (chunk: Buffer) => {
        received += chunk.length;
        request.pause();
        setTimeout(() => request.resume(), Math.ceil(chunk.length / 256));
      });
      request.on('end', () => {
        response.writeHead(200, { etag: '"slow"' });
        response.end();
      });
    });
    await new Promise<void>((resolve) => store.listen(0, '127.0.0.1', resolve));
    const storage = s3Storage({
      bucket: 'bucket',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${(store.address() as AddressInfo).port}`,
      accessKeyId: 'key',
      secretAccessKey: 'secret',
      forcePathStyle: true,
      timeoutMs: 1_000,
      bodyIdleMs: 60_000,
    });
    try {
      await storage.put('slow/object', bodyOf(randomBytes(512 * 1024)), { contentType: 'image/png' });
      expect(received).toBeGreaterThanOrEqual(512 * 1024);
      // With the SDK's checksum, which a bucket with a default Object Lock retention requires.
      expect(checksums.length).toBeGreaterThan(0);
    } finally {
      await storage.close();
      await new Promise((resolve) => store.close(resolve));
    }
  });
});

describe('deleting from an S3-compatible store', () => {
  const s3Against = (endpoint: string) =>
    s3Storage({
      bucket: 'bucket',
      region: 'us-east-1',
      endpoint,
      accessKeyId: 'key',
      secretAccessKey: 'secret',
      forcePathStyle: true,
      timeoutMs: 2_000,
      bodyIdleMs: 60_000,
    });

  it('takes a store answering 404 NoSuchKey (as GCS does) for an object already gone', async () => {
    const deletes: string[] = [];
    const store = http.createServer((request, response) => {
      if (request.method === 'DELETE') deletes.push(new URL(request.url ?? '', 'http://store').pathname);
      response.writeHead(404, { 'content-type': 'application/xml' });
      response.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>No such object</Message></Error>',
      );
    });
    await new Promise<void>((resolve) => store.listen(0, '127.0.0.1', resolve));
    const storage = s3Against(`http://127.0.0.1:${(store.address() as AddressInfo).port}`);
    try {
      await expect(storage.delete('files/gone')).resolves.toBeUndefined();
      expect(deletes).toEqual(['/bucket/files/gone']);
    } finally {
      await storage.close();
      store.closeAllConnections();
      await new Promise((resolve) => store.close(resolve));
    }
  });

  it('fails the delete when the store is away (a removal job is then tried again)', async () => {
    const unused = http.createServer();
    await new Promise<void>((resolve) => unused.listen(0, '127.0.0.1', resolve));
    const { port } = unused.address() as AddressInfo;
    await new Promise((resolve) => unused.close(resolve));
    const storage = s3Against(`http://127.0.0.1:${port}`);
    try {
      await expect(storage.delete('files/some')).rejects.toMatchObject({ dependency: 'storage' });
    } finally {
      await storage.close();
    }
  });
});

describe('an S3 store whose credentials cannot be had', () => {
  // No keys in the config: the SDK's default chain resolves them before it signs, here by a
  // credential_process from an AWS config file, as a developer machine or a host may have.
  const credentialVariables = [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'AWS_CONFIG_FILE',
    'AWS_SHARED_CREDENTIALS_FILE',
    'AWS_EC2_METADATA_DISABLED',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
  ];
  const saved = Object.fromEntries(credentialVariables.map((name) => [name, process.env[name]]));
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'storage-credentials-'));
    for (const name of credentialVariables) delete process.env[name];
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'none');
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
  });
  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await rm(dir, { recursive: true, force: true });
  });

  const storageWhoseCredentialsRun = async (command: string) => {
    const config = path.join(dir, `config-${randomBytes(4).toString('hex')}`);
    await writeFile(config, `[default]\ncredential_process = ${command}\n`);
    process.env.AWS_CONFIG_FILE = config;
    return s3Storage({
      bucket: 'bucket',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      accessKeyId: undefined,
      secretAccessKey: undefined,
      forcePathStyle: true,
      timeoutMs: 300,
      bodyIdleMs: 60_000,
    });
  };
  /** Every call the driver makes, presigning included (it sends nothing, but needs the credentials). */
  const everyCall = (storage: ObjectStorage) => [
    storage.presignPut?.('uploads/a', { contentType: 'text/plain', size: 3, expiresInSeconds: 60 }),
    storage.presignGet?.('files/a', { expiresInSeconds: 60, contentType: 'text/plain', contentDisposition: 'inline' }),
    storage.put('files/a', Readable.from([Buffer.from('abc')]), { contentType: 'text/plain' }),
    storage.get('files/a'),
    storage.head('files/a'),
    storage.copy('files/a', 'files/b', { contentType: 'text/plain' }),
    storage.delete('files/a'),
    (async () => {
      for await (const _ of storage.list('files/'));
    })(),
  ];

  const failures = async (storage: ObjectStorage) =>
    (await Promise.allSettled(everyCall(storage))).map((settled) =>
      settled.status === 'rejected' ? settled.reason : 'succeeded',
    );

  it('fails every call as the store being unavailable (a 503), not as an unknown error', async () => {
    const storage = await storageWhoseCredentialsRun('false');
    try {
      for (const failure of await failures(storage)) {
        expect(failure).toBeInstanceOf(DependencyUnavailableError);
        expect(failure).toMatchObject({ dependency: 'storage' });
      }
    } finally {
      await storage.close();
    }
  });

  it('gives up after S3_TIMEOUT_MS when the credential process never answers', async () => {
    // The SDK runs a credential_process with no time limit: only the driver's bound ends the wait.
    const storage = await storageWhoseCredentialsRun('sleep 20');
    try {
      for (const failure of await failures(storage)) {
        expect(failure).toMatchObject({
          dependency: 'storage',
          message: expect.stringMatching(/no answer within 300 ms/),
        });
      }
    } finally {
      await storage.close();
    }
  }, 10_000);
});
