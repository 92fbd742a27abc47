/**
 * Which failures mean "a dependency is down" (as opposed to a bug): the one place that
 * knows the connection-class errors of pg and of the key-value store. `recognizeError`
 * (src/errors) turns them into 503 DEPENDENCY_DOWN with Retry-After; nothing else needs to catch them.
 */

export type Dependency = 'database' | 'redis' | 'storage';

/** Thrown by the key-value store when Redis cannot answer in time (down, hung, refusing writes), and by the file storage. */
export class DependencyUnavailableError extends Error {
  readonly dependency: Dependency;
  constructor(dependency: Dependency, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'DependencyUnavailableError';
    this.dependency = dependency;
  }
}

/** Socket-level failures (Node's error codes) seen while connecting or talking to a server. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Postgres SQLSTATEs of an unavailable server: class 08 (connection exception), 57P01-57P03
 * (shutting down, crashed, not accepting connections yet), 53000-53300 (out of resources: disk
 * full, out of memory, too many connections; not 53400, a configured limit a query exceeds),
 * 57014 (statement timeout: the database did not answer in time), 25006 (a write on a server
 * that takes none: a standby, or a primary demoted by a failover until the connections move).
 */
const OUT_OF_RESOURCES = new Set(['53000', '53100', '53200', '53300']);

function isUnavailableSqlState(code: string): boolean {
  return (
    code.startsWith('08') ||
    OUT_OF_RESOURCES.has(code) ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    code === '57014' ||
    code === '25006'
  );
}

/** node-postgres raises these as plain Errors, without a code. */
const PG_CONNECTION_MESSAGES = [
  'timeout exceeded when trying to connect', // the pool waited connectionTimeoutMillis for a client
  'Connection terminated',
  'Client has encountered a connection error',
  'Query read timeout',
  'Client was closed and is not queryable',
];

/** The dependency a failure says is down, or undefined when it is something else (a bug, a constraint). */
export function unavailableDependency(error: unknown): Dependency | undefined {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    if (current instanceof DependencyUnavailableError) return current.dependency;
    if (typeof current !== 'object') return undefined;
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (
      typeof code === 'string' &&
      (NETWORK_CODES.has(code) || (/^[0-9A-Z]{5}$/.test(code) && isUnavailableSqlState(code)))
    ) {
      return 'database';
    }
    if (typeof message === 'string' && PG_CONNECTION_MESSAGES.some((m) => message.startsWith(m))) return 'database';
    if (current instanceof AggregateError) {
      const inner = current.errors.map(unavailableDependency).find(Boolean);
      if (inner) return inner;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
