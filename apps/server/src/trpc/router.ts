import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { adminRouter } from '../modules/admin/admin.router.ts';
import { authRouter } from '../modules/auth/auth.router.ts';
import { healthRouter } from '../modules/health/health.router.ts';
import { notesRouter } from '../modules/notes/notes.router.ts';
import { rbacRouter } from '../modules/rbac/rbac.router.ts';
import { usersRouter } from '../modules/users/users.router.ts';
import { router } from './init.ts';

export const appRouter = router({
  health: healthRouter,
  auth: authRouter,
  users: usersRouter,
  rbac: rbacRouter,
  notes: notesRouter,
  admin: adminRouter,
});

export type AppRouter = typeof appRouter;
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type { AppErrorCode, ValidationIssue } from '../errors/index.ts';
export type { AppErrorData } from './error-formatter.ts';
