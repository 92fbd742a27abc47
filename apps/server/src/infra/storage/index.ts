import type { Config } from '../../config.ts';
import { localStorage } from './local.ts';
import { s3Storage } from './s3.ts';
import type { ObjectStorage } from './storage.ts';

export type { ByteRange, ObjectInfo, ObjectStorage } from './storage.ts';

/** The configured store: the local disk (`FILES_DIR`) or an S3-compatible bucket. */
export function createStorage(files: Config['files']): ObjectStorage {
  return files.driver === 's3' ? s3Storage(files.s3) : localStorage(files.dir);
}
