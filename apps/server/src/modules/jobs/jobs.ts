/**
 * The app's job queues and what runs them: `email`, `storage-delete` (the bytes of deleted
 * files), `publish-revocations` (ended sessions a process could not tell the store of) and
 * `maintenance`, scheduled (MAINTENANCE_INTERVAL) once across every process and
 * host: it purges what can never be used again and sweeps the file store, the backstop for
 * objects no job removed. `startWorker` takes jobs in this process (the server by default,
 * or `pnpm worker`).
 */
import type { QueueDefinition } from '../../infra/jobs.ts';
import type { Services } from '../../services.ts';
import { EMAIL_QUEUE, type EmailJob, runEmailJob } from '../auth/email-jobs.ts';
import { purgeExpiredFlows } from '../auth/oauth-flows.ts';
import { purgeSpentUserTokens } from '../auth/user-tokens.ts';
import { runStorageDeleteJob, STORAGE_DELETE_QUEUE, type StorageDeleteJob } from '../files/file-jobs.ts';
import { sweepFiles } from '../files/files.service.ts';
import {
  PUBLISH_REVOCATIONS_QUEUE,
  type PublishRevocationsJob,
  purgeEndedSessions,
  revocationLifetimeMs,
  runPublishRevocationsJob,
} from '../sessions/sessions.service.ts';

export const MAINTENANCE = 'maintenance';

export const QUEUES: QueueDefinition[] = [
  EMAIL_QUEUE,
  STORAGE_DELETE_QUEUE,
  PUBLISH_REVOCATIONS_QUEUE,
  // A missed run is no loss (the next one does its work): few, quick retries. A run its process's
  // shutdown stops between parts goes back to the queue, for a worker that stays.
  {
    name: MAINTENANCE,
    retryLimit: 2,
    retryDelaySeconds: 30,
    retryDelayMaxSeconds: 300,
    expireInSeconds: 15 * 60,
    resumable: true,
  },
];

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'log' | 'clock' | 'storage' | 'jobs' | 'tokens' | 'mailer'>;

/**
 * One maintenance run: each part on its own, so one failing does not stop the others (the job
 * then fails, and is retried). `signal` (the job's: it expired, or its process began to stop)
 * stops the run between parts, and the file sweep between objects.
 */
export async function runMaintenance(deps: Deps, signal?: AbortSignal): Promise<Record<string, number>> {
  const done: Record<string, number> = {};
  const failures: string[] = [];
  const parts: [string, () => Promise<Record<string, number>>][] = [
    ['sessions', async () => ({ sessions: await purgeEndedSessions(deps) })],
    ['links', async () => ({ links: await purgeSpentUserTokens(deps, { keepUsedMs: revocationLifetimeMs(deps) }) })],
    ['sign-ins', async () => ({ signIns: await purgeExpiredFlows(deps) })],
    ['files', () => sweepFiles(deps, signal)],
  ];
  for (const [name, part] of parts) {
    signal?.throwIfAborted();
    try {
      Object.assign(done, await part());
    } catch (error) {
      failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  // Stopped part-way (a part cut off by it fails too): the run is left for the next, not failed.
  signal?.throwIfAborted();
  if (failures.length > 0) throw new Error(`maintenance failed in part: ${failures.join('; ')}`);
  return done;
}

/** Every minute-long step of an interval, as the recurrence rule pg-boss schedules by. */
export function maintenanceRule(intervalSeconds: number): string {
  return `FREQ=MINUTELY;INTERVAL=${Math.max(1, Math.round(intervalSeconds / 60))}`;
}

/**
 * `startWorker`, tried again every `retryMs` until it works (the database may be away at
 * start-up) or the queue is stopped: jobs then wait, and are not lost.
 */
export function startWorkerWhenPossible(deps: Deps, retryMs = 5_000): void {
  const attempt = () => {
    if (deps.jobs.stopped) return;
    startWorker(deps).catch((error: unknown) => {
      deps.log.warn(
        { err: error },
        `the job worker did not start (trying again in ${retryMs / 1000} s): ${String(error)}`,
      );
      setTimeout(attempt, retryMs).unref();
    });
  };
  attempt();
}

/** Takes jobs in this process, and (re)declares the maintenance schedule. */
export async function startWorker(deps: Deps): Promise<void> {
  await deps.jobs.schedule(MAINTENANCE, maintenanceRule(deps.config.jobs.maintenanceIntervalSeconds));
  await deps.jobs.work(EMAIL_QUEUE.name, deps.config.jobs.concurrency, (job) =>
    runEmailJob(deps, { id: job.id, data: job.data as EmailJob, signal: job.signal }),
  );
  await deps.jobs.work(STORAGE_DELETE_QUEUE.name, deps.config.jobs.concurrency, (job) =>
    runStorageDeleteJob(deps, { id: job.id, data: job.data as StorageDeleteJob }),
  );
  await deps.jobs.work(PUBLISH_REVOCATIONS_QUEUE.name, 1, (job) =>
    runPublishRevocationsJob(deps, { data: job.data as PublishRevocationsJob }),
  );
  await deps.jobs.work(MAINTENANCE, 1, async (job) => {
    const done = await runMaintenance(deps, job.signal);
    if (Object.values(done).some((count) => count > 0)) deps.log.info({ jobId: job.id, ...done }, 'maintenance done');
  });
}
