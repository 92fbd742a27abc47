/**
 * The `oauth_flows` table's owner: browser sign-ins in progress. A flow is taken by its
 * state once (10 minutes, the browser that started it), then holds a one-time code for the
 * frontend (60 s) until the exchange takes it.
 */

import { hashOpaqueToken } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';

type Deps = Pick<Services, 'db' | 'clock'>;

export const FLOW_TTL_MS = 10 * 60_000;
export const CODE_TTL_MS = 60_000;

export interface NewFlow {
  provider: string;
  state: string;
  browser: string;
  codeVerifier: string;
  nonce: string | null;
  redirectTo: string;
  clientChallenge: string | null;
}

export async function insertFlow(deps: Deps, flow: NewFlow): Promise<void> {
  const now = deps.clock.now();
  // Expired flows go as new ones come (an index on expires_at keeps this cheap).
  await deps.db.deleteFrom('oauth_flows').where('expires_at', '<', new Date(now)).execute();
  await deps.db
    .insertInto('oauth_flows')
    .values({
      provider: flow.provider,
      state_hash: hashOpaqueToken(flow.state),
      browser_hash: hashOpaqueToken(flow.browser),
      code_verifier: flow.codeVerifier,
      nonce: flow.nonce,
      redirect_to: flow.redirectTo,
      client_challenge: flow.clientChallenge,
      expires_at: new Date(now + FLOW_TTL_MS),
    })
    .execute();
}

/**
 * The started flow with this state, started by this browser, for this provider; taken once.
 * Taken, it has FLOW_TTL_MS again to finish (the provider's calls may be slow): no purge of
 * expired flows removes it under the callback.
 */
export async function takeStartedFlow(deps: Deps, input: { provider: string; state: string; browser: string }) {
  const now = deps.clock.now();
  return deps.db
    .updateTable('oauth_flows')
    .set({ state_hash: null, expires_at: new Date(now + FLOW_TTL_MS) })
    .where('state_hash', '=', hashOpaqueToken(input.state))
    .where('browser_hash', '=', hashOpaqueToken(input.browser))
    .where('provider', '=', input.provider)
    .where('expires_at', '>', new Date(now))
    .returning(['id', 'provider', 'code_verifier', 'nonce', 'redirect_to'])
    .executeTakeFirst();
}

/** The flow succeeded: it now holds `code` for the account, for 60 s. False when the flow is gone (nothing holds the code). */
export async function completeFlow(
  deps: Deps,
  input: { id: string; code: string; userId: string; accountCreated: boolean },
): Promise<boolean> {
  const result = await deps.db
    .updateTable('oauth_flows')
    .set({
      code_hash: hashOpaqueToken(input.code),
      user_id: input.userId,
      account_created: input.accountCreated,
      code_verifier: null,
      nonce: null,
      expires_at: new Date(deps.clock.now() + CODE_TTL_MS),
    })
    .where('id', '=', input.id)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

export async function deleteFlow(deps: Deps, id: string): Promise<void> {
  await deps.db.deleteFrom('oauth_flows').where('id', '=', id).execute();
}

/** The completed flow holding `code`; taken once. */
/** The account a completed sign-in's code is for, without taking it. */
export async function findCompletedFlow(deps: Deps, code: string) {
  return deps.db
    .selectFrom('oauth_flows')
    .select('user_id')
    .where('code_hash', '=', hashOpaqueToken(code))
    .where('expires_at', '>', new Date(deps.clock.now()))
    .executeTakeFirst();
}

export async function takeCompletedFlow(deps: Deps, code: string) {
  return deps.db
    .deleteFrom('oauth_flows')
    .where('code_hash', '=', hashOpaqueToken(code))
    .where('expires_at', '>', new Date(deps.clock.now()))
    .returning(['user_id', 'account_created', 'client_challenge'])
    .executeTakeFirst();
}

/** Codes not yet exchanged for this account stop working (its sign-ins were overruled). */
export async function dropCodesOf(deps: Pick<Services, 'db'>, userId: string): Promise<void> {
  await deps.db.deleteFrom('oauth_flows').where('user_id', '=', userId).execute();
}

/** Maintenance: browser sign-ins that were never finished. */
export async function purgeExpiredFlows(deps: Pick<Services, 'db' | 'clock'>): Promise<number> {
  const result = await deps.db
    .deleteFrom('oauth_flows')
    .where('expires_at', '<', new Date(deps.clock.now()))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
