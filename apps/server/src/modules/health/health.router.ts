import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import { unlimitedProcedure } from '../../trpc/procedures.ts';
import { liveOutput, readyOutput } from './health.schemas.ts';
import * as health from './health.service.ts';

export const healthRouter = router({
  live: unlimitedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/health',
        tags: ['health'],
        summary: 'Liveness: the process answers',
      },
    })
    .input(z.void())
    .output(liveOutput)
    .query(({ ctx }) => health.live(ctx.services)),

  ready: unlimitedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/health/ready',
        tags: ['health'],
        summary: 'Readiness: the database and Redis answer',
        description: 'Answers 503 naming the failing check when a dependency is down.',
      },
      errors: ['DEPENDENCY_DOWN'],
    })
    .input(z.void())
    .output(readyOutput)
    .query(({ ctx }) => health.ready(ctx.services)),
});
