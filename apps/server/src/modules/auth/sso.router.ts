import { z } from 'zod';
import { router } from '../../trpc/init.ts';
import { authedProcedure, credentialProcedure, publicProcedure } from '../../trpc/procedures.ts';
import { ok } from '../common-schemas.ts';
import {
  identityOutput,
  idTokenInput,
  oauthExchangeInput,
  oauthProvidersOutput,
  signInResult,
  unlinkIdentityInput,
} from './auth.schemas.ts';
import { clientInfo } from './client-info.ts';
import * as identities from './identities.service.ts';
import * as sso from './sso.service.ts';

const tags = ['auth'];

/** Sign-in with providers; the browser redirects themselves are plain routes (src/http/oauth-routes.ts). */
export const oauthRouter = router({
  providers: publicProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/auth/oauth/providers',
        tags,
        summary: 'The sign-in providers this server offers',
        description:
          'For each, a button can send the browser to `GET /api/auth/oauth/{id}/start?redirectTo=<your page>`.',
      },
    })
    .input(z.void())
    .output(oauthProvidersOutput)
    .query(({ ctx }) => sso.listProviders(ctx.services)),

  exchange: credentialProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/oauth/exchange',
        tags,
        summary: 'Trade the one-time code of a provider sign-in for tokens',
        description:
          'The code is the `code` query parameter on your `redirectTo`; it works once, within 60 s. When the sign-in ' +
          'was started with a `codeChallenge`, send its `codeVerifier` (and only then).',
      },
      errors: ['INVALID_CODE', 'ACCOUNT_DISABLED', 'ACCOUNT_ARCHIVED', 'DEPENDENCY_DOWN'],
    })
    .input(oauthExchangeInput)
    .output(signInResult)
    .mutation(({ ctx, input }) => sso.exchangeCode(ctx.services, { ...input, client: clientInfo(ctx) })),

  signInWithIdToken: credentialProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/oauth/id-token',
        tags,
        summary: 'Sign in (or sign up) with an ID token from a native app',
        description:
          "The token's signature, issuer, audience (a configured client id), expiry and nonce are checked " +
          "against the provider's published keys.",
      },
      errors: [
        'NOT_FOUND',
        'INVALID_ID_TOKEN',
        'OAUTH_PROVIDER_ERROR',
        'OAUTH_EMAIL_MISSING',
        'EMAIL_TAKEN',
        'ACCOUNT_DISABLED',
        'ACCOUNT_ARCHIVED',
        'DEPENDENCY_DOWN',
      ],
    })
    .input(idTokenInput)
    .output(signInResult)
    .mutation(({ ctx, input }) => sso.signInWithIdToken(ctx.services, { ...input, client: clientInfo(ctx) })),
});

export const identitiesRouter = router({
  list: authedProcedure
    .meta({
      openapi: { method: 'GET', path: '/auth/identities', tags, summary: 'The providers linked to your account' },
    })
    .input(z.void())
    .output(z.array(identityOutput))
    .query(({ ctx }) => identities.listIdentities(ctx.services, ctx.caller.userId)),

  unlink: authedProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/auth/identities/{provider}',
        tags,
        summary: 'Unlink a provider from your account',
        description: 'Refused (409) when it is the only way left to sign in: no password and no other provider.',
      },
      errors: ['NOT_FOUND', 'LAST_SIGN_IN_METHOD'],
    })
    .input(unlinkIdentityInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await identities.unlinkIdentity(ctx.services, { userId: ctx.caller.userId, provider: input.provider });
      return { ok: true as const };
    }),
});
