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

export interface PreparedStatementsOptions {
  /** Distinct texts named per pool (default 500); the rest run unnamed. */
  limit?: number;
  /** Told once when the server keeps refusing statements (a pooler): naming stops for the pool. */
  onUnsupported?: (error: Error) => void;
}

const fieldsOf = (error: unknown) => (error ?? {}) as { code?: unknown; routine?: unknown };
/** Postgres refusing a prepared statement whose result columns changed (plancache.c; the message is translated, the routine is not). */
const isCachedPlanChange = (error: unknown) =>
  fieldsOf(error).code === '0A000' && fieldsOf(error).routine === 'RevalidateCachedQuery';
/** invalid_sql_statement_name: "prepared statement ... does not exist". */
const isMissing = (error: unknown) => fieldsOf(error).code === '26000';
/** duplicate_prepared_statement: "prepared statement ... already exists". */
const isDuplicate = (error: unknown) => fieldsOf(error).code === '42P05';

type Values = unknown[];
/** What node-postgres keeps per connection: the names it has parsed, with their texts. */
type Bookkeeping = { connection: { parsedStatements: Record<string, string | undefined> } };

/** A `pg.Client` class for `pg.Pool`'s `Client` option: its pool's statements are prepared as above. */
export function preparingClient(options: PreparedStatementsOptions = {}): typeof pg.Client {
  const limit = options.limit ?? 500;
  /** Each text's current name. */
  const names = new Map<string, string>();
  /** How many times each text's statement was made anew (a migration changed its columns). */
  const generations = new Map<string, number>();
  let naming = true;

  const hashName = (text: string, generation: number) =>
    `app_${createHash('sha256').update(text).digest('hex').slice(0, 32)}${generation ? `_${generation}` : ''}`;

  const nameOf = (text: string): string | undefined => {
    let name = names.get(text);
    if (name === undefined && names.size < limit) {
      name = hashName(text, 0);
      names.set(text, name);
    }
    return name;
  };

  /** A new name for `text`, unless another call already gave it one since `stale`. */
  const rename = (text: string, stale: string): string => {
    const current = names.get(text) as string;
    if (current !== stale) return current;
    const generation = (generations.get(text) ?? 0) + 1;
    generations.set(text, generation);
    const name = hashName(text, generation);
    names.set(text, name);
    return name;
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
      if (isCachedPlanChange(error)) {
        return naming ? super.query({ name: rename(text, name), text, values }) : super.query(text, values);
      }
      if (!isMissing(error) && !isDuplicate(error)) throw error;
      if (naming) {
        // node-postgres's record made to agree with the server, and the call made again.
        const parsed = (this as unknown as Bookkeeping).connection.parsedStatements;
        if (isMissing(error)) delete parsed[name];
        else parsed[name] = text;
        try {
          return await super.query({ name, text, values });
        } catch (again) {
          if (isCachedPlanChange(again)) return super.query({ name: rename(text, name), text, values });
          if (!isMissing(again) && !isDuplicate(again)) throw again;
          stopNaming(again as Error);
        }
      }
      return super.query(text, values);
    }
  }
  return PreparingClient;
}
