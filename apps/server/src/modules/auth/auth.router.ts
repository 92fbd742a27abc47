import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import {
  authedProcedure,
  consumeCredentialLimit,
  credentialProcedure,
  emailSendingProcedure,
  passwordCheckingProcedure,
  publicProcedure,
} from '../../trpc/procedures.ts';
import { ok } from '../common-schemas.ts';
import {
  authResult,
  changePasswordInput,
  forgotPasswordInput,
  loginInput,
  otpRequestInput,
  otpRequestOutput,
  otpVerifyInput,
  refreshInput,
  registerInput,
  resetPasswordInput,
  sessionIdInput,
  sessionOutput,
  signInResult,
  verifyEmailInput,
} from './auth.schemas.ts';
import * as auth from './auth.service.ts';
import { clientInfo } from './client-info.ts';
import * as emailFlows from './email-flows.service.ts';
import * as otp from './otp.service.ts';
import { identitiesRouter, oauthRouter } from './sso.router.ts';

const tags = ['auth'];
const done = { ok: true as const };

export const authRouter = router({
  register: credentialProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/register',
        tags,
        summary: 'Create an account and sign in',
      },
      errors: ['EMAIL_TAKEN', 'DEPENDENCY_DOWN', 'SERVICE_UNAVAILABLE'],
    })
    .input(registerInput)
    .output(authResult)
    .mutation(({ ctx, input, signal }) => auth.register(ctx.services, { ...input, client: clientInfo(ctx), signal })),

  login: credentialProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/login',
        tags,
        summary: 'Sign in with email and password',
        description: 'An unknown email and a wrong password get the same 401 INVALID_CREDENTIALS.',
      },
      errors: ['INVALID_CREDENTIALS', 'ACCOUNT_DISABLED', 'ACCOUNT_ARCHIVED', 'DEPENDENCY_DOWN', 'SERVICE_UNAVAILABLE'],
    })
    .input(loginInput)
    .output(authResult)
    .mutation(({ ctx, input, signal }) => auth.login(ctx.services, { ...input, client: clientInfo(ctx), signal })),

  refresh: publicProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/refresh',
        tags,
        summary: 'Swap a refresh token for new tokens',
        description: 'The presented refresh token stops working. Presenting it again ends the whole session.',
      },
      errors: ['INVALID_REFRESH_TOKEN', 'SESSION_REVOKED', 'ACCOUNT_DISABLED', 'ACCOUNT_ARCHIVED', 'DEPENDENCY_DOWN'],
    })
    .input(refreshInput)
    .output(authResult)
    .mutation(({ ctx, input }) => auth.refresh(ctx.services, { ...input, client: clientInfo(ctx) })),

  logout: authedProcedure
    .meta({
      openapi: { method: 'POST', path: '/auth/logout', tags, summary: 'End the current session' },
    })
    .input(z.void())
    .output(ok)
    .mutation(async ({ ctx }) => {
      await auth.logout(ctx.services, ctx.caller);
      return { ok: true as const };
    }),

  logoutAll: authedProcedure
    .meta({ openapi: { method: 'POST', path: '/auth/logout-all', tags, summary: 'End every session' } })
    .input(z.void())
    .output(ok)
    .mutation(async ({ ctx }) => {
      await auth.logoutAll(ctx.services, ctx.caller);
      return { ok: true as const };
    }),

  sessions: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/auth/sessions',
        tags,
        summary: 'Active sessions',
        description:
          'Most recently used first. An account holds at most MAX_SESSIONS_PER_USER active sessions (100 by default): a sign-in beyond them ends the least recently used.',
      },
    })
    .input(z.void())
    .output(z.array(sessionOutput))
    .query(({ ctx }) => auth.listSessions(ctx.services, ctx.caller)),

  revokeSession: authedProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/auth/sessions/{id}',
        tags,
        summary: 'End one of your sessions',
      },
      errors: ['NOT_FOUND'],
    })
    .input(sessionIdInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await auth.revokeSession(ctx.services, { caller: ctx.caller, sessionId: input.id });
      return { ok: true as const };
    }),

  changePassword: passwordCheckingProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/password/change',
        tags,
        summary: 'Change your password; ends your other sessions',
        description:
          'A 503 `DEPENDENCY_DOWN` answered after the change was made (Redis could not be told of the ended sessions) is finished by sending the same call again.',
      },
      errors: ['INVALID_CREDENTIALS', 'DEPENDENCY_DOWN', 'SERVICE_UNAVAILABLE'],
    })
    .input(changePasswordInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await auth.changePassword(ctx.services, { ...input, caller: ctx.caller });
      return { ok: true as const };
    }),

  forgotPassword: emailSendingProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/password/forgot',
        tags,
        summary: 'Email a password-reset link (valid 1 h)',
        description: 'Always `{ ok: true }`, whether or not the email has an account.',
      },
    })
    .input(forgotPasswordInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await emailFlows.forgotPassword(ctx.services, { ...input, requestId: ctx.requestId, locale: ctx.locale });
      return done;
    }),

  resetPassword: credentialProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/password/reset',
        tags,
        summary: 'Set a new password with the emailed token; ends every session',
        description:
          'A 503 `DEPENDENCY_DOWN` answered after the reset was made (Redis could not be told of the ended sessions) is finished by sending the same call again.',
      },
      errors: ['INVALID_TOKEN', 'DEPENDENCY_DOWN', 'SERVICE_UNAVAILABLE'],
    })
    .input(resetPasswordInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await emailFlows.resetPassword(ctx.services, input);
      return done;
    }),

  verifyEmail: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/email/verify',
        tags,
        summary: 'Confirm the email address with the emailed token (single use), signed in as its account',
        description:
          'A link opened by anyone else would confirm an account whose password belongs to whoever registered ' +
          'the address: signed out, the owner of the address signs in by email code instead (which reclaims it).',
      },
      errors: ['INVALID_TOKEN', 'DEPENDENCY_DOWN'],
    })
    .input(verifyEmailInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await emailFlows.verifyEmail(ctx.services, { token: input.token, userId: ctx.caller.userId });
      return done;
    }),

  resendVerification: authedProcedure
    .use(async ({ ctx, next }) => {
      // The credential limit, keyed by account: re-sending is an email to someone's inbox.
      await consumeCredentialLimit(ctx, [`user:${ctx.caller.userId}`]);
      return next();
    })
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/email/resend',
        tags,
        summary: 'Send the verification email again (nothing when already verified)',
      },
    })
    .input(z.void())
    .output(ok)
    .mutation(async ({ ctx }) => {
      await emailFlows.sendVerificationEmail(ctx.services, {
        userId: ctx.caller.userId,
        requestId: ctx.requestId,
        locale: ctx.locale,
      });
      return done;
    }),

  otp: router({
    request: emailSendingProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/auth/otp/request',
          tags,
          summary: 'Email a 6-digit sign-in code (valid 10 min)',
          description:
            'The same answer for every email. A new request replaces the previous code; 30 s must pass between two, ' +
            'twice as long after each code past the third in a day (up to 15 minutes): 429 `RATE_LIMITED` with `retryAfterSeconds` meanwhile.',
        },
        errors: ['DEPENDENCY_DOWN'],
      })
      .input(otpRequestInput)
      .output(otpRequestOutput)
      .mutation(({ ctx, input }) =>
        otp.requestCode(ctx.services, { ...input, requestId: ctx.requestId, locale: ctx.locale }),
      ),

    verify: credentialProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/auth/otp/verify',
          tags,
          summary: 'Sign in (or sign up) with the emailed code',
          description: 'Creates a verified account for an unknown email. 5 wrong tries burn the code.',
        },
        errors: ['INVALID_CODE', 'ACCOUNT_DISABLED', 'ACCOUNT_ARCHIVED', 'DEPENDENCY_DOWN'],
      })
      .input(otpVerifyInput)
      .output(signInResult)
      .mutation(({ ctx, input }) => otp.verifyCode(ctx.services, { ...input, client: clientInfo(ctx) })),
  }),

  oauth: oauthRouter,
  identities: identitiesRouter,
});
