/**
 * Removing stored bytes as a durable job (queue `storage-delete`): whatever deletes the rows
 * that name objects queues their keys in the same transaction, so the rows are gone and the
 * removal is queued, both or neither. The job is idempotent (an object already missing is
 * removed), so a retried try, or one after a worker died midway, only finishes the work; a
 * store that fails throws, and the try is retried with backoff, then kept as failed
 * (`admin.jobs.failed`). `sweepFiles` stays as the backstop for objects nothing queued.
 */
import type { QueueDefinition } from '../../infra/jobs.ts';
import type { Services } from '../../services.ts';

export const STORAGE_DELETE_QUEUE: QueueDefinition = {
  name: 'storage-delete',
  // Hours of tries (10 s doubling, at most an hour apart): an outage of the store is waited out.
  retryLimit: 12,
  retryDelaySeconds: 10,
  retryDelayMaxSeconds: 3_600,
  // A try removes up to KEYS_PER_JOB objects, each request bounded by S3_TIMEOUT_MS.
  expireInSeconds: 600,
  // A worker killed midway: the rest of its keys are removed by another try within about 30 s.
  heartbeatSeconds: 30,
};

/** A deletion of more keys is queued as several jobs: each try stays short, and workers share them. */
export const KEYS_PER_JOB = 100;

export interface StorageDeleteJob {
  keys: string[];
}

/**
 * Queues the removal of `keys` through `deps.db`, the caller's transaction that deletes the
 * rows naming them: the jobs exist only if that transaction commits.
 */
export async function enqueueStorageDelete(deps: Pick<Services, 'db' | 'jobs'>, keys: string[]): Promise<void> {
  for (let start = 0; start < keys.length; start += KEYS_PER_JOB) {
    const job: StorageDeleteJob = { keys: keys.slice(start, start + KEYS_PER_JOB) };
    await deps.jobs.send(STORAGE_DELETE_QUEUE.name, job, { db: deps.db });
  }
}

/**
 * Runs one job: removes its objects one after another. Both drivers treat a missing object as
 * removed; any other failure of the store throws, so pg-boss tries the whole job again.
 */
export async function runStorageDeleteJob(
  deps: Pick<Services, 'storage' | 'log'>,
  job: { id: string; data: StorageDeleteJob },
): Promise<void> {
  for (const key of job.data.keys) await deps.storage.delete(key);
  deps.log.info({ jobId: job.id, objects: job.data.keys.length }, 'file objects deleted');
}
