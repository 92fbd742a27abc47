import type { FastifyReply } from 'fastify';
import { rateLimited } from '../errors/index.ts';
import { addressKey, type RateLimitState, writeRateLimitHeaders } from '../infra/rate-limiter.ts';
import type { Services } from '../services.ts';

/**
 * A plain route's call against RATE_LIMIT_DEFAULT_PER_MINUTE for the client's address, the
 * same budget every procedure draws from (src/trpc/procedures.ts), with the same RateLimit-*
 * headers; over it, RATE_LIMITED.
 */
export async function limitByAddress(
  services: Pick<Services, 'rateLimits'>,
  request: { ip: string },
  reply: FastifyReply,
): Promise<void> {
  const state = await services.rateLimits.default.consume(addressKey(request.ip));
  rateLimitHeadersOn(reply)(state);
  if (!state.allowed) throw rateLimited(state.resetMs);
}

/** Writes a limit's RateLimit-* headers on a plain route's reply (for `admitSignedIn`'s `onLimit`). */
export const rateLimitHeadersOn = (reply: FastifyReply) => (state: RateLimitState) =>
  writeRateLimitHeaders(state, (name, value) => reply.header(name, value));
