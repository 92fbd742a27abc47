import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import {
  authedProcedure,
  consumeCredentialLimit,
  credentialProcedure,
  emailSendingProcedure,
  noStore,
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
  otpVerifyOutput,
  refreshInput,
  registerInput,
  resetPasswordInput,
  sessionIdInput,
  sessionOutput,
  verifyEmailInput,
} from './auth.schemas.ts';
import * as auth from './auth.service.ts';
import * as emailFlows from './email-flows.service.ts';
import * as otp from './otp.service.ts';

const tags = ['auth'];
const client = (ctx: { ip: string; userAgent: string | undefined; requestId: string }) => ({
  ip: ctx.ip,
  userAgent: ctx.userAgent,
  requestId: ctx.requestId,
});
const done = { ok: true as const };

export const authRouter = router({
  register: credentialProcedure
    .use(noStore)
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/register',
        tags,
        protect: false,
        summary: 'Create an account and sign in',
        errorResponses: { 400: 'Invalid input', 409: 'EMAIL_TAKEN', 429: 'Too many requests' },
      },
    })
    .input(registerInput)
    .output(authResult)
    .mutation(({ ctx, input }) => auth.register(ctx.services, input, client(ctx))),

  login: credentialProcedure
    .use(noStore)
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/login',
        tags,
        protect: false,
        summary: 'Sign in with email and password',
        description: 'An unknown email and a wrong password get the same 401 INVALID_CREDENTIALS.',
        errorResponses: { 401: 'INVALID_CREDENTIALS', 403: 'ACCOUNT_DISABLED', 429: 'Too many requests' },
      },
    })
    .input(loginInput)
    .output(authResult)
    .mutation(({ ctx, input }) => auth.login(ctx.services, input, client(ctx))),

  refresh: publicProcedure
    .use(noStore)
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/refresh',
        tags,
        protect: false,
        summary: 'Swap a refresh token for new tokens',
        description: 'The presented refresh token stops working. Presenting it again ends the whole session.',
        errorResponses: { 401: 'INVALID_REFRESH_TOKEN or SESSION_REVOKED', 403: 'ACCOUNT_DISABLED' },
      },
    })
    .input(refreshInput)
    .output(authResult)
    .mutation(({ ctx, input }) => auth.refresh(ctx.services, input.refreshToken, client(ctx))),

  logout: authedProcedure
    .meta({
      openapi: { method: 'POST', path: '/auth/logout', tags, protect: true, summary: 'End the current session' },
    })
    .input(z.void())
    .output(ok)
    .mutation(async ({ ctx }) => {
      await auth.logout(ctx.services, ctx.caller);
      return { ok: true as const };
    }),

  logoutAll: authedProcedure
    .meta({ openapi: { method: 'POST', path: '/auth/logout-all', tags, protect: true, summary: 'End every session' } })
    .input(z.void())
    .output(ok)
    .mutation(async ({ ctx }) => {
      await auth.logoutAll(ctx.services, ctx.caller);
      return { ok: true as const };
    }),

  sessions: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/auth/sessions', tags, protect: true, summary: 'Active sessions' } })
    .input(z.void())
    .output(z.array(sessionOutput))
    .query(({ ctx }) => auth.listSessions(ctx.services, ctx.caller)),

  revokeSession: authedProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/auth/sessions/{id}',
        tags,
        protect: true,
        summary: 'End one of your sessions',
        errorResponses: { 404: 'Not one of your active sessions' },
      },
    })
    .input(sessionIdInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await auth.revokeSession(ctx.services, ctx.caller, input.id);
      return { ok: true as const };
    }),

  changePassword: passwordCheckingProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/password/change',
        tags,
        protect: true,
        summary: 'Change your password; ends your other sessions',
        errorResponses: { 401: 'INVALID_CREDENTIALS' },
      },
    })
    .input(changePasswordInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await auth.changePassword(ctx.services, ctx.caller, input);
      return { ok: true as const };
    }),

  forgotPassword: emailSendingProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/password/forgot',
        tags,
        protect: false,
        summary: 'Email a password-reset link (valid 1 h)',
        description: 'Always `{ ok: true }`, whether or not the email has an account.',
      },
    })
    .input(forgotPasswordInput)
    .output(ok)
    .mutation(({ ctx, input }) => {
      emailFlows.forgotPassword(ctx.services, input.email, ctx.requestId);
      return done;
    }),

  resetPassword: credentialProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/password/reset',
        tags,
        protect: false,
        summary: 'Set a new password with the emailed token; ends every session',
        errorResponses: { 400: 'INVALID_TOKEN or an invalid password' },
      },
    })
    .input(resetPasswordInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await emailFlows.resetPassword(ctx.services, input.token, input.newPassword);
      return done;
    }),

  verifyEmail: publicProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/email/verify',
        tags,
        protect: false,
        summary: 'Confirm the email address with the emailed token (single use)',
        errorResponses: { 400: 'INVALID_TOKEN' },
      },
    })
    .input(verifyEmailInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await emailFlows.verifyEmail(ctx.services, input.token);
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
        protect: true,
        summary: 'Send the verification email again (nothing when already verified)',
        errorResponses: { 429: 'Too many requests' },
      },
    })
    .input(z.void())
    .output(ok)
    .mutation(({ ctx }) => {
      emailFlows.sendVerificationEmail(ctx.services, ctx.caller.userId, ctx.requestId);
      return done;
    }),

  otp: router({
    request: emailSendingProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/auth/otp/request',
          tags,
          protect: false,
          summary: 'Email a 6-digit sign-in code (valid 10 min)',
          description:
            'The same answer for every email. A new request replaces the previous code; 30 s must pass between two.',
          errorResponses: { 429: 'Too many requests, or within 30 s of the previous code' },
        },
      })
      .input(otpRequestInput)
      .output(otpRequestOutput)
      .mutation(({ ctx, input }) => otp.requestCode(ctx.services, input.email, ctx.requestId)),

    verify: credentialProcedure
      .use(noStore)
      .meta({
        openapi: {
          method: 'POST',
          path: '/auth/otp/verify',
          tags,
          protect: false,
          summary: 'Sign in (or sign up) with the emailed code',
          description: 'Creates a verified account for an unknown email. 5 wrong tries burn the code.',
          errorResponses: { 401: 'INVALID_CODE', 403: 'ACCOUNT_DISABLED' },
        },
      })
      .input(otpVerifyInput)
      .output(otpVerifyOutput)
      .mutation(({ ctx, input }) => otp.verifyCode(ctx.services, input, client(ctx))),
  }),
});
