import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { preparingClient } from './prepared-statements.ts';
import type { Database } from './schema.ts';
import { typeParsers } from './timestamps.ts';

export interface DbConfig {
  url: string;
  /** Most connections the pool opens. */
  poolMax?: number;
  /** How long to wait for a connection before failing a query. */
  connectionTimeoutMs?: number;
  /** How long an idle connection stays open. */
  idleTimeoutMs?: number;
  /** Server-side limit for one statement; 0 disables it. */
  statementTimeoutMs?: number;
  applicationName?: string;
  /** Called when a pooled connection fails outside a query (say, the server restarted). */
  onConnectionError?: (error: Error) => void;
  /**
   * Queries with parameters as prepared statements, parsed and planned once per connection
   * (./prepared-statements.ts; default true). Off behind a pooler that cannot carry them.
   */
  preparedStatements?: boolean;
  /** Called once if the server keeps refusing prepared statements (a pooler in transaction mode): they stop for this pool. */
  onPreparedStatementsUnsupported?: (error: Error) => void;
}

export type Db = Kysely<Database>;

export function createDb(config: DbConfig): Db {
  const answers = { count: 0 };
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolMax ?? 10,
    connectionTimeoutMillis: config.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: config.idleTimeoutMs ?? 10_000,
    statement_timeout: config.statementTimeoutMs ?? 30_000,
    // Bounds a query even when the server cannot enforce statement_timeout (frozen, unreachable).
    query_timeout: config.statementTimeoutMs ? config.statementTimeoutMs + 1_000 : undefined,
    application_name: config.applicationName ?? 'app',
    // TCP keepalive probes from 10 s of silence (the system's default waits 2 h): a connection
    // to a server gone without a word (a failover, a dropped route) is ended by the kernel
    // within minutes (its probes' count and interval), not hours. A query on it is bounded
    // by query_timeout anyway; this frees what holds such a connection between queries.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Timestamps read for a third of what pg's own parser costs (./timestamps.ts).
    types: typeParsers,
    Client: closedOnReadTimeout(
      config.preparedStatements === false
        ? pg.Client
        : preparingClient({ onUnsupported: config.onPreparedStatementsUnsupported }),
      answers,
    ),
  });
  // Without a listener, a connection that fails outside a query crashes the process: an idle
  // one (the pool's 'error'), or one checked out between two queries (the client's own).
  pool.on('error', (error) => config.onConnectionError?.(error));
  pool.on('connect', (client) => client.on('error', (error) => config.onConnectionError?.(error)));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  answeredQueries.set(db, answers);
  return db;
}

const answeredQueries = new WeakMap<Db, { count: number }>();

/**
 * How many queries the server has answered on this pool so far. A readiness check that
 * waited behind busy requests for a connection tells a database that is busy (the count
 * moved meanwhile) from one that stopped answering (it did not).
 */
export function queriesAnswered(db: Db): number {
  return answeredQueries.get(db)?.count ?? 0;
}

/**
 * pg's `query_timeout` fails the query but leaves it running on its connection: every later
 * query there would queue behind it, and fail after the full timeout too, while the pool
 * kept handing out that connection (a failover whose old socket went silent: minutes of
 * timeouts, never a fresh connection). The connection is closed instead, so the pool drops
 * it when it comes back. Each answered query is counted in `answers` (`queriesAnswered`).
 * (Kysely calls with promises; only those are watched.)
 */
function closedOnReadTimeout(Base: typeof pg.Client, answers: { count: number }): typeof pg.Client {
  return class extends Base {
    // biome-ignore lint/suspicious/noExplicitAny: the overloads of pg.Client#query
    override query(...args: any[]): any {
      // biome-ignore lint/suspicious/noExplicitAny: the overloads of pg.Client#query
      const result = (super.query as any)(...args);
      if (result instanceof Promise) {
        result.then(
          () => {
            answers.count += 1;
          },
          (error: unknown) => {
            if (error instanceof Error && error.message === 'Query read timeout') void this.end();
          },
        );
      }
      return result;
    }
  };
}

/** "postgres://user@host:5432/db" without the password, for logs and error messages. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}
