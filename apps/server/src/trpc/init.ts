import { initTRPC } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import type { AppErrorCode } from '../errors/index.ts';
import type { Context } from './context.ts';
import { formatError } from './error-formatter.ts';

/**
 * A procedure's meta: its REST route (`openapi`), and `errors`, the app codes its own
 * resolver and services can answer. The codes its middleware can answer (sign-in,
 * permission, rate limit) and input validation are added by the builders, so the OpenAPI
 * document lists every one (see procedure-errors.ts).
 */
export type AppMeta = OpenApiMeta<{ errors?: readonly AppErrorCode[] }>;

export const t = initTRPC.context<Context>().meta<AppMeta>().create({
  errorFormatter: formatError,
  // Stacks are added by formatError, in development only.
  isDev: false,
});

export const router = t.router;
