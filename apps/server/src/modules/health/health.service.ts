import { queriesAnswered } from '@app/db';
import { sql } from 'kysely';
import { AppError } from '../../errors/index.ts';
import { withTimeout } from '../../infra/with-timeout.ts';
import type { Services } from '../../services.ts';
import type { CheckStatus, JobBacklog, ReadyChecks } from './health.schemas.ts';

export function live(deps: Pick<Services, 'config' | 'clock' | 'startedAt'>) {
  return {
    status: 'ok' as const,
    version: deps.config.version,
    uptimeSeconds: Math.floor((deps.clock.now() - deps.startedAt) / 1000),
  };
}

async function probe(check: () => Promise<unknown>, timeoutMs: number): Promise<CheckStatus> {
  try {
    await withTimeout(check, timeoutMs);
    return 'ok';
  } catch {
    return 'down';
  }
}

/**
 * `select 1` through the request pool. One that waited out the timeout behind busy requests
 * for a connection, while Postgres answered theirs, reads a busy database, not one down: a
 * load balancer must not take a replica out (and then the next) because it is busy.
 */
async function probeDatabase(deps: Pick<Services, 'db'>, timeoutMs: number): Promise<CheckStatus> {
  const answeredBefore = queriesAnswered(deps.db);
  const status = await probe(() => sql`select 1`.execute(deps.db), timeoutMs);
  return status === 'down' && queriesAnswered(deps.db) > answeredBefore ? 'ok' : status;
}

/** How long one readiness answer is reused: probes are polled, and batches could multiply them. */
const READY_CACHE_MS = 1_000;

/** A job waiting longer than this to run means the workers are missing or too few. */
const BACKLOG_SECONDS = 60;

interface Probe {
  checks: ReadyChecks;
  jobs: JobBacklog | undefined;
}

/** Per database handle (so per app and process): the last probe and when it was started. */
const lastProbes = new WeakMap<object, { startedAt: number; probe: Promise<Probe> }>();

/** The job backlog when it is abnormal; undefined when it is not, or cannot be read (the database check says why). */
async function jobBacklog(deps: Pick<Services, 'config' | 'jobs'>): Promise<JobBacklog | undefined> {
  try {
    const backlog = await withTimeout(() => deps.jobs.backlog(), deps.config.healthCheckTimeoutMs);
    return backlog.oldestWaitingSeconds > BACKLOG_SECONDS ? backlog : undefined;
  } catch {
    return undefined;
  }
}

async function probeAll(deps: Pick<Services, 'config' | 'db' | 'kv' | 'clock' | 'jobs'>): Promise<Probe> {
  const [checks, jobs] = await Promise.all([probeDependencies(deps), jobBacklog(deps)]);
  return { checks, jobs };
}

async function probeDependencies(deps: Pick<Services, 'config' | 'db' | 'kv' | 'clock'>): Promise<ReadyChecks> {
  const timeoutMs = deps.config.healthCheckTimeoutMs;
  const [database, redis] = await Promise.all([
    probeDatabase(deps, timeoutMs),
    // A write, not a PING: a full Redis (maxmemory, noeviction) answers PING but refuses revocations.
    deps.kv.kind === 'redis'
      ? probe(() => deps.kv.set('health:write-probe', String(deps.clock.now()), { ttlMs: 60_000 }), timeoutMs)
      : Promise.resolve<CheckStatus>('disabled'),
  ]);
  return { database, redis };
}

/**
 * Every dependency answers within the health-check timeout (Redis accepting a write), or a
 * 503 names the ones that did not. One probe per second per process, however many callers.
 */
export async function ready(deps: Pick<Services, 'config' | 'db' | 'kv' | 'clock' | 'jobs'>) {
  const now = deps.clock.now();
  let last = lastProbes.get(deps.db);
  if (!last || now - last.startedAt >= READY_CACHE_MS) {
    last = { startedAt: now, probe: probeAll(deps) };
    lastProbes.set(deps.db, last);
  }
  const { checks, jobs } = await last.probe;
  const failing = Object.entries(checks).filter(([, status]) => status === 'down');
  if (failing.length > 0) {
    const names = failing.map(([name]) => name).join(', ');
    throw new AppError('DEPENDENCY_DOWN', 'Not ready, down: {names}', {
      details: { checks, retryAfterSeconds: 1 },
      params: { names },
    });
  }
  return { status: 'ok' as const, checks, ...(jobs && { jobs }) };
}
