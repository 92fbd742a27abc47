import { TRPCError } from '@trpc/server';
import { AppError } from '../errors.ts';
import { t } from './init.ts';

/** Services throw AppError; this turns it into the TRPCError whose code sets the HTTP status. */
const appErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof AppError) {
    const cause = result.error.cause;
    throw new TRPCError({ code: cause.trpcCode, message: cause.message, cause });
  }
  return result;
});

export const publicProcedure = t.procedure.use(appErrors);
