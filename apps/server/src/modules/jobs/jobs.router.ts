import { z } from 'zod';
import { AppError } from '../../errors/index.ts';
import { router } from '../../trpc/init.ts';
import { requirePermission } from '../../trpc/procedures.ts';
import { id, isoDateTime, ok } from '../common-schemas.ts';
import { QUEUES } from './jobs.ts';

const tags = ['admin'];
const queue = z.enum(QUEUES.map((q) => q.name) as [string, ...string[]]);
// Job ids are UUIDs (pg-boss's column): anything else is a 400, never a query Postgres refuses.
const jobRef = z.object({ queue, id });

const countsOutput = z.array(
  z.object({
    queue: z.string(),
    ready: z.int().meta({ description: 'Waiting to run now' }),
    deferred: z.int().meta({ description: 'Waiting for a later time (a retry backing off, a scheduled start)' }),
    active: z.int(),
    failed: z.int().meta({ description: 'Failed after the last try (kept for the retention period)' }),
  }),
);
const failedOutput = z.array(
  z.object({
    id: z.string(),
    queue: z.string(),
    data: z.unknown(),
    error: z.string().meta({ description: 'What the last try ended with' }),
    tries: z.int(),
    createdAt: isoDateTime,
    failedAt: isoDateTime.nullable(),
  }),
);

const notFailed = () => new AppError('NOT_FOUND', 'No failed job with this id');

export const jobsRouter = router({
  counts: requirePermission('jobs:manage')
    .meta({
      openapi: {
        method: 'GET',
        path: '/admin/jobs',
        tags,
        summary: 'Each job queue: ready, deferred, active and failed jobs',
      },
    })
    .input(z.void())
    .output(countsOutput)
    .query(({ ctx }) => ctx.services.jobs.counts()),

  failed: requirePermission('jobs:manage')
    .meta({
      openapi: {
        method: 'GET',
        path: '/admin/jobs/failed',
        tags,
        summary: 'Failed jobs, the latest first, with their errors',
      },
    })
    .input(z.object({ limit: z.number().int().min(1).max(100).default(20) }))
    .output(failedOutput)
    .query(({ ctx, input }) => ctx.services.jobs.failed(input.limit)),

  retry: requirePermission('jobs:manage')
    .meta({
      openapi: {
        method: 'POST',
        path: '/admin/jobs/{queue}/{id}/retry',
        tags,
        summary: 'Run a failed job again (its tries start over)',
        description:
          'Queued at once, with as many tries as a new job; a try that fails again waits up to its queue’s ' +
          'longest delay before the next. `admin.jobs.failed` counts every try the job has had.',
      },
      errors: ['NOT_FOUND'],
    })
    .input(jobRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      if (!(await ctx.services.jobs.retry(input.queue, input.id))) throw notFailed();
      return { ok: true as const };
    }),

  discard: requirePermission('jobs:manage')
    .meta({
      openapi: { method: 'DELETE', path: '/admin/jobs/{queue}/{id}', tags, summary: 'Delete a failed job for good' },
      errors: ['NOT_FOUND'],
    })
    .input(jobRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      if (!(await ctx.services.jobs.discard(input.queue, input.id))) throw notFailed();
      return { ok: true as const };
    }),
});
