/**
 * Who is calling: the sign-in check every transport shares (tRPC and REST through
 * `authedProcedure`, plain Fastify routes by calling it themselves). A signature check and
 * one key-value lookup, no database query while the revocation cache is intact.
 */
import { AppError, type AppErrorCode } from '../../errors/index.ts';
import { AccessTokenError } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';
import { isSessionRevoked } from '../sessions/sessions.service.ts';

/** A signed-in caller: the account and the session its access token belongs to. */
export interface Caller {
  userId: string;
  sessionId: string;
}

type Deps = Pick<Services, 'tokens' | 'db' | 'kv' | 'config' | 'log' | 'clock'>;

/**
 * Every app code `authenticate` throws. DEPENDENCY_DOWN: the revocation check fails closed
 * when neither the store nor Postgres answers.
 */
export const AUTHENTICATION_ERRORS = [
  'UNAUTHORIZED',
  'TOKEN_EXPIRED',
  'SESSION_REVOKED',
  'DEPENDENCY_DOWN',
] as const satisfies readonly AppErrorCode[];

function bearerToken(header: string | undefined): string | undefined {
  const match = header ? /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim()) : null;
  return match?.[1];
}

/** The caller an `Authorization: Bearer <accessToken>` header stands for, or the AppError saying why not. */
export async function authenticate(deps: Deps, authorization: string | undefined): Promise<Caller> {
  const token = bearerToken(authorization);
  if (!token) throw new AppError('UNAUTHORIZED', 'Sign in first: send Authorization: Bearer <accessToken>');
  let caller: Caller;
  try {
    const claims = await deps.tokens.verifyAccessToken(token);
    caller = { userId: claims.sub, sessionId: claims.sid };
  } catch (error) {
    if (error instanceof AccessTokenError && error.reason === 'expired') {
      throw new AppError('TOKEN_EXPIRED', 'The access token has expired: refresh it');
    }
    throw new AppError('UNAUTHORIZED', 'The access token is not valid');
  }
  // Fails closed: when neither the store nor Postgres can answer, the error is a 503.
  if (await isSessionRevoked(deps, caller.sessionId)) {
    throw new AppError('SESSION_REVOKED', 'This session has ended: sign in again');
  }
  return caller;
}
