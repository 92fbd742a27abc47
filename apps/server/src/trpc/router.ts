import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { healthRouter } from '../modules/health/health.router.ts';
import { router } from './init.ts';

export const appRouter = router({
  health: healthRouter,
});

export type AppRouter = typeof appRouter;
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type { AppErrorCode } from '../errors.ts';
export type { AppErrorData, ValidationIssue } from './error-formatter.ts';
