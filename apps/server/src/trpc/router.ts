import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { z } from 'zod';
import { adminRouter } from '../modules/admin/admin.router.ts';
import { authRouter } from '../modules/auth/auth.router.ts';
import type { authResult, identityOutput, sessionOutput, signInResult } from '../modules/auth/auth.schemas.ts';
import { filesRouter } from '../modules/files/files.router.ts';
import type { fileOutput } from '../modules/files/files.schemas.ts';
import { healthRouter } from '../modules/health/health.router.ts';
import { notesRouter } from '../modules/notes/notes.router.ts';
import type { noteOutput } from '../modules/notes/notes.schemas.ts';
import { rbacRouter } from '../modules/rbac/rbac.router.ts';
import type { roleOutput } from '../modules/rbac/rbac.schemas.ts';
import { usersRouter } from '../modules/users/users.router.ts';
import type { userOutput } from '../modules/users/users.schemas.ts';
import { router } from './init.ts';

export const appRouter = router({
  health: healthRouter,
  auth: authRouter,
  users: usersRouter,
  rbac: rbacRouter,
  notes: notesRouter,
  files: filesRouter,
  admin: adminRouter,
});

export type AppRouter = typeof appRouter;
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;

// The shapes the API answers with, by their names in the OpenAPI document; the SDK's
// generated types (packages/sdk/src/router.gen.ts) use these names too.
/** A user account; `permissions` are the ones its roles grant. */
export type User = z.output<typeof userOutput>;
/** A role and the permissions it grants. */
export type Role = z.output<typeof roleOutput>;
/** A signed-in device (one refresh-token family). */
export type Session = z.output<typeof sessionOutput>;
/** The answer of every sign-in: the tokens and the user. */
export type AuthResult = z.output<typeof authResult>;
/** The answer of a sign-in that may have created the account (one-time codes, providers). */
export type SignInResult = z.output<typeof signInResult>;
/** A sign-in provider linked to the caller's account. */
export type Identity = z.output<typeof identityOutput>;
export type { ProviderId } from '../infra/oauth/provider.ts';
/** An uploaded file's metadata (the bytes: `GET /api/files/{id}/content`). */
export type StoredFile = z.output<typeof fileOutput>;
/** A note (the example module). */
export type Note = z.output<typeof noteOutput>;
export type { AppErrorCode, ValidationIssue } from '../errors/index.ts';
export type { Permission } from '../modules/rbac/permissions.ts';
export type { AppErrorData, AppErrorShape } from './error-formatter.ts';
