/**
 * The browser's side of a provider sign-in, as redirects (not procedures: a browser
 * navigates here and must be sent on, not answered with JSON):
 *
 *   GET  /api/auth/oauth/:provider/start?redirectTo=   → 302 to the provider
 *   GET  /api/auth/oauth/:provider/callback            → 302 to redirectTo?code=… (or ?error=<appCode>)
 *   POST /api/auth/oauth/:provider/callback            (Apple posts its answer as a form) → 303
 *
 * A cookie binds the sign-in to the browser that started it, so a sign-in started by
 * someone else cannot be finished in a victim's browser (login CSRF). Both routes count
 * against the default rate limit per address (RATE_LIMIT_DEFAULT_PER_MINUTE).
 */

import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DocumentedRoute } from '../documented-route.ts';
import { AppError } from '../errors/index.ts';
import { negotiateLocale } from '../i18n/locale.ts';
import { PROVIDER_IDS } from '../infra/oauth/provider.ts';
import { clientInfo } from '../modules/auth/client-info.ts';
import {
  allowedRedirect,
  finishSignIn,
  providerFor,
  signInErrorCode,
  startSignIn,
} from '../modules/auth/sso.service.ts';
import type { Services } from '../services.ts';
import { limitByAddress } from './address-limit.ts';

/** Secure origins get the `__Host-` prefix: no sibling subdomain can plant the cookie. */
const BROWSER_COOKIE = 'app_oauth_browser';
/** 32 random bytes, base64url: the only value accepted back. */
const BROWSER_VALUE = /^[A-Za-z0-9_-]{43}$/;

const providerParameter = {
  in: 'path',
  name: 'provider',
  required: true,
  description: 'A configured provider (`GET /api/auth/oauth/providers`)',
  schema: { type: 'string', enum: [...PROVIDER_IDS] },
};
const callbackDescription =
  'Where the provider sends the browser back (register `<PUBLIC_URL>/api/auth/oauth/{provider}/callback` with it). ' +
  'Redirects to the `redirectTo` given at the start with `code` (one use, 60 s: trade it with ' +
  '`POST /api/auth/oauth/exchange`) or with `error=<appCode>`: `OAUTH_DENIED`, `OAUTH_PROVIDER_ERROR`, ' +
  '`OAUTH_EMAIL_MISSING`, `EMAIL_TAKEN` (an account has this email and the provider does not vouch for it), ' +
  '`ACCOUNT_DISABLED`, `ACCOUNT_ARCHIVED`, `DEPENDENCY_DOWN`, `NOT_FOUND` or `CONFLICT` (a change made at the ' +
  'same time: try again), `OAUTH_STATE_INVALID` (the sign-in was removed while the provider answered, by a ' +
  'password reset or the account taken back: start again), or `INTERNAL_ERROR` (a bug, logged). A callback ' +
  'without its state or cookie is answered 400 `OAUTH_STATE_INVALID` itself (no `redirectTo` to go back to).';

/** These routes in the OpenAPI document (they are not procedures). */
export const OAUTH_REDIRECT_ROUTES = [
  {
    method: 'GET',
    path: '/auth/oauth/{provider}/start',
    summary: 'Start a sign-in with a provider (open it in the browser)',
    description:
      'Redirects the browser to the provider, with `state`, PKCE (S256) and, for OpenID Connect, a `nonce`; ' +
      'sets a cookie that binds the sign-in to this browser. When the provider cannot be reached, redirects to ' +
      '`redirectTo` with `error=OAUTH_PROVIDER_ERROR` (`error=DEPENDENCY_DOWN` when the database is down).',
    tags: ['auth'],
    parameters: [
      providerParameter,
      {
        in: 'query',
        name: 'redirectTo',
        required: true,
        description: 'The frontend page to return to: an absolute URL on an allowed origin (`OAUTH_REDIRECT_ORIGINS`)',
        schema: { type: 'string', format: 'uri' },
      },
      {
        in: 'query',
        name: 'codeChallenge',
        description:
          "The frontend's own PKCE challenge (S256 of a verifier it keeps): the exchange then needs the verifier, " +
          'so a code from a sign-in someone else started cannot be used in this frontend. Recommended.',
        schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
      },
    ],
    success: { status: 302, description: "To the provider's sign-in page", redirect: true },
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', 'RATE_LIMITED'],
  },
  {
    method: 'GET',
    path: '/auth/oauth/{provider}/callback',
    summary: 'The provider sends the browser back here',
    description: callbackDescription,
    tags: ['auth'],
    parameters: [
      providerParameter,
      { in: 'query', name: 'state', required: true, schema: { type: 'string' } },
      { in: 'query', name: 'code', schema: { type: 'string' } },
      {
        in: 'query',
        name: 'error',
        description: "The provider's error, e.g. access_denied",
        schema: { type: 'string' },
      },
    ],
    success: { status: 302, description: 'To `redirectTo`, with `code` or `error`', redirect: true },
    errors: ['OAUTH_STATE_INVALID', 'NOT_FOUND', 'RATE_LIMITED', 'DEPENDENCY_DOWN'],
  },
  {
    method: 'POST',
    path: '/auth/oauth/{provider}/callback',
    summary: 'The provider posts its answer here (Apple)',
    description: callbackDescription,
    tags: ['auth'],
    parameters: [providerParameter],
    body: {
      type: 'form',
      fields: {
        state: { description: 'The state sent at the start' },
        code: { description: 'The authorization code' },
        user: { description: "Apple: the person's name, on the first sign-in only (JSON)" },
        error: { description: "The provider's error, e.g. user_cancelled_authorize" },
      },
    },
    success: { status: 303, description: 'To `redirectTo`, with `code` or `error`', redirect: true },
    errors: [
      'OAUTH_STATE_INVALID',
      'NOT_FOUND',
      'BAD_REQUEST',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
      'RATE_LIMITED',
      'DEPENDENCY_DOWN',
    ],
  },
] satisfies DocumentedRoute[];

/** Form answers are small (a code, a state, Apple's user JSON). */
const FORM_LIMIT_BYTES = 16 * 1024;

export async function oauthRoutes(app: FastifyInstance, { services }: { services: Services }) {
  // Apple's form_post callback; this plugin's routes only (the API's bodies are JSON).
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: FORM_LIMIT_BYTES },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );

  const secure = services.config.publicUrl.startsWith('https:');
  const cookieName = secure ? `__Host-${BROWSER_COOKIE}` : BROWSER_COOKIE;
  const readBrowser = (request: FastifyRequest) => {
    const value = readCookie(request, cookieName);
    return value && BROWSER_VALUE.test(value) ? value : undefined;
  };

  app.get<{ Params: { provider: string }; Querystring: { redirectTo?: string; codeChallenge?: string } }>(
    '/api/auth/oauth/:provider/start',
    async (request, reply) => {
      await limitByAddress(services, request, reply);
      const provider = providerFor(services, request.params.provider);
      const redirectTo = allowedRedirect(services, request.query.redirectTo);
      // One value per browser, kept across its sign-ins (two tabs may sign in at once).
      const browser = readBrowser(request) ?? randomBytes(32).toString('base64url');
      // Apple's answer is a cross-site POST: only a SameSite=None (so Secure) cookie comes with it.
      const attributes = secure ? 'Secure; SameSite=None' : 'SameSite=Lax';
      reply.header('set-cookie', `${cookieName}=${browser}; Path=/; Max-Age=600; HttpOnly; ${attributes}`);
      let target: URL;
      try {
        target = await startSignIn(services, {
          provider: provider.id,
          redirectTo,
          browser,
          codeChallenge: request.query.codeChallenge,
        });
      } catch (error) {
        if (error instanceof AppError && error.appCode === 'VALIDATION_FAILED') throw error;
        target = new URL(redirectTo);
        target.searchParams.set('error', signInErrorCode(services, error, provider.id));
      }
      return redirect(reply, target, 302);
    },
  );

  const callback = async (request: FastifyRequest<{ Params: { provider: string } }>, reply: FastifyReply) => {
    await limitByAddress(services, request, reply);
    const form = request.method === 'POST' ? formFields(request) : undefined;
    const target = await finishSignIn(services, {
      provider: request.params.provider,
      search: new URL(request.url, 'http://callback.invalid').search,
      form,
      browser: readBrowser(request),
      client: clientInfo({
        ip: request.ip,
        userAgent: request.headers['user-agent'],
        requestId: request.id,
        locale: negotiateLocale(request.headers['accept-language']),
      }),
    });
    return redirect(reply, target, request.method === 'POST' ? 303 : 302);
  };
  app.get('/api/auth/oauth/:provider/callback', callback);
  app.post('/api/auth/oauth/:provider/callback', callback);
}

/** (The location may carry a one-time code: no cache keeps it, as no answer that does not say so, common-headers.ts.) */
function redirect(reply: FastifyReply, target: URL, status: 302 | 303) {
  return reply.redirect(target.toString(), status);
}

function formFields(request: FastifyRequest): Record<string, string> {
  const { body } = request;
  if (!request.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'The callback takes a form (application/x-www-form-urlencoded)');
  }
  if (typeof body !== 'object' || body === null) throw new AppError('BAD_REQUEST', 'The form cannot be read');
  return Object.fromEntries(
    Object.entries(body).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

function readCookie(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=') || undefined;
  }
  return undefined;
}
