/**
 * Files on the local disk (development, one-host deployments). A write goes to a temporary
 * file in the same directory and is renamed into place once whole, so a reader never sees
 * half an object and a failed upload leaves nothing behind. Each call on the disk (open,
 * stat, rename, remove…) gives up after `timeoutMs` (a hung network mount is a 503, not a
 * request that never ends); the bytes themselves flow at the pace of the request's client.
 */
import { randomBytes } from 'node:crypto';
import type { Dir } from 'node:fs';
import { copyFile, type FileHandle, lstat, mkdir, open, opendir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DependencyUnavailableError } from '../dependency-errors.ts';
import { withTimeout } from '../with-timeout.ts';
import type { ByteRange, ObjectInfo, ObjectStorage } from './storage.ts';

/** The largest buffer a read takes (the stream's default). */
const READ_CHUNK_BYTES = 64 * 1024;

/** No such object: nothing at the path, or a path through something that is not a folder. */
const isMissing = (error: unknown) =>
  (error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR';

/** A disk that fails (full, read-only, gone) is the storage being unavailable: a 503. */
const unavailable = (what: string, error: unknown) =>
  new DependencyUnavailableError(
    'storage',
    `the file storage could not ${what}: ${error instanceof Error ? error.message : error}`,
    {
      cause: error,
    },
  );

export function localStorage(dir: string, { timeoutMs }: { timeoutMs: number }): ObjectStorage {
  const root = path.resolve(dir);
  /**
   * `call`, or the storage unavailable once it has taken `timeoutMs`; what it opens after
   * that (a file handle) is handed to `lateResult` to be let go.
   */
  const bounded = <T>(what: string, call: Promise<T>, lateResult?: (value: T) => unknown): Promise<T> =>
    withTimeout(
      () => call,
      timeoutMs,
      () => {
        if (lateResult) call.then(lateResult, () => undefined);
        return unavailable(what, new Error(`the disk gave no answer within ${timeoutMs} ms`));
      },
    );
  /** The disk's own failure as the storage unavailable (one already said so stays as it is). */
  const failure = (what: string, error: unknown) =>
    error instanceof DependencyUnavailableError ? error : unavailable(what, error);
  /** Keys are generated (`files/<uuid>`); anything that would leave the root is refused. */
  const pathOf = (key: string) => {
    const full = path.resolve(root, key);
    if (!full.startsWith(`${root}${path.sep}`)) throw new Error(`storage key outside the root: ${key}`);
    return full;
  };
  /** A file under the key (a folder is not an object), or undefined; a disk that fails is unavailable. */
  const fileAt = async (full: string) => {
    try {
      const info = await bounded('read', stat(full));
      return info.isFile() ? info : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw failure('read', error);
    }
  };

  return {
    driver: 'local',

    async put(key: string, body: Readable): Promise<void> {
      const target = pathOf(key);
      const temporary = `${target}.tmp-${randomBytes(6).toString('hex')}`;
      try {
        await bounded('write', mkdir(path.dirname(target), { recursive: true }));
        // Opened first, within the time limit (a hung mount is a 503, not an upload that never ends).
        const file = await bounded('write', open(temporary, 'wx'), (late) => late.close());
        await pipeline(body, file.createWriteStream());
        await bounded('write', rename(temporary, target));
      } catch (error) {
        await bounded('write', rm(temporary, { force: true })).catch(() => undefined);
        // Also when the body failed: the caller, who made it, knows whether that was the reason.
        throw failure('write', error);
      }
    },

    async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
      // Opened first, then checked through the handle: four operations per read (open, stat,
      // read, close), none for a file that went meanwhile, and a buffer of the object's size.
      const file = pathOf(key); // (a key outside the root is a bug, not the disk failing)
      let handle: FileHandle;
      try {
        handle = await bounded('read', open(file, 'r'), (late) => late.close());
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw failure('read', error);
      }
      try {
        const info = await bounded('read', handle.stat());
        if (!info.isFile()) {
          await handle.close();
          return undefined;
        }
        const start = range?.start ?? 0;
        const end = range?.end ?? info.size - 1;
        if (end < start) {
          await handle.close();
          return Readable.from([]);
        }
        // Ends at `end` exactly (no read to find the end); closes the handle when done or destroyed.
        return handle.createReadStream({ start, end, highWaterMark: Math.min(READ_CHUNK_BYTES, end - start + 1) });
      } catch (error) {
        handle.close().catch(() => undefined);
        throw failure('read', error);
      }
    },

    async head(key: string): Promise<ObjectInfo | undefined> {
      const info = await fileAt(pathOf(key));
      return info && { key, size: info.size, lastModified: info.mtime };
    },

    async copy(from: string, to: string): Promise<boolean> {
      const target = pathOf(to);
      const temporary = `${target}.tmp-${randomBytes(6).toString('hex')}`;
      try {
        await bounded('copy', mkdir(path.dirname(target), { recursive: true }));
        // The copy itself takes as long as the object is large: not bounded.
        await copyFile(pathOf(from), temporary);
        await bounded('copy', rename(temporary, target));
        return true;
      } catch (error) {
        await bounded('copy', rm(temporary, { force: true })).catch(() => undefined);
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !(await fileAt(pathOf(from)))) return false;
        throw failure('copy', error);
      }
    },

    async delete(key: string): Promise<void> {
      const file = pathOf(key);
      await bounded('delete', rm(file, { force: true })).catch((error: unknown) => {
        throw failure('delete', error);
      });
    },

    // The maintenance sweep's walk, one folder at a time (Node's recursive walk reads the
    // folders below the first with blocking calls): each folder read a few entries at a time,
    // each read and each entry's stat bounded as every other call (a big folder takes its
    // time, a hung one fails); a disk that fails fails the walk, never passing for an empty folder.
    // Each folder's names are read whole and sorted, a folder's as `name/`, so keys come in the
    // order S3 lists them (and a walk goes on after a key without a stat of those before it;
    // S3 starts there at once).
    async *list(prefix: string, options: { after?: string } = {}): AsyncIterable<ObjectInfo> {
      const { after } = options;
      // A prefix is a folder here (`files/`); the empty one is the whole store.
      const folder = prefix.replace(/\/+$/, '');
      const keyOf = (full: string) => path.relative(root, full).split(path.sep).join('/');
      async function* walk(dir: string): AsyncGenerator<ObjectInfo> {
        // Each entry by its name, a folder's as `name/` (no name holds a '/').
        const names: string[] = [];
        let reading: Dir;
        try {
          reading = await bounded('list', opendir(dir), (late) => late.close().catch(() => undefined));
        } catch (error) {
          if (isMissing(error)) return; // nothing stored under it (yet, or any more)
          throw failure('list', error);
        }
        try {
          for (;;) {
            const entry = await bounded('list', reading.read()).catch((error: unknown) => {
              throw failure('list', error);
            });
            if (entry === null) break;
            // (A link is no object the store wrote: not followed, not listed.)
            if (entry.isDirectory()) names.push(`${entry.name}/`);
            else if (entry.isFile()) names.push(entry.name);
          }
        } finally {
          // Not awaited: on a hung disk, closing would hang as the read did.
          reading.close().catch(() => undefined);
        }
        names.sort(); // (by UTF-16 code units: S3's byte order for the keys the app makes)
        for (const name of names) {
          const full = path.join(dir, name);
          const key = keyOf(full);
          if (name.endsWith('/')) {
            // Every key below it sorts before `after`: not read.
            if (after !== undefined && `${key}/` < after && !after.startsWith(`${key}/`)) continue;
            yield* walk(full);
            continue;
          }
          if (after !== undefined && key <= after) continue;
          // (Gone since it was read, as a sweep or a delete may do: not listed.)
          const info = await bounded('list', lstat(full)).catch((error: unknown) => {
            if (isMissing(error)) return undefined;
            throw failure('list', error);
          });
          // An unfinished write (a crash mid-upload) is listed too, so a sweep can remove it.
          if (info?.isFile()) yield { key, size: info.size, lastModified: info.mtime };
        }
      }
      yield* walk(folder ? pathOf(folder) : root);
    },

    async close(): Promise<void> {},
  };
}
