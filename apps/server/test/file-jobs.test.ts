/**
 * The bytes of deleted files go by durable jobs (queue `storage-delete`), queued in the
 * transaction that deletes the rows: with real stores (a temporary FILES_DIR, s3rver) and the
 * real queue in the test database. A deletion queues its job and the job removes the objects;
 * a deletion whose transaction fails keeps rows and bytes and queues nothing; an account's
 * objects go, alone or in a batch; a store that is away (s3rver behind a cut TCP proxy) has
 * the job retried until it is back, or kept as failed for an administrator to retry.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Storage } from '../src/infra/storage/s3.ts';
import {
  KEYS_PER_JOB,
  runStorageDeleteJob,
  STORAGE_DELETE_QUEUE,
  type StorageDeleteJob,
} from '../src/modules/files/file-jobs.ts';
import { deleteFile, storeUpload } from '../src/modules/files/files.service.ts';
import { deleteUser } from '../src/modules/users/users.service.ts';
import { deleteMany } from '../src/modules/users/users-batch.service.ts';
import {
  type Account,
  bearer,
  buildTestApp,
  registerAccount,
  registerAdmin,
  type S3Server,
  startS3Server,
  startTcpProxy,
  type TestApp,
  until,
} from './helpers/index.ts';

type FilesApp = TestApp & { close(): Promise<void> };

const s3Env = (s3: S3Server, endpoint = s3.endpoint) => ({
  STORAGE_DRIVER: 's3',
  S3_BUCKET: s3.bucket,
  S3_ENDPOINT: endpoint,
  S3_ACCESS_KEY_ID: s3.accessKeyId,
  S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  S3_REGION: s3.region,
  S3_FORCE_PATH_STYLE: 'true',
  S3_TIMEOUT_MS: '2000',
});

/** An app over a fresh database and store of its own: a temporary FILES_DIR, or `s3`. */
async function startFilesApp(options: { driver: 'local' | 's3'; s3?: S3Server; s3Endpoint?: string }) {
  const dir = options.driver === 'local' ? await mkdtemp(path.join(os.tmpdir(), 'file-jobs-')) : undefined;
  const s3 = options.driver === 's3' ? (options.s3 ?? (await startS3Server())) : undefined;
  const t = await buildTestApp({
    env: {
      RATE_LIMIT_DEFAULT_PER_MINUTE: '1000000',
      ...(dir && { FILES_DIR: dir }),
      ...(s3 && s3Env(s3, options.s3Endpoint)),
    },
  });
  return {
    ...t,
    async close() {
      await t.close();
      if (dir) await rm(dir, { recursive: true, force: true });
      if (s3 && !options.s3) await s3.close();
    },
  } satisfies FilesApp;
}

/** A file of `owner`'s, stored through the upload path itself; with its storage key. */
async function storedFile(t: FilesApp, owner: Account, name = 'notes.txt') {
  const file = await storeUpload(t.services, {
    ownerId: owner.id,
    name,
    body: Readable.from([Buffer.from(`${name}: ${randomBytes(8).toString('hex')}\n`)]),
  });
  const row = await t.services.db
    .selectFrom('files')
    .select('storage_key')
    .where('id', '=', file.id)
    .executeTakeFirstOrThrow();
  return { id: file.id, key: row.storage_key };
}

const rowsOf = (t: FilesApp, ownerId: string) =>
  t.services.db.selectFrom('files').select('storage_key').where('owner_id', '=', ownerId).execute();

/** Every `storage-delete` job (in any state), oldest first. */
async function removalJobs(t: FilesApp) {
  const boss = await t.services.jobs.ready();
  return boss.findJobs<StorageDeleteJob>(STORAGE_DELETE_QUEUE.name);
}

/** The `storage-delete` jobs that name any of `keys`. */
async function removalJobsOf(t: FilesApp, keys: string[]) {
  return (await removalJobs(t)).filter((job) => job.data.keys.some((key) => keys.includes(key)));
}

/** Waits until every queued removal has run (a retry waiting out its backoff does not count). */
const removalsRun = (t: FilesApp) => t.services.jobs.settle([STORAGE_DELETE_QUEUE.name]);

const present = async (t: FilesApp, keys: string[]) =>
  (await Promise.all(keys.map(async (key) => ((await t.services.storage.head(key)) ? key : undefined)))).filter(
    (key) => key !== undefined,
  );

/**
 * Makes the commit of any transaction that deleted a file named `undeletable.txt` fail: a
 * deferred constraint trigger fires at COMMIT, after everything the transaction did,
 * removals queued included.
 */
async function refuseCommitsDeleting(t: FilesApp, name: string): Promise<void> {
  await sql`create or replace function refuse_commit() returns trigger language plpgsql as $$
    begin raise exception 'the commit was refused'; end $$`.execute(t.services.db);
  await sql`create constraint trigger files_refuse_delete after delete on files
    deferrable initially deferred for each row when (old.name = ${sql.lit(name)})
    execute function refuse_commit()`.execute(t.services.db);
}

describe.each(['local', 's3'] as const)('removing the bytes of deleted files (%s storage)', (driver) => {
  let t: FilesApp;
  let admin: Account;
  beforeAll(async () => {
    t = await startFilesApp({ driver });
    admin = await registerAdmin(t.app, t.services.db);
    await refuseCommitsDeleting(t, 'undeletable.txt');
  });
  afterAll(() => t?.close());

  const rest = (account: Account, method: 'DELETE' | 'POST', url: string, payload?: object) =>
    t.app.inject({ method, url, headers: bearer(account), ...(payload && { payload }) });

  it('deleting a file queues one job with its key, in the same transaction, and the job removes the object', async () => {
    const owner = await registerAccount(t.app);
    const file = await storedFile(t, owner);
    const other = await storedFile(t, owner, 'other.txt');

    expect((await rest(owner, 'DELETE', `/api/files/${file.id}`)).json()).toEqual({ ok: true });
    const [job, ...more] = await removalJobsOf(t, [file.key]);
    expect(more).toEqual([]);
    expect(job?.data).toEqual({ keys: [file.key] });
    expect(await rowsOf(t, owner.id)).toEqual([{ storage_key: other.key }]);

    await removalsRun(t);
    expect(await present(t, [file.key, other.key])).toEqual([other.key]);
    const boss = await t.services.jobs.ready();
    expect((await boss.findJobs(STORAGE_DELETE_QUEUE.name, { id: job?.id as string }))[0]?.state).toBe('completed');
    // Run again (a worker that died before it could report): the objects are already gone, which is success.
    await expect(
      runStorageDeleteJob(t.services, { id: job?.id as string, data: { keys: [file.key, `files/${randomUUID()}`] } }),
    ).resolves.toBeUndefined();
  });

  it('a deletion whose transaction fails after queuing keeps the rows and the bytes, and queues nothing', async () => {
    const owner = await registerAccount(t.app);
    const kept = await storedFile(t, owner, 'undeletable.txt');
    const sibling = await storedFile(t, owner, 'sibling.txt');
    const keys = [kept.key, sibling.key];
    const jobsBefore = (await removalJobs(t)).length;

    await expect(
      deleteFile(t.services, { id: kept.id, viewer: { userId: owner.id, mayAccessAny: async () => false } }),
    ).rejects.toThrow(/the commit was refused/);
    await expect(deleteUser(t.services, owner.id)).rejects.toThrow(/the commit was refused/);
    const second = await registerAccount(t.app);
    const secondFile = await storedFile(t, second);
    // One transaction for the batch: the second account's deletion goes back with the first's.
    await expect(deleteMany(t.services, { ids: [second.id, owner.id], atomic: true }, new Set())).rejects.toThrow(
      /the commit was refused/,
    );

    await removalsRun(t);
    expect((await removalJobs(t)).length).toBe(jobsBefore);
    expect(await removalJobsOf(t, [...keys, secondFile.key])).toEqual([]);
    expect((await rowsOf(t, owner.id)).map((row) => row.storage_key).sort()).toEqual([...keys].sort());
    expect(await rowsOf(t, second.id)).toEqual([{ storage_key: secondFile.key }]);
    expect((await present(t, [...keys, secondFile.key])).sort()).toEqual([...keys, secondFile.key].sort());
    const users = await t.services.db
      .selectFrom('users')
      .select('id')
      .where('id', 'in', [owner.id, second.id])
      .execute();
    expect(users).toHaveLength(2);
  });

  it('deleting an account, by an administrator or by its owner, removes all its objects by its job', async () => {
    const byAdmin = await registerAccount(t.app);
    const byOwner = await registerAccount(t.app);
    const bystander = await registerAccount(t.app);
    const adminKeys = [(await storedFile(t, byAdmin, 'a.txt')).key, (await storedFile(t, byAdmin, 'b.txt')).key];
    const ownerKeys = [(await storedFile(t, byOwner, 'c.txt')).key, (await storedFile(t, byOwner, 'd.txt')).key];
    const kept = await storedFile(t, bystander);

    expect((await rest(admin, 'DELETE', `/api/users/${byAdmin.id}`)).statusCode).toBe(200);
    const deletedMe = await t.app.inject({
      method: 'DELETE',
      url: '/api/users/me',
      headers: bearer(byOwner),
      payload: { password: byOwner.password },
    });
    expect(deletedMe.statusCode).toBe(200);
    // One job per deletion, naming exactly that account's keys.
    expect((await removalJobsOf(t, adminKeys)).map((job) => job.data.keys.sort())).toEqual([adminKeys.sort()]);
    expect((await removalJobsOf(t, ownerKeys)).map((job) => job.data.keys.sort())).toEqual([ownerKeys.sort()]);

    await removalsRun(t);
    expect(await present(t, [...adminKeys, ...ownerKeys, kept.key])).toEqual([kept.key]);
  });

  it.each([false, true])(
    'a batch deletion (atomic: %s) removes every account’s objects by their jobs',
    async (atomic) => {
      const accounts = [await registerAccount(t.app), await registerAccount(t.app)];
      const keys: string[] = [];
      for (const account of accounts) {
        keys.push((await storedFile(t, account, 'one.txt')).key, (await storedFile(t, account, 'two.txt')).key);
      }
      const answer = await rest(admin, 'POST', '/api/users/batch-delete', { ids: accounts.map((a) => a.id), atomic });
      expect(answer.json()).toMatchObject({ succeeded: 2, failed: 0 });
      const jobs = await removalJobsOf(t, keys);
      expect(jobs.flatMap((job) => job.data.keys).sort()).toEqual([...keys].sort());

      await removalsRun(t);
      expect(await present(t, keys)).toEqual([]);
    },
  );

  if (driver === 'local') {
    it(`queues an account's many objects as jobs of at most ${KEYS_PER_JOB} keys`, async () => {
      const owner = await registerAccount(t.app);
      const keys = Array.from({ length: 2 * KEYS_PER_JOB + 5 }, () => `files/${randomUUID()}`);
      for (const key of keys) {
        await t.services.storage.put(key, Readable.from([Buffer.from('x')]), { contentType: 'text/plain' });
      }
      await t.services.db
        .insertInto('files')
        .values(
          keys.map((key, index) => ({
            owner_id: owner.id,
            name: `${index}.txt`,
            content_type: 'text/plain',
            size: 1,
            storage_key: key,
            status: 'ready' as const,
          })),
        )
        .execute();

      expect((await rest(admin, 'DELETE', `/api/users/${owner.id}`)).statusCode).toBe(200);
      const jobs = await removalJobsOf(t, keys);
      expect(jobs.map((job) => job.data.keys.length).sort((a, b) => a - b)).toEqual([5, KEYS_PER_JOB, KEYS_PER_JOB]);
      expect(jobs.flatMap((job) => job.data.keys).sort()).toEqual([...keys].sort());
      await removalsRun(t);
      expect(await present(t, keys)).toEqual([]);
    });
  }
});

describe('a store that is away when the bytes are to be removed (s3rver behind a cut TCP proxy)', () => {
  let s3: S3Server;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let t: FilesApp;
  let admin: Account;
  /** The store itself, not through the proxy: what it holds while the app cannot reach it. */
  let direct: ReturnType<typeof s3Storage>;
  beforeAll(async () => {
    s3 = await startS3Server();
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(s3.endpoint).port) });
    t = await startFilesApp({ driver: 's3', s3, s3Endpoint: `http://127.0.0.1:${proxy.port}` });
    admin = await registerAdmin(t.app, t.services.db);
    direct = s3Storage({
      bucket: s3.bucket,
      region: s3.region,
      endpoint: s3.endpoint,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      forcePathStyle: true,
      timeoutMs: 5_000,
      bodyIdleMs: 60_000,
    });
  });
  afterAll(async () => {
    await t?.close();
    await direct?.close();
    await proxy?.close();
    await s3?.close();
  });

  /** The production backoff lasts hours: this queue's tries come a second apart here. */
  const triesASecondApart = async (retryLimit: number) => {
    const boss = await t.services.jobs.ready();
    await boss.updateQueue(STORAGE_DELETE_QUEUE.name, {
      retryLimit,
      retryDelay: 1,
      retryBackoff: true,
      retryDelayMax: 1,
    });
  };
  const jobOf = async (key: string) => {
    const [job] = await removalJobsOf(t, [key]);
    if (!job) throw new Error(`no removal job for ${key}`);
    return job;
  };

  it('retries the job while the store is away, and removes the bytes once it is back', async () => {
    await triesASecondApart(20);
    const owner = await registerAccount(t.app);
    const file = await storedFile(t, owner);
    proxy.cut();
    try {
      // The row goes at once: the deletion needs the database, not the store.
      const deleted = await t.app.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: bearer(owner) });
      expect(deleted.json()).toEqual({ ok: true });
      const { id } = await jobOf(file.key);
      const boss = await t.services.jobs.ready();
      await until(
        async () => ((await boss.findJobs(STORAGE_DELETE_QUEUE.name, { id }))[0]?.retryCount ?? 0) >= 2,
        'two failed tries',
      );
      expect(await direct.head(file.key)).toBeDefined();
    } finally {
      proxy.restore();
    }
    const { id } = await jobOf(file.key);
    const boss = await t.services.jobs.ready();
    const done = await until(async () => {
      const [job] = await boss.findJobs(STORAGE_DELETE_QUEUE.name, { id });
      return job?.state === 'completed' ? job : undefined;
    }, 'the job to complete');
    expect(done.retryCount).toBeGreaterThanOrEqual(2);
    expect(await direct.head(file.key)).toBeUndefined();
  });

  it('keeps the job as failed after its last try, with the store’s error, for an administrator to retry', async () => {
    await triesASecondApart(2);
    const owner = await registerAccount(t.app);
    const file = await storedFile(t, owner);
    proxy.cut();
    try {
      const deleted = await t.app.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: bearer(owner) });
      expect(deleted.json()).toEqual({ ok: true });
      const { id } = await jobOf(file.key);
      const failed = await until(async () => {
        const answer = await t.app.inject({ method: 'GET', url: '/api/admin/jobs/failed', headers: bearer(admin) });
        return (answer.json() as { id: string; queue: string; data: unknown; error: string; tries: number }[]).find(
          (job) => job.id === id,
        );
      }, 'the job to fail for good');
      expect(failed).toMatchObject({ queue: STORAGE_DELETE_QUEUE.name, data: { keys: [file.key] }, tries: 3 });
      expect(failed.error).toMatch(/S3 delete failed/);
      const counts = await t.app.inject({ method: 'GET', url: '/api/admin/jobs', headers: bearer(admin) });
      expect(counts.json()).toContainEqual(expect.objectContaining({ queue: STORAGE_DELETE_QUEUE.name, failed: 1 }));
      expect(await direct.head(file.key)).toBeDefined();

      proxy.restore();
      const retried = await t.app.inject({
        method: 'POST',
        url: `/api/admin/jobs/${STORAGE_DELETE_QUEUE.name}/${id}/retry`,
        headers: bearer(admin),
      });
      expect(retried.json()).toEqual({ ok: true });
      await until(async () => (await direct.head(file.key)) === undefined, 'the retried job to remove the object');
    } finally {
      proxy.restore();
    }
  });
});
