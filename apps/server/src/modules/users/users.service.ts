import type { Db, UserRow } from '@app/db';
import { AppError } from '../../errors.ts';
import { checkPassword } from '../../infra/passwords.ts';
import { keysetPage, likePattern } from '../../infra/sql.ts';
import type { Services } from '../../services.ts';
import { rolesOfUsers } from '../rbac/rbac.service.ts';
import { revokeSessions } from '../sessions/sessions.service.ts';
import type { UserDto } from './users.schemas.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'log'>;

async function toDtos(db: Db, rows: UserRow[]): Promise<UserDto[]> {
  const access = await rolesOfUsers(
    db,
    rows.map((row) => row.id),
  );
  return rows.map((row) => ({
    id: row.id,
    email: row.email,
    name: row.name,
    emailVerified: row.email_verified_at !== null,
    disabled: row.disabled_at !== null,
    roles: access.get(row.id)?.roles ?? [],
    permissions: access.get(row.id)?.permissions ?? [],
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  }));
}

export async function findUserRow(db: Db, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findUserRowByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
}

export async function getUser(db: Db, id: string): Promise<UserDto> {
  const row = await findUserRow(db, id);
  if (!row) throw new AppError('NOT_FOUND', 'No such user');
  return (await toDtos(db, [row]))[0] as UserDto;
}

/**
 * The signed-in caller's account is gone (deleted while a token was still valid, or the
 * database was reset under a running session): their session is over, not "not found".
 */
export function callerAccountGone(): AppError {
  return new AppError('SESSION_REVOKED', 'This account no longer exists: sign in again');
}

/** The signed-in caller's own row; a 401 SESSION_REVOKED when the account is gone. */
export async function callerRow(db: Db, callerId: string): Promise<UserRow> {
  const row = await findUserRow(db, callerId);
  if (!row) throw callerAccountGone();
  return row;
}

export async function getMe(db: Db, callerId: string): Promise<UserDto> {
  return (await toDtos(db, [await callerRow(db, callerId)]))[0] as UserDto;
}

/** Newest first; `search` matches email or name, case-insensitively. */
export async function listUsers(
  db: Db,
  input: { limit: number; cursor?: string | undefined; search?: string | undefined },
): Promise<{ items: UserDto[]; nextCursor: string | null }> {
  let query = db
    .selectFrom('users')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(input.limit + 1);
  if (input.cursor) query = query.where('id', '<', input.cursor);
  if (input.search) {
    const pattern = likePattern(input.search);
    query = query.where((eb) => eb.or([eb('email', 'ilike', pattern), eb('name', 'ilike', pattern)]));
  }
  const { items, nextCursor } = keysetPage(await query.execute(), input.limit, (row) => row);
  return { items: await toDtos(db, items), nextCursor };
}

type UserChanges = { name?: string | null | undefined; disabled?: boolean | undefined };

export async function updateUser(deps: Deps, id: string, input: UserChanges): Promise<UserDto> {
  const existing = await findUserRow(deps.db, id);
  if (!existing) throw new AppError('NOT_FOUND', 'No such user');
  return applyUserChanges(deps, existing, input);
}

export async function updateMe(
  deps: Deps,
  callerId: string,
  input: { name?: string | null | undefined },
): Promise<UserDto> {
  return applyUserChanges(deps, await callerRow(deps.db, callerId), input);
}

async function applyUserChanges(deps: Deps, existing: UserRow, input: UserChanges): Promise<UserDto> {
  const id = existing.id;
  const changes = {
    ...(input.name !== undefined && { name: input.name }),
    ...(input.disabled !== undefined && { disabled_at: input.disabled ? (existing.disabled_at ?? new Date()) : null }),
  };
  if (Object.keys(changes).length > 0) await deps.db.updateTable('users').set(changes).where('id', '=', id).execute();
  if (input.disabled) await revokeSessions(deps, { userId: id });
  return getUser(deps.db, id);
}

/** Deletes the account and everything it owns (cascades), ending its sessions first. */
export async function deleteUser(deps: Deps, id: string): Promise<void> {
  const existing = await findUserRow(deps.db, id);
  if (!existing) throw new AppError('NOT_FOUND', 'No such user');
  await revokeSessions(deps, { userId: id });
  await deps.db.deleteFrom('users').where('id', '=', id).execute();
}

/** Deleting one's own account: a password account must confirm with its password. */
export async function deleteMe(deps: Deps, userId: string, password: string | undefined): Promise<void> {
  const user = await callerRow(deps.db, userId);
  if (user.password_hash) {
    const { valid } = await checkPassword(user.password_hash, password ?? '');
    if (!valid) throw new AppError('INVALID_CREDENTIALS', 'The password is incorrect');
  }
  await deleteUser(deps, userId);
}
