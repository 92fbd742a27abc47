import { z } from 'zod';
import { AppError } from '../../src/errors/index.ts';
import { router, t } from '../../src/trpc/init.ts';
import { publicProcedure } from '../../src/trpc/procedures.ts';
import { appRouter } from '../../src/trpc/router.ts';

/**
 * Procedures that exist only in tests, mounted beside the real ones, to exercise the
 * transport contract (validation, AppError mapping, internal errors) on both transports.
 */
const probeRouter = router({
  probe: router({
    echo: publicProcedure
      .meta({ openapi: { method: 'POST', path: '/probe/echo', tags: ['probe'], protect: false } })
      .input(z.object({ name: z.string().min(2).max(20), count: z.number().int().max(10) }))
      .output(z.object({ name: z.string(), count: z.number() }))
      .mutation(({ input }) => input),
    fail: publicProcedure
      .meta({ openapi: { method: 'GET', path: '/probe/fail', tags: ['probe'], protect: false } })
      .input(z.object({ kind: z.enum(['conflict', 'internal']) }))
      .output(z.object({ ok: z.boolean() }))
      .query(({ input }) => {
        if (input.kind === 'conflict')
          throw new AppError('CONFLICT', 'That name is taken', { details: { field: 'name' } });
        throw new Error('relation "secret_table" does not exist: select * from secret_table');
      }),
    /** An answer with a key its output schema does not know, or of the wrong type. */
    shape: publicProcedure
      .input(z.object({ kind: z.enum(['extra', 'wrong']) }))
      .output(z.object({ n: z.number() }))
      .query(({ input }) =>
        input.kind === 'extra' ? { n: 1, secret: 'not for the client' } : { n: 'one' as unknown as number },
      ),
    /** Two input schemas, merged as tRPC merges them. */
    merged: publicProcedure
      .input(z.object({ a: z.string() }))
      .input(z.object({ b: z.number() }))
      .output(z.object({ a: z.string(), b: z.number() }))
      .query(({ input }) => input),
    /**
     * Middlewares between the parsers: one sees the first input parsed (and passes it on in the
     * context), one below the output schema adds a key the schema strips.
     */
    layered: publicProcedure
      .input(z.object({ a: z.string() }))
      .use(({ input, next }) => next({ ctx: { first: JSON.stringify(input) } }))
      .input(z.object({ b: z.number() }))
      .output(z.object({ a: z.string(), b: z.number(), first: z.string() }))
      .use(async ({ next }) => {
        const result = await next();
        return result.ok ? ({ ...result, data: { ...(result.data as object), extra: true } } as typeof result) : result;
      })
      .query(({ input, ctx }) => ({ ...input, first: ctx.first })),
    /** An input schema with an asynchronous check: its parser answers with a promise. */
    checkedLater: publicProcedure
      .input(z.object({ name: z.string() }).refine(async (value) => value.name !== 'taken', 'That name is taken'))
      .output(z.object({ name: z.string() }))
      .query(({ input }) => input),
    /** Waits until the request is aborted (or 5 s), and remembers whether it saw the abort. */
    wait: publicProcedure
      .meta({ openapi: { method: 'GET', path: '/probe/wait', tags: ['probe'], protect: false } })
      .input(z.object({ id: z.string() }))
      .output(z.object({ aborted: z.boolean() }))
      .query(async ({ input, signal }) => {
        startedCalls.add(input.id);
        const aborted = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 5_000);
          signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        abortedCalls.set(input.id, aborted);
        return { aborted };
      }),
  }),
});

export const testRouter = t.mergeRouters(appRouter, probeRouter);

/** probe.wait results by id: whether the server saw the client go away. */
export const abortedCalls = new Map<string, boolean>();
/** probe.wait calls that have started (the request is in the procedure). */
export const startedCalls = new Set<string>();
