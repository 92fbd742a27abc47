import { initTRPC } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import type { Context } from './context.ts';
import { formatError } from './error-formatter.ts';

export const t = initTRPC.context<Context>().meta<OpenApiMeta>().create({
  errorFormatter: formatError,
  // Stacks are added by formatError, in development only.
  isDev: false,
});

export const router = t.router;
