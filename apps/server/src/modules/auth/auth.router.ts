import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import { authedProcedure, credentialProcedure, publicProcedure } from '../../trpc/procedures.ts';
import { ok } from '../common-schemas.ts';
import {
  authResult,
  changePasswordInput,
  loginInput,
  refreshInput,
  registerInput,
  sessionIdInput,
  sessionOutput,
} from './auth.schemas.ts';
import * as auth from './auth.service.ts';

const tags = ['auth'];
const client = (ctx: { ip: string; userAgent: string | undefined }) => ({ ip: ctx.ip, userAgent: ctx.userAgent });

export const authRouter = router({
  register: credentialProcedure
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

  changePassword: authedProcedure
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
});
