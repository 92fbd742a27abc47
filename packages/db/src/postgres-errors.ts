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

/** SQLSTATE 42P01: no such table. */
export function isUndefinedTable(error: unknown): boolean {
  return sqlState(error) === '42P01';
}
