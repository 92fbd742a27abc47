import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import { consumeEmailSendingLimit, emailOf, requirePermission } from '../../trpc/procedures.ts';
import { reviewCodeOutput } from '../auth/auth.schemas.ts';
import * as otp from '../auth/otp.service.ts';
import { email, ok } from '../common-schemas.ts';
import { jobsRouter } from '../jobs/jobs.router.ts';
import { sendTestEmail } from './admin.service.ts';

const tags = ['admin'];

export const adminRouter = router({
  jobs: jobsRouter,

  appleReviewOtp: router({
    generate: requirePermission('auth:manage')
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/apple-review-otp',
          tags,
          summary: 'Generate the reusable sign-in code of the app-store review account',
          description: 'Creates the review account when missing; replaces any previous review code.',
        },
      })
      .input(z.void())
      .output(reviewCodeOutput)
      .mutation(({ ctx }) => otp.generateReviewCode(ctx.services)),

    revoke: requirePermission('auth:manage')
      .meta({
        openapi: {
          method: 'DELETE',
          path: '/admin/apple-review-otp',
          tags,
          summary: 'Revoke the review code',
          description:
            'Removes the code (one that expired too) and ends every session of the review account; 404 when there is no code.',
        },
        errors: ['NOT_FOUND'],
      })
      .input(z.void())
      .output(ok)
      .mutation(async ({ ctx }) => {
        await otp.revokeReviewCode(ctx.services);
        return { ok: true as const };
      }),
  }),

  sendTestEmail: requirePermission('email:send-test')
    .use(async ({ ctx, getRawInput, next }) => {
      // An email to any inbox: limited as the others are, by sender and by the recipient's inbox.
      await consumeEmailSendingLimit(ctx, emailOf(await getRawInput(), 'to'), [`user:${ctx.caller.userId}`]);
      return next();
    })
    .meta({
      openapi: {
        method: 'POST',
        path: '/admin/test-email',
        tags,
        summary: 'Send a test email (to yourself by default) and report the delivery',
      },
      errors: ['EMAIL_DELIVERY_FAILED'],
    })
    .input(z.object({ to: email.optional() }))
    .output(z.object({ ok: z.literal(true), transport: z.string(), messageId: z.string(), to: z.string() }))
    .mutation(({ ctx, input }) =>
      sendTestEmail(ctx.services, { senderId: ctx.caller.userId, to: input.to, locale: ctx.locale }),
    ),
});
