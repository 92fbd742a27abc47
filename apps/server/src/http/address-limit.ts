import { rateLimited } from '../errors/index.ts';
import { addressKey } from '../infra/rate-limiter.ts';
import type { Services } from '../services.ts';

/**
 * A plain route's call against RATE_LIMIT_DEFAULT_PER_MINUTE for the client's address, the
 * same budget every procedure draws from (src/trpc/procedures.ts); over it, RATE_LIMITED.
 */
export async function limitByAddress(services: Pick<Services, 'rateLimits'>, ip: string): Promise<void> {
  const state = await services.rateLimits.default.consume(addressKey(ip));
  if (!state.allowed) throw rateLimited(state.resetMs);
}
