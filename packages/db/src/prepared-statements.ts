/**
 * Statements Postgres parses and plans once per connection instead of on every call. A query
 * with parameters, run outside a transaction, goes out as a named prepared statement, named
 * after a hash of its text: the first time on a connection as Parse, Bind and Execute, then
 * as Bind and Execute alone (node-postgres keeps which names each connection has parsed).
 * The same text always gets the same name, in every process, so a statement on a pooled
 * server connection can never be another text's.
 *
 * Left unnamed, as before: queries without parameters (they may hold several statements,
 * as migrations do), queries inside a transaction (their statements end with it), queries
 * after `limit` distinct texts (the server keeps each connection's statements until it
 * closes: a bound on their memory), cursors and callback-style calls.
 *
 * Two faults are repaired on the spot, and never reach the caller:
 * - A table's columns changed (a migration) after a connection prepared a `select *` on it:
 *   Postgres refuses to run the statement ("cached plan must not change result type"). The
 *   statement is dropped on that connection and prepared again, once, for the same call.
 * - A pooler in transaction mode that does not carry prepared statements across its server
 *   connections (PgBouncer before 1.21, or with `max_prepared_statements = 0`) answers that a
 *   statement does not exist, or already does. Naming stops for the whole pool (`onUnsupported`
 *   is told once) and the call runs unnamed. Set `DATABASE_PREPARED_STATEMENTS=false` there
 *   to skip the first failures.
 * A statement Postgres refused before running it had no effect, and one run outside a
 * transaction that failed was rolled back: running it again is safe.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';

export interface PreparedStatementsOptions {
  /** Distinct texts named per pool (default 500); the rest run unnamed. */
  limit?: number;
  /** Told once when the server loses or already has a statement (a pooler): naming stops for the pool. */
  onUnsupported?: (error: Error) => void;
}

const fieldsOf = (error: unknown) => (error ?? {}) as { code?: unknown; routine?: unknown };
/** Postgres refusing a prepared statement whose result columns changed (plancache.c; the message is translated, the routine is not). */
const isCachedPlanChange = (error: unknown) =>
  fieldsOf(error).code === '0A000' && fieldsOf(error).routine === 'RevalidateCachedQuery';
/** invalid_sql_statement_name ("prepared statement ... does not exist"), duplicate_prepared_statement. */
const isPoolerRefusal = (error: unknown) => ['26000', '42P05'].includes(fieldsOf(error).code as string);

type Values = unknown[];
/** The protocol state node-postgres keeps per connection: the names it has parsed, with their texts. */
type ParsedStatements = Record<string, string | undefined>;

/** A `pg.Client` class for `pg.Pool`'s `Client` option: its pool's statements are prepared as above. */
export function preparingClient(options: PreparedStatementsOptions = {}): typeof pg.Client {
  const limit = options.limit ?? 500;
  const names = new Map<string, string>();
  let naming = true;

  const nameOf = (text: string): string | undefined => {
    let name = names.get(text);
    if (name === undefined && names.size < limit) {
      name = `app_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
      names.set(text, name);
    }
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
      if (isCachedPlanChange(error) && naming) {
        // Dropped on this connection, then prepared again for this call.
        delete (this as unknown as { connection: { parsedStatements: ParsedStatements } }).connection.parsedStatements[
          name
        ];
        try {
          await super.query(`DEALLOCATE "${name}"`);
          return await super.query({ name, text, values });
        } catch (again) {
          if (!isPoolerRefusal(again)) throw again;
          error = again;
        }
      }
      if (isPoolerRefusal(error)) stopNaming(error as Error);
      if (isPoolerRefusal(error) || isCachedPlanChange(error)) return super.query(text, values);
      throw error;
    }
  }
  return PreparingClient;
}
