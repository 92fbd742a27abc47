/** Postgres errors recognised by their SQLSTATE (pg puts it in `code`). */
const sqlState = (error: unknown) =>
  typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;

/** SQLSTATE 23505: a unique constraint refused the row. */
export function isUniqueViolation(error: unknown): boolean {
  return sqlState(error) === '23505';
}

/** SQLSTATE 23503: a foreign key refused the row (what it refers to is gone, or still referenced). */
export function isForeignKeyViolation(error: unknown): boolean {
  return sqlState(error) === '23503';
}

/**
 * SQLSTATE 40P01 or 40001: Postgres ended the transaction to settle a conflict with another
 * (a deadlock, or a serializable transaction that could not be ordered): tried again, it
 * goes through.
 */
export function isTransactionConflict(error: unknown): boolean {
  const state = sqlState(error);
  return state === '40P01' || state === '40001';
}

/** SQLSTATE 42P01: no such table. */
export function isUndefinedTable(error: unknown): boolean {
  return sqlState(error) === '42P01';
}

/** SQLSTATE 26000: no prepared statement of that name on the connection. */
export function isUnknownPreparedStatement(error: unknown): boolean {
  return sqlState(error) === '26000';
}

/** SQLSTATE 42P05: a prepared statement of that name is already on the connection. */
export function isDuplicatePreparedStatement(error: unknown): boolean {
  return sqlState(error) === '42P05';
}

/**
 * SQLSTATE 0A000 raised where Postgres checks a prepared statement before running it: its
 * result columns changed since it was prepared ("cached plan must not change result type";
 * the message is translated, the routine is not).
 */
export function isCachedPlanChange(error: unknown): boolean {
  return sqlState(error) === '0A000' && (error as { routine?: unknown }).routine === 'RevalidateCachedQuery';
}

/**
 * An error as one readable line. A connection to a host name with several addresses (IPv6 and
 * IPv4 `localhost`) fails with an AggregateError whose own message is empty: its attempts'
 * messages are the reason. An error without a message says its code.
 */
export function errorReason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(errorReason))].join('; ');
  }
  if (error instanceof Error) return error.message || String((error as { code?: unknown }).code ?? error.name);
  return String(error);
}
