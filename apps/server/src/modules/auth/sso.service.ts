/**
 * Sign-in with outside providers.
 *
 * Browser flow: `startSignIn` stores the flow (state, PKCE verifier, nonce, where to return,
 * the browser's binding, the frontend's own PKCE challenge) and sends the browser to the
 * provider; `finishSignIn` (the callback) takes the flow once by its state and browser, lets
 * the provider library exchange the code and check the answer, finds or creates the account,
 * and returns the browser to the frontend with a one-time code (60 s); `exchangeCode` trades
 * that code, with the frontend's PKCE verifier, for tokens. Native apps send an ID token
 * instead (`signInWithIdToken`).
 */
import { AppError, type AppErrorCode, recognizeError } from '../../errors/index.ts';
import {
  calculatePKCECodeChallenge,
  InvalidIdTokenError,
  newPkce,
  type OAuthProvider,
  ProviderError,
  type ProviderId,
  type ProviderIdentity,
} from '../../infra/oauth/provider.ts';
import { newOpaqueToken } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';
import { type ClientInfo, createSession } from '../sessions/sessions.service.ts';
import { assertMaySignIn, findUserRow } from '../users/users.service.ts';
import type { AuthResult } from './auth.schemas.ts';
import { authResult, startSession } from './auth.service.ts';
import { accountForIdentity } from './identities.service.ts';
import {
  completeFlow,
  deleteFlow,
  findCompletedFlow,
  insertFlow,
  takeCompletedFlow,
  takeStartedFlow,
} from './oauth-flows.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'tokens' | 'mailer' | 'clock' | 'log' | 'oauth' | 'jobs'>;

/** Query parameters the server sets on the way back; a `redirectTo` carrying them would let one be planted. */
const RETURN_PARAMETERS = ['code', 'error'];

/** The configured provider with this id; anything else is a 404. */
export function providerFor(deps: Pick<Services, 'oauth'>, id: string): OAuthProvider {
  const provider = deps.oauth.get(id as ProviderId);
  if (!provider) throw new AppError('NOT_FOUND', 'No sign-in provider "{id}" is configured', { params: { id } });
  return provider;
}

export function listProviders(deps: Pick<Services, 'oauth'>): { id: ProviderId; name: string }[] {
  return [...deps.oauth.values()].map((provider) => ({ id: provider.id, name: provider.displayName }));
}

/** Where the provider sends the browser back: registered with the provider as is. */
export function callbackUrl(deps: Pick<Services, 'config'>, provider: ProviderId): string {
  return `${deps.config.publicUrl}/api/auth/oauth/${provider}/callback`;
}

/**
 * `redirectTo` as a URL on an allowed origin (OAUTH_REDIRECT_ORIGINS), or VALIDATION_FAILED:
 * an absolute http(s) URL only, so `//evil.example`, `javascript:` and relative paths fail.
 * `code` and `error` are removed from it: only the server sets them.
 */
export function allowedRedirect(deps: Pick<Services, 'config'>, redirectTo: string | undefined): URL {
  const field = { details: { field: 'redirectTo' } };
  if (!redirectTo) {
    throw new AppError(
      'VALIDATION_FAILED',
      'redirectTo is required: the frontend URL to return to after the sign-in',
      field,
    );
  }
  if (!URL.canParse(redirectTo)) {
    throw new AppError('VALIDATION_FAILED', 'redirectTo must be an absolute URL on an allowed origin', field);
  }
  const url = new URL(redirectTo);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AppError('VALIDATION_FAILED', 'redirectTo must be an http(s) URL', field);
  }
  if (url.username || url.password)
    throw new AppError('VALIDATION_FAILED', 'redirectTo must not carry credentials', field);
  if (!deps.config.oauth.redirectOrigins.includes(url.origin)) {
    throw new AppError(
      'VALIDATION_FAILED',
      'redirectTo must be on an allowed origin (OAUTH_REDIRECT_ORIGINS), not {origin}',
      { ...field, params: { origin: url.origin } },
    );
  }
  for (const name of RETURN_PARAMETERS) url.searchParams.delete(name);
  return url;
}

/** A frontend's PKCE challenge: S256, base64url of 32 bytes. */
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** Starts a browser sign-in: the provider's URL to send the browser to. */
export async function startSignIn(
  deps: Deps,
  input: { provider: ProviderId; redirectTo: URL; browser: string; codeChallenge?: string | undefined },
): Promise<URL> {
  if (input.codeChallenge !== undefined && !CHALLENGE.test(input.codeChallenge)) {
    throw new AppError('VALIDATION_FAILED', 'codeChallenge must be the S256 challenge: base64url of 32 bytes', {
      details: { field: 'codeChallenge' },
    });
  }
  const provider = providerFor(deps, input.provider);
  const state = newOpaqueToken();
  const nonce = newOpaqueToken();
  const pkce = await newPkce();
  // The provider first (discovery may fail): no flow is stored for a sign-in that cannot start.
  const url = await provider.authorizationUrl({
    redirectUri: callbackUrl(deps, provider.id),
    state,
    codeChallenge: pkce.challenge,
    nonce,
  });
  await insertFlow(deps, {
    provider: provider.id,
    state,
    browser: input.browser,
    codeVerifier: pkce.verifier,
    nonce: provider.usesNonce ? nonce : null,
    redirectTo: input.redirectTo.toString(),
    clientChallenge: input.codeChallenge ?? null,
  });
  return url;
}

/**
 * The provider's callback: the frontend URL to return the browser to, with `code` or
 * `error=<appCode>`. A state that is missing, unknown, used or expired, or that another
 * browser started (a planted sign-in), has no safe place to return to: OAUTH_STATE_INVALID
 * is thrown (a 400).
 */
export async function finishSignIn(
  deps: Deps,
  input: {
    provider: string;
    /** The query string the provider called the callback with (`?code=…&state=…`). */
    search: string;
    /** Apple posts its answer: the form fields. */
    form: Record<string, string> | undefined;
    /** The browser's binding cookie, if it sent one. */
    browser: string | undefined;
    client: ClientInfo;
  },
): Promise<URL> {
  // An unknown or unconfigured provider is a 404, as at the start (and never reaches SQL:
  // a path may carry any byte, a NUL too, which Postgres refuses in text).
  const provider = providerFor(deps, input.provider);
  const state = (input.form ? new URLSearchParams(input.form) : new URLSearchParams(input.search)).get('state');
  const flow =
    state && input.browser
      ? await takeStartedFlow(deps, { provider: input.provider, state, browser: input.browser })
      : undefined;
  if (!state || !flow) {
    throw unknownSignIn();
  }
  const target = new URL(flow.redirect_to);
  try {
    // The URL the provider was told to call, with what it sent: the library derives the
    // token request's redirect_uri from it.
    const url = new URL(callbackUrl(deps, provider.id));
    url.search = input.search;
    const identity = await provider.completeSignIn({
      url,
      form: input.form,
      state,
      codeVerifier: flow.code_verifier ?? '',
      nonce: flow.nonce ?? '',
    });
    const account = await accountForIdentity(deps, { provider: provider.id, identity });
    const code = newOpaqueToken();
    if (!(await completeFlow(deps, { id: flow.id, code, userId: account.userId, accountCreated: account.created }))) {
      // Removed while the provider answered (an administrator's action, a purge): no code would work.
      throw unknownSignIn();
    }
    target.searchParams.set('code', code);
  } catch (error) {
    await deleteFlow(deps, flow.id).catch(() => undefined);
    target.searchParams.set('error', signInErrorCode(deps, error, input.provider));
  }
  return target;
}

const unknownSignIn = () =>
  new AppError('OAUTH_STATE_INVALID', 'This sign-in is unknown, already finished or expired: start it again');

/** What a failed sign-in step tells the frontend; the cause goes to the log. */
export function signInErrorCode(deps: Pick<Services, 'log'>, error: unknown, provider: string): AppErrorCode {
  if (error instanceof ProviderError) {
    if (!error.denied) deps.log.warn({ err: error, provider }, `sign-in with ${provider} failed: ${error.message}`);
    return error.denied ? 'OAUTH_DENIED' : 'OAUTH_PROVIDER_ERROR';
  }
  const known = recognizeError(error);
  if (known) return known.appCode;
  deps.log.error({ err: error, provider }, `sign-in with ${provider} failed`);
  return 'INTERNAL_ERROR';
}

const invalidCode = () => new AppError('INVALID_CODE', 'This sign-in code is invalid, already used or expired');

/**
 * Trades the one-time code of a finished browser sign-in for tokens. A flow started with the
 * frontend's PKCE challenge needs its verifier, and a verifier needs such a flow: a code
 * from someone else's sign-in cannot be slipped into a frontend that uses PKCE.
 */
export async function exchangeCode(
  deps: Deps,
  input: { code: string; codeVerifier?: string | undefined; client: ClientInfo },
): Promise<AuthResult & { created: boolean }> {
  // The code is spent with the session it starts, in one transaction: a database that fails
  // in between leaves it for a retry. A code tried with the wrong verifier is spent all the same.
  // The account's row is locked before the sign-in's, in the order a reset, a reclaim or a
  // deletion takes them (each drops the account's sign-ins), so none of them deadlocks with this.
  const exchanged = await deps.db.transaction().execute(async (trx) => {
    const inTransaction = { ...deps, db: trx };
    const pending = await findCompletedFlow(inTransaction, input.code);
    if (!pending?.user_id) return undefined;
    await trx.selectFrom('users').select('id').where('id', '=', pending.user_id).forShare().execute();
    const flow = await takeCompletedFlow(inTransaction, input.code);
    if (!flow?.user_id || flow.user_id !== pending.user_id) return undefined;
    const proven =
      flow.client_challenge === null
        ? input.codeVerifier === undefined
        : input.codeVerifier !== undefined &&
          (await calculatePKCECodeChallenge(input.codeVerifier)) === flow.client_challenge;
    if (!proven) return undefined;
    const user = await findUserRow(inTransaction, flow.user_id);
    if (!user) return undefined;
    assertMaySignIn(user);
    const session = await createSession(inTransaction, { userId: user.id, client: input.client });
    return { session, created: flow.account_created };
  });
  if (!exchanged) throw invalidCode();
  return { ...(await authResult(deps, exchanged.session)), created: exchanged.created };
}

/** Native apps: signs in with an ID token the app got from Google, Apple or the OIDC provider. */
export async function signInWithIdToken(
  deps: Deps,
  input: { provider: ProviderId; idToken: string; nonce?: string | undefined; client: ClientInfo },
): Promise<AuthResult & { created: boolean }> {
  const provider = providerFor(deps, input.provider);
  if (!provider.verifyIdToken)
    throw new AppError('NOT_FOUND', '{provider} has no ID tokens', { params: { provider: provider.displayName } });
  let identity: ProviderIdentity;
  try {
    identity = await provider.verifyIdToken(input.idToken, input.nonce);
  } catch (error) {
    if (error instanceof InvalidIdTokenError) throw new AppError('INVALID_ID_TOKEN', error.message);
    if (error instanceof ProviderError) {
      deps.log.warn({ err: error }, error.message);
      throw new AppError('OAUTH_PROVIDER_ERROR', '{provider} could not be reached: try again', {
        params: { provider: provider.displayName },
      });
    }
    throw error;
  }
  const account = await accountForIdentity(deps, { provider: provider.id, identity });
  return { ...(await startSession(deps, { userId: account.userId, client: input.client })), created: account.created };
}
