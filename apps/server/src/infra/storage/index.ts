import type { Config } from '../../config.ts';
import { localStorage } from './local.ts';
import type { ObjectStorage } from './storage.ts';

export type { ByteRange, ObjectInfo, ObjectStorage } from './storage.ts';

/**
 * The configured store: the local disk (`FILES_DIR`) or an S3-compatible bucket. The AWS
 * SDK is loaded only for S3 (a tenth of a second of start-up otherwise).
 */
export async function createStorage(files: Config['files']): Promise<ObjectStorage> {
  if (files.driver !== 's3') return localStorage(files.dir, { timeoutMs: files.diskTimeoutMs });
  const { s3Storage } = await import('./s3.ts');
  return s3Storage(files.s3);
}
