/** How a provider's failed code exchange reaches the sign-in flows (oauth2.ts, oidc.ts). */
import { AuthorizationResponseError } from 'openid-client';
import { ProviderError, type ProviderId } from './provider.ts';

/** `error` values that mean "the person said no": OAuth's, and Apple's cancel button. */
const REFUSALS = new Set(['access_denied', 'user_cancelled_authorize']);

/** A failed code exchange as a ProviderError, telling a refusal from a failure. */
export function signInFailure(provider: ProviderId, error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const denied = error instanceof AuthorizationResponseError && REFUSALS.has(error.error);
  return new ProviderError(`${provider}: the sign-in could not be completed`, { cause: error, denied });
}
