import { rateLimited } from '../errors/index.ts';
import type { Services } from '../services.ts';

/**
 * A plain route's call against RATE_LIMIT_DEFAULT_PER_MINUTE for the client's address, the
 * same budget every procedure draws from (src/trpc/procedures.ts); over it, RATE_LIMITED.
 */
export async function limitByAddress(services: Pick<Services, 'rateLimits'>, ip: string): Promise<void> {
  const state = await services.rateLimits.default.consume(`ip:${ip}`);
  if (!state.allowed) throw rateLimited(state.resetMs);
}
