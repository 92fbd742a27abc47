/**
 * Statements Postgres parses and plans once per connection instead of on every call. A query
 * with parameters, run outside a transaction, goes out as a named prepared statement, named
 * after a hash of its text: the first time on a connection as Parse, Bind and Execute, then
 * as Bind and Execute alone (node-postgres keeps which names each connection has parsed).
 * A name always stands for the same text, in every process, so a statement on a pooled
 * server connection can never be another text's.
 *
 * Left unnamed, as before: queries without parameters (they may hold several statements,
 * as migrations do), queries inside a transaction (their statements end with it), queries
 * after `limit` distinct texts (the server keeps each connection's statements until it
 * closes: a bound on their memory), cursors and callback-style calls.
 *
 * Faults repaired on the spot, which never reach the caller:
 * - A table's columns changed (a migration) after a connection prepared a `select *` on it:
 *   Postgres refuses to run the statement ("cached plan must not change result type"). The
 *   text gets a new name for the whole pool (its hash and a generation), prepared afresh by
 *   each connection; the old statement is left to its connection, never used again.
 * - The server says a statement does not exist, or already does: node-postgres's record of
 *   the connection's statements went out of step with the server's (say, a statement closed
 *   after a value failed to serialize). The record is corrected to what the server said and
 *   the call made again, once.
 * - Refused again: a pooler in transaction mode that does not carry prepared statements
 *   across its server connections (PgBouncer before 1.21, or with `max_prepared_statements =
 *   0`). Naming stops for the whole pool (`onUnsupported` is told once) and the call runs
 *   unnamed. Set `DATABASE_PREPARED_STATEMENTS=false` there to skip the first failures.
 * Each of these is refused at Parse or Bind, before the statement runs: running it again
 * is safe.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { isCachedPlanChange, isDuplicatePreparedStatement, isUnknownPreparedStatement } from './postgres-errors.ts';

export interface PreparedStatementsOptions {
  /** Distinct texts named per pool (default 500); the rest run unnamed. */
  limit?: number;
  /** Told once when the server keeps refusing statements (a pooler): naming stops for the pool. */
  onUnsupported?: (error: Error) => void;
}

/** What the server said when node-postgres's record of the connection's statements was wrong (or a pooler moved it). */
const isOutOfStep = (error: unknown) => isUnknownPreparedStatement(error) || isDuplicatePreparedStatement(error);

type Values = unknown[];
/** What node-postgres keeps per connection: the names it has parsed, with their texts. */
type Bookkeeping = { connection: { parsedStatements: Record<string, string | undefined> } };

/** A `pg.Client` class for `pg.Pool`'s `Client` option: its pool's statements are prepared as above. */
export function preparingClient(options: PreparedStatementsOptions = {}): typeof pg.Client {
  const limit = options.limit ?? 500;
  /** Each text's current name, and how many times it was made anew (a migration changed its columns). */
  const names = new Map<string, { name: string; generation: number }>();
  let naming = true;

  const nameFor = (text: string, generation: number) => {
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 32);
    const name = generation ? `app_${hash}_${generation}` : `app_${hash}`;
    names.set(text, { name, generation });
    return name;
  };

  const nameOf = (text: string): string | undefined => {
    const known = names.get(text);
    if (known) return known.name;
    return names.size < limit ? nameFor(text, 0) : undefined;
  };

  /** A new name for `text`, unless another call already gave it one since `stale`. */
  const rename = (text: string, stale: string): string => {
    const current = names.get(text) as { name: string; generation: number };
    return current.name === stale ? nameFor(text, current.generation + 1) : current.name;
  };

  const stopNaming = (error: Error) => {
    if (!naming) return;
    naming = false;
    options.onUnsupported?.(error);
  };

  class PreparingClient extends pg.Client {
    // node-postgres's overloads, passed through as they are; only (text, values) is named.
    // biome-ignore lint/suspicious/noExplicitAny: the overloads of pg.Client#query
    override query(...args: any[]): any {
      const [text, values, callback] = args;
      if (
        !naming ||
        typeof text !== 'string' ||
        !Array.isArray(values) ||
        values.length === 0 ||
        callback !== undefined ||
        this.getTransactionStatus() !== 'I'
      ) {
        // biome-ignore lint/suspicious/noExplicitAny: the overloads of pg.Client#query
        return (super.query as any)(...args);
      }
      const name = nameOf(text);
      if (name === undefined) return super.query(text, values);
      return super.query({ name, text, values }).catch((error: unknown) => this.#retry(error, name, text, values));
    }

    /** The call again after a fault named above; any other error as it was. */
    async #retry(error: unknown, name: string, text: string, values: Values): Promise<pg.QueryResult> {
      if (naming && isOutOfStep(error)) {
        // node-postgres's record made to agree with the server, and the call made again; a
        // second refusal in a row is a pooler's.
        const parsed = (this as unknown as Bookkeeping).connection.parsedStatements;
        if (isUnknownPreparedStatement(error)) delete parsed[name];
        else parsed[name] = text;
        try {
          return await super.query({ name, text, values });
        } catch (again) {
          if (isOutOfStep(again)) stopNaming(again as Error);
          error = again;
        }
      }
      if (isCachedPlanChange(error) && naming) return super.query({ name: rename(text, name), text, values });
      if (isCachedPlanChange(error) || isOutOfStep(error)) return super.query(text, values);
      throw error;
    }
  }
  return PreparingClient;
}
