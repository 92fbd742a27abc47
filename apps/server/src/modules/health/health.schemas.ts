import { z } from 'zod';

export const checkStatus = z.enum(['ok', 'down', 'disabled']).meta({
  description: '"disabled" when the dependency is not configured (Redis on embedded defaults)',
});

export const liveOutput = z.object({
  status: z.literal('ok'),
  version: z.string(),
  uptimeSeconds: z.number().int().nonnegative(),
});

export const readyOutput = z.object({
  status: z.literal('ok'),
  checks: z.object({ database: checkStatus, redis: checkStatus }),
  jobs: z.object({ ready: z.int(), oldestWaitingSeconds: z.int() }).optional().meta({
    description:
      'Only when jobs pile up (the oldest waiting over a minute: no worker, or too few): how many wait to run, and for how long. Not a reason to stop routing traffic here.',
  }),
});

export type CheckStatus = z.infer<typeof checkStatus>;
export type ReadyChecks = z.infer<typeof readyOutput>['checks'];
export type JobBacklog = NonNullable<z.infer<typeof readyOutput>['jobs']>;
