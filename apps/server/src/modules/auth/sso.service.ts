/**
 * Sign-in with outside providers, and the `oauth_flows` table's owner.
 *
 * Browser flow: `startSignIn` stores the flow (state, PKCE verifier, nonce, where to return)
 * and sends the browser to the provider; `finishSignIn` (the callback) takes the flow once
 * by its state, lets the provider library exchange the code and check the answer, finds or
 * creates the account, and returns the browser to the frontend with a one-time code (60 s);
 * `exchangeCode` trades that code for tokens. Native apps send an ID token instead
 * (`signInWithIdToken`).
 */
import { AppError, type AppErrorCode, recognizeError } from '../../errors/index.ts';
import {
  InvalidIdTokenError,
  newPkce,
  type OAuthProvider,
  PROVIDER_IDS,
  ProviderError,
  type ProviderId,
} from '../../infra/oauth/provider.ts';
import { hashOpaqueToken, newOpaqueToken } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';
import type { ClientInfo } from '../sessions/sessions.service.ts';
import { findUserRow } from '../users/users.service.ts';
import type { AuthResult } from './auth.schemas.ts';
import { startSession } from './auth.service.ts';
import { accountForIdentity } from './identities.service.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'tokens' | 'mailer' | 'clock' | 'log' | 'oauth'>;

const FLOW_TTL_MS = 10 * 60_000;
const CODE_TTL_MS = 60_000;

/** The configured provider with this id; anything else is a 404. */
export function providerFor(deps: Pick<Services, 'oauth'>, id: string): OAuthProvider {
  const provider = (PROVIDER_IDS as readonly string[]).includes(id) ? deps.oauth.get(id as ProviderId) : undefined;
  if (!provider) throw new AppError('NOT_FOUND', `No sign-in provider "${id}" is configured`);
  return provider;
}

export function listProviders(deps: Pick<Services, 'oauth'>): { id: ProviderId; name: string }[] {
  return [...deps.oauth.values()].map((provider) => ({ id: provider.id, name: provider.displayName }));
}

/** Where the provider sends the browser back: registered with the provider as is. */
export function callbackUrl(deps: Pick<Services, 'config'>, provider: ProviderId): string {
  return `${deps.config.oauth.publicUrl}/api/auth/oauth/${provider}/callback`;
}

/**
 * `redirectTo` as a URL on an allowed origin (OAUTH_REDIRECT_ORIGINS), or VALIDATION_FAILED:
 * an absolute http(s) URL only, so `//evil.example`, `javascript:` and relative paths fail.
 */
export function allowedRedirect(deps: Pick<Services, 'config'>, redirectTo: string | undefined): URL {
  const refuse = (why: string) =>
    new AppError('VALIDATION_FAILED', `redirectTo ${why}`, { details: { field: 'redirectTo' } });
  if (!redirectTo) throw refuse('is required: the frontend URL to return to after the sign-in');
  if (!URL.canParse(redirectTo)) throw refuse('must be an absolute URL on an allowed origin');
  const url = new URL(redirectTo);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('must be an http(s) URL');
  if (url.username || url.password) throw refuse('must not carry credentials');
  if (!deps.config.oauth.redirectOrigins.includes(url.origin)) {
    throw refuse(`must be on an allowed origin (OAUTH_REDIRECT_ORIGINS), not ${url.origin}`);
  }
  return url;
}

/** Starts a browser sign-in: the provider's URL to send the browser to. */
export async function startSignIn(
  deps: Deps,
  input: { provider: ProviderId; redirectTo: URL; browser: string },
): Promise<URL> {
  const provider = providerFor(deps, input.provider);
  const state = newOpaqueToken();
  const nonce = newOpaqueToken();
  const pkce = await newPkce();
  const now = deps.clock.now();
  await deps.db.deleteFrom('oauth_flows').where('expires_at', '<', new Date(now)).execute();
  await deps.db
    .insertInto('oauth_flows')
    .values({
      provider: provider.id,
      state_hash: hashOpaqueToken(state),
      browser_hash: hashOpaqueToken(input.browser),
      code_verifier: pkce.verifier,
      nonce: provider.usesNonce ? nonce : null,
      redirect_to: input.redirectTo.toString(),
      expires_at: new Date(now + FLOW_TTL_MS),
    })
    .execute();
  return provider.authorizationUrl({
    redirectUri: callbackUrl(deps, provider.id),
    state,
    codeChallenge: pkce.challenge,
    nonce,
  });
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
    url: URL;
    form: Record<string, string> | undefined;
    /** The browser's binding cookie, if it sent one. */
    browser: string | undefined;
    client: ClientInfo;
  },
): Promise<URL> {
  const params = input.form ? new URLSearchParams(input.form) : input.url.searchParams;
  const state = params.get('state');
  const now = deps.clock.now();
  const flow =
    state && input.browser
      ? await deps.db
          .updateTable('oauth_flows')
          .set({ state_hash: null })
          .where('state_hash', '=', hashOpaqueToken(state))
          .where('browser_hash', '=', hashOpaqueToken(input.browser))
          .where('provider', '=', input.provider)
          .where('expires_at', '>', new Date(now))
          .returning(['id', 'code_verifier', 'nonce', 'redirect_to'])
          .executeTakeFirst()
      : undefined;
  if (!state || !flow) {
    throw new AppError('OAUTH_STATE_INVALID', 'This sign-in is unknown, already finished or expired: start it again');
  }
  const target = new URL(flow.redirect_to);
  try {
    const provider = providerFor(deps, input.provider);
    const identity = await provider.completeSignIn({
      url: input.url,
      form: input.form,
      state,
      codeVerifier: flow.code_verifier ?? '',
      nonce: flow.nonce ?? '',
    });
    const account = await accountForIdentity(deps, {
      provider: provider.id,
      identity,
      requestId: input.client.requestId,
    });
    const code = newOpaqueToken();
    await deps.db
      .updateTable('oauth_flows')
      .set({
        code_hash: hashOpaqueToken(code),
        user_id: account.userId,
        created: account.created,
        code_verifier: null,
        nonce: null,
        expires_at: new Date(deps.clock.now() + CODE_TTL_MS),
      })
      .where('id', '=', flow.id)
      .execute();
    target.searchParams.set('code', code);
  } catch (error) {
    await deps.db
      .deleteFrom('oauth_flows')
      .where('id', '=', flow.id)
      .execute()
      .catch(() => undefined);
    target.searchParams.set('error', signInErrorCode(deps, error, input.provider));
  }
  return target;
}

/** What a failed sign-in step tells the frontend; the cause goes to the log. */
export function signInErrorCode(deps: Pick<Services, 'log'>, error: unknown, provider: string): AppErrorCode {
  if (error instanceof ProviderError) {
    deps.log.warn({ err: error, cause: error.cause, provider }, `sign-in with ${provider} failed: ${error.message}`);
    return error.denied ? 'OAUTH_DENIED' : 'OAUTH_PROVIDER_ERROR';
  }
  const known = recognizeError(error);
  if (known) return known.appCode;
  deps.log.error({ err: error, provider }, `sign-in with ${provider} failed`);
  return 'INTERNAL_ERROR';
}

/** Trades the one-time code of a finished browser sign-in for tokens. */
export async function exchangeCode(
  deps: Deps,
  input: { code: string; client: ClientInfo },
): Promise<AuthResult & { created: boolean }> {
  const flow = await deps.db
    .deleteFrom('oauth_flows')
    .where('code_hash', '=', hashOpaqueToken(input.code))
    .where('expires_at', '>', new Date(deps.clock.now()))
    .returning(['user_id', 'created'])
    .executeTakeFirst();
  if (!flow?.user_id) throw new AppError('INVALID_CODE', 'This sign-in code is invalid, already used or expired');
  const user = await findUserRow(deps, flow.user_id);
  if (!user) throw new AppError('INVALID_CODE', 'This sign-in code is invalid, already used or expired');
  if (user.disabled_at) throw new AppError('ACCOUNT_DISABLED', 'This account is disabled');
  return { ...(await startSession(deps, { userId: user.id, client: input.client })), created: flow.created };
}

/** Native apps: signs in with an ID token the app got from Google, Apple or the OIDC provider. */
export async function signInWithIdToken(
  deps: Deps,
  input: { provider: ProviderId; idToken: string; nonce?: string | undefined; client: ClientInfo },
): Promise<AuthResult & { created: boolean }> {
  const provider = providerFor(deps, input.provider);
  if (!provider.verifyIdToken) throw new AppError('NOT_FOUND', `${provider.displayName} has no ID tokens`);
  let identity: Awaited<ReturnType<NonNullable<OAuthProvider['verifyIdToken']>>>;
  try {
    identity = await provider.verifyIdToken(input.idToken, input.nonce);
  } catch (error) {
    if (error instanceof InvalidIdTokenError) throw new AppError('INVALID_ID_TOKEN', error.message);
    if (error instanceof ProviderError) {
      deps.log.warn({ err: error, cause: error.cause }, error.message);
      throw new AppError('OAUTH_PROVIDER_ERROR', `${provider.displayName} could not be reached: try again`);
    }
    throw error;
  }
  const account = await accountForIdentity(deps, {
    provider: provider.id,
    identity,
    requestId: input.client.requestId,
  });
  return { ...(await startSession(deps, { userId: account.userId, client: input.client })), created: account.created };
}
