import { sql } from 'kysely';
import { AppError } from '../../errors.ts';
import type { Services } from '../../services.ts';
import type { CheckStatus, ReadyChecks } from './health.schemas.ts';

export function live(deps: Pick<Services, 'config' | 'startedAt'>) {
  return {
    status: 'ok' as const,
    version: deps.config.version,
    uptimeSeconds: Math.floor((Date.now() - deps.startedAt) / 1000),
  };
}

async function probe(check: () => Promise<unknown>, timeoutMs: number): Promise<CheckStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
  });
  try {
    await Promise.race([check(), timeout]);
    return 'ok';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

/** Every dependency answers within the health-check timeout, or a 503 names the ones that did not. */
export async function ready(deps: Pick<Services, 'config' | 'db' | 'kv'>) {
  const timeoutMs = deps.config.healthCheckTimeoutMs;
  const [database, redis] = await Promise.all([
    probe(() => sql`select 1`.execute(deps.db), timeoutMs),
    deps.kv.kind === 'redis' ? probe(() => deps.kv.ping(), timeoutMs) : Promise.resolve<CheckStatus>('disabled'),
  ]);
  const checks: ReadyChecks = { database, redis };
  const failing = Object.entries(checks).filter(([, status]) => status === 'down');
  if (failing.length > 0) {
    const names = failing.map(([name]) => name).join(' and ');
    throw new AppError('SERVICE_UNAVAILABLE', `Not ready: ${names} ${failing.length === 1 ? 'is' : 'are'} down`, {
      details: { checks },
    });
  }
  return { status: 'ok' as const, checks };
}
