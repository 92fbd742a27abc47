/** The `users` table's owner: every write to it (sign-ups, passwords, verification) goes through here. */
import { isUniqueViolation, type UserRow } from '@app/db';
import { AppError } from '../../errors/index.ts';
import { type Locale, supportedLocale } from '../../i18n/locale.ts';
import { isoTime } from '../../infra/iso-time.ts';
import { checkPassword } from '../../infra/passwords.ts';
import { keysetPage, likePattern } from '../../infra/sql.ts';
import type { Services } from '../../services.ts';
import { assertOwnImage, deleteFilesOf } from '../files/files.service.ts';
import {
  accessColumn,
  accessOf,
  administratorIds,
  assignDefaultRole,
  changeRoles,
  type HeldRole,
  keepAnAdministrator,
  lastAdministrator,
} from '../rbac/rbac.service.ts';
import { endSessions, publishRevocations, revokeSessions } from '../sessions/sessions.service.ts';
import type { UserDto } from './users.schemas.ts';

type DbDeps = Pick<Services, 'db'>;
/** Reading users as the API shows them (avatar links are absolute: PUBLIC_URL). */
type ReadDeps = Pick<Services, 'db' | 'config'>;
type DbClockDeps = Pick<Services, 'db' | 'clock'>;
type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'log' | 'clock' | 'jobs'>;

/** Users as the API shows them: each row with its roles and permissions, in one statement. */
const selectUsers = (deps: DbDeps) =>
  deps.db
    .selectFrom('users')
    .selectAll('users')
    .select((eb) => accessColumn(eb));

function toDto(deps: ReadDeps, row: UserRow & { access: HeldRole[] }): UserDto {
  const { roles, permissions } = accessOf(row);
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    emailVerified: row.email_verified_at !== null,
    disabled: row.disabled_at !== null,
    archived: row.archived_at !== null,
    locale: supportedLocale(row.locale) ?? null,
    roles,
    permissions,
    avatarUrl: row.avatar_file_id ? `${deps.config.publicUrl}/api/files/${row.avatar_file_id}/content` : null,
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

export async function findUserRow(deps: DbDeps, id: string): Promise<UserRow | undefined> {
  return deps.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findUserRowByEmail(deps: DbDeps, email: string): Promise<UserRow | undefined> {
  return deps.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
}

/** Several users as the API shows them, by id (read in one go); missing ids are left out. */
export async function getUsers(deps: ReadDeps, ids: string[]): Promise<Map<string, UserDto>> {
  if (ids.length === 0) return new Map();
  const rows = await selectUsers(deps).where('users.id', 'in', ids).execute();
  return new Map(rows.map((row) => [row.id, toDto(deps, row)]));
}

export async function getUser(deps: ReadDeps, id: string): Promise<UserDto> {
  const row = await selectUsers(deps).where('users.id', '=', id).executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', 'No such user');
  return toDto(deps, row);
}

interface NewUser {
  email: string;
  passwordHash?: string;
  name?: string | undefined;
  emailVerified?: boolean;
  /** The roles it starts with (by id); the default role when absent. */
  roleIds?: string[] | undefined;
}

/**
 * Every way of signing up creates the account here: the user and its default role in one
 * transaction. An email already in use is EMAIL_TAKEN.
 */
export async function createUser(deps: DbClockDeps, input: NewUser): Promise<string> {
  return deps.db.transaction().execute((trx) => insertUser({ ...deps, db: trx }, input));
}

/** `createUser` inside a transaction the caller holds (to write more with the account, all or nothing). */
export async function insertUser(deps: DbClockDeps, input: NewUser): Promise<string> {
  try {
    const user = await deps.db
      .insertInto('users')
      .values({
        email: input.email,
        name: input.name ?? null,
        password_hash: input.passwordHash ?? null,
        email_verified_at: input.emailVerified ? new Date(deps.clock.now()) : null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    // A new account holds no role yet: the roles named, or the default one.
    if (input.roleIds) await changeRoles(deps, { userId: user.id, held: new Set(), roleIds: input.roleIds });
    else await assignDefaultRole(deps, user.id);
    return user.id;
  } catch (error) {
    if (isUniqueViolation(error)) throw new AppError('EMAIL_TAKEN', 'An account with this email already exists');
    throw error;
  }
}

/**
 * A new password (a change, a reset): the time is kept, and reset emails asked for before it
 * carry no link. With `replacing`, only while that is still the stored hash (a change checked
 * against it never undoes a reset or another change made meanwhile). Whether it was stored.
 */
export async function setPasswordHash(
  deps: DbClockDeps,
  input: { userId: string; passwordHash: string; replacing?: string | null },
): Promise<boolean> {
  const updated = await deps.db
    .updateTable('users')
    .set({ password_hash: input.passwordHash, password_changed_at: new Date(deps.clock.now()) })
    .where('id', '=', input.userId)
    .$if(input.replacing !== undefined, (query) =>
      input.replacing === null
        ? query.where('password_hash', 'is', null)
        : query.where('password_hash', '=', input.replacing as string),
    )
    .executeTakeFirst();
  return updated.numUpdatedRows > 0n;
}

/**
 * The same password under stronger hash parameters, only while `replacing` is still the
 * stored hash (a rehash never undoes a change made meanwhile). Whether it was stored.
 */
export async function storeRehash(
  deps: DbDeps,
  input: { userId: string; passwordHash: string; replacing: string },
): Promise<boolean> {
  const result = await deps.db
    .updateTable('users')
    .set({ password_hash: input.passwordHash })
    .where('id', '=', input.userId)
    .where('password_hash', '=', input.replacing)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** The account no longer has a password (its registrant may not own the address). */
export async function removePassword(deps: DbClockDeps, userId: string): Promise<void> {
  await deps.db
    .updateTable('users')
    .set({ password_hash: null, password_changed_at: new Date(deps.clock.now()) })
    .where('id', '=', userId)
    .execute();
}

/** Gives a nameless account a name (a provider's, at its first sign-in). */
export async function setNameIfMissing(deps: DbDeps, input: { userId: string; name: string }): Promise<void> {
  await deps.db
    .updateTable('users')
    .set({ name: input.name })
    .where('id', '=', input.userId)
    .where('name', 'is', null)
    .execute();
}

/**
 * Idempotent: an address verified earlier keeps its first verification time. Within the
 * auth module, call `confirmEmailOwner` instead (it also drops what the proof overrules).
 */
export async function markEmailVerified(deps: DbClockDeps, userId: string): Promise<{ newly: boolean }> {
  const result = await deps.db
    .updateTable('users')
    .set({ email_verified_at: new Date(deps.clock.now()) })
    .where('id', '=', userId)
    .where('email_verified_at', 'is', null)
    .executeTakeFirst();
  return { newly: result.numUpdatedRows > 0n };
}

/**
 * The signed-in caller's account is gone (deleted while a token was still valid, or the
 * database was reset under a running session): their session is over, not "not found".
 */
export function callerAccountGone(): AppError {
  return new AppError('SESSION_REVOKED', 'This account no longer exists: sign in again');
}

/** The signed-in caller's own row; a 401 SESSION_REVOKED when the account is gone. */
export async function callerRow(deps: DbDeps, callerId: string): Promise<UserRow> {
  const row = await findUserRow(deps, callerId);
  if (!row) throw callerAccountGone();
  return row;
}

/**
 * Why this account may not sign in, by any method, if it may not: an administrator
 * disabled it, or it was archived. Every way of signing in (and refreshing) asks here.
 */
export function assertMaySignIn(row: Pick<UserRow, 'disabled_at' | 'archived_at'>): void {
  if (row.archived_at)
    throw new AppError('ACCOUNT_ARCHIVED', 'This account is archived: an administrator can restore it');
  if (row.disabled_at) throw new AppError('ACCOUNT_DISABLED', 'This account is disabled');
}

/** Whether the account may sign in (for flows that answer alike either way). */
export const maySignIn = (row: Pick<UserRow, 'disabled_at' | 'archived_at'>) => !row.archived_at && !row.disabled_at;

/** The caller's own account (one statement); a 401 SESSION_REVOKED when it is gone. */
export async function getMe(deps: ReadDeps, callerId: string): Promise<UserDto> {
  const row = await selectUsers(deps).where('users.id', '=', callerId).executeTakeFirst();
  if (!row) throw callerAccountGone();
  return toDto(deps, row);
}

/** Newest first; `search` matches email or name, case-insensitively. */
export async function listUsers(
  deps: ReadDeps,
  input: {
    limit: number;
    cursor?: string | undefined;
    search?: string | undefined;
    /** Only the holders of this role, by name or by id. */
    role?: string | undefined;
    roleId?: string | undefined;
    /** Archived accounts are left out unless asked for. */
    includeArchived?: boolean | undefined;
  },
): Promise<{ items: UserDto[]; nextCursor: string | null }> {
  let query = selectUsers(deps)
    .orderBy('users.id', 'desc')
    .limit(input.limit + 1);
  if (input.cursor) query = query.where('users.id', '<', input.cursor);
  if (!input.includeArchived) query = query.where('users.archived_at', 'is', null);
  const { roleId } = input;
  const role = input.role || undefined; // empty: no filter, as an empty search
  if (role !== undefined || roleId !== undefined) {
    query = query.where((eb) =>
      eb.exists(
        eb
          .selectFrom('user_roles')
          .innerJoin('roles', 'roles.id', 'user_roles.role_id')
          .select('user_roles.user_id')
          .whereRef('user_roles.user_id', '=', 'users.id')
          .$if(role !== undefined, (q) => q.where('roles.name', '=', role ?? ''))
          .$if(roleId !== undefined, (q) => q.where('roles.id', '=', roleId ?? '')),
      ),
    );
  }
  if (input.search) {
    const pattern = likePattern(input.search);
    query = query.where((eb) => eb.or([eb('email', 'ilike', pattern), eb('name', 'ilike', pattern)]));
  }
  const { items, nextCursor } = keysetPage(await query.execute(), input.limit, (row) => row);
  return { items: items.map((row) => toDto(deps, row)), nextCursor };
}

type UserChanges = {
  name?: string | null | undefined;
  disabled?: boolean | undefined;
  locale?: Locale | null | undefined;
};

export async function updateUser(deps: Deps, input: UserChanges & { id: string }): Promise<UserDto> {
  const existing = await findUserRow(deps, input.id);
  if (!existing) throw new AppError('NOT_FOUND', 'No such user');
  return applyUserChanges(deps, existing, input);
}

export async function updateMe(
  deps: Deps,
  input: { userId: string; name?: string | null | undefined; locale?: Locale | null | undefined },
): Promise<UserDto> {
  return applyUserChanges(deps, await callerRow(deps, input.userId), { name: input.name, locale: input.locale });
}

async function applyUserChanges(deps: Deps, existing: UserRow, input: UserChanges): Promise<UserDto> {
  const id = existing.id;
  const changes = {
    ...(input.name !== undefined && { name: input.name }),
    ...(input.locale !== undefined && { locale: input.locale }),
    ...(input.disabled !== undefined && {
      disabled_at: input.disabled ? (existing.disabled_at ?? new Date(deps.clock.now())) : null,
    }),
  };
  if (Object.keys(changes).length > 0) {
    const write = async (trx: Deps) => {
      await trx.db.updateTable('users').set(changes).where('id', '=', id).execute();
      // The sessions end with the change: no outage between the two leaves them running.
      if (input.disabled) await endSessions(trx, { userId: id });
    };
    // Disabling may take away the last administrator.
    await (input.disabled ? keepAnAdministrator(deps, write) : write(deps));
  }
  if (input.disabled) await publishRevocations(deps, id);
  return getUser(deps, id);
}

/**
 * Archives an account: it cannot sign in by any method and its sessions end at once; it
 * leaves the lists; everything it owns stays. Idempotent (the first archiving time stays).
 * Never the last administrator.
 */
export async function archiveUser(deps: Deps, id: string): Promise<UserDto> {
  const archived = await keepAnAdministrator(deps, async (trx) => {
    const row = await trx.db
      .updateTable('users')
      .set((eb) => ({ archived_at: eb.fn.coalesce('archived_at', eb.val(new Date(deps.clock.now()))) }))
      .where('id', '=', id)
      .returning('id')
      .executeTakeFirst();
    // The sessions end with the change: no outage between the two leaves them running.
    if (row) await endSessions(trx, { userId: id });
    return row;
  });
  if (!archived) throw new AppError('NOT_FOUND', 'No such user');
  await publishRevocations(deps, id);
  return getUser(deps, id);
}

/** The caller archives their own account (only an administrator can restore it). */
export async function archiveMe(deps: Deps, callerId: string): Promise<void> {
  await callerRow(deps, callerId);
  await archiveUser(deps, callerId);
}

/** Brings an archived account back as it was (a disabled one stays disabled). Idempotent. */
export async function restoreUser(deps: Deps, id: string): Promise<UserDto> {
  const restored = await deps.db
    .updateTable('users')
    .set({ archived_at: null })
    .where('id', '=', id)
    .returning('id')
    .executeTakeFirst();
  if (!restored) throw new AppError('NOT_FOUND', 'No such user');
  return getUser(deps, id);
}

/** Whether the user is the one administrator who can sign in (a refusal before the change, which checks again). */
async function isTheLastAdministrator(deps: DbDeps, id: string): Promise<boolean> {
  const admins = await administratorIds(deps);
  return admins.length === 1 && admins[0] === id;
}

/**
 * Deletes the account and everything it owns (the rows cascade), ending its sessions first;
 * the removal of its files' bytes is queued in the same transaction (both or neither).
 * Never the last administrator (refused before their sessions end).
 */
/**
 * With `passwordChecked` (the hash, or none, a deletion of one's own account was confirmed
 * against), only while it is still the account's: a reset or change committed meanwhile wins,
 * before any session is ended (and once more with the row locked).
 */
export async function deleteUser(
  deps: Deps & Pick<Services, 'jobs'>,
  id: string,
  options: { passwordChecked?: string | null } = {},
): Promise<void> {
  const existing = await findUserRow(deps, id);
  if (!existing) throw new AppError('NOT_FOUND', 'No such user');
  if (options.passwordChecked !== undefined && existing.password_hash !== options.passwordChecked) {
    throw passwordReplaced();
  }
  if (await isTheLastAdministrator(deps, id)) throw lastAdministrator();
  // Ended and published before anything is deleted: a Redis outage fails the call while a retry can still finish it.
  await revokeSessions(deps, { userId: id });
  const endedLate = await deps.db
    .transaction()
    .execute((trx) => deleteUserRow({ ...deps, db: trx }, id, options.passwordChecked));
  if (endedLate.length > 0) await publishRevocations(deps, id);
}

/**
 * The user's row and what it owns, in the caller's transaction (never the last
 * administrator's). The row is locked first, so no session starts until the deletion commits
 * (a sign-in then finds no account), and a session that started since the caller ended the
 * others is ended with it, in the revocation list: its access token must not outlive the
 * account. Returns those sessions, whose revocations the caller publishes once this commits.
 */
export async function deleteUserRow(
  deps: Pick<Services, 'db' | 'jobs' | 'config' | 'clock'>,
  id: string,
  passwordChecked?: string | null,
): Promise<string[]> {
  return keepAnAdministrator(deps, async (trx) => {
    const locked = await trx.db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (passwordChecked !== undefined && locked && locked.password_hash !== passwordChecked) throw passwordReplaced();
    const endedLate = await endSessions(trx, { userId: id });
    await deleteFilesOf(trx, id);
    await trx.db.deleteFrom('users').where('id', '=', id).execute();
    return endedLate;
  });
}

/** A profile picture: an image the user uploaded. */
export async function setAvatar(deps: ReadDeps, input: { userId: string; fileId: string }): Promise<UserDto> {
  await callerRow(deps, input.userId);
  await assertOwnImage(deps, { ownerId: input.userId, fileId: input.fileId });
  await deps.db.updateTable('users').set({ avatar_file_id: input.fileId }).where('id', '=', input.userId).execute();
  return getMe(deps, input.userId);
}

/** No profile picture (the file stays among the user's files). */
export async function removeAvatar(deps: ReadDeps, userId: string): Promise<UserDto> {
  await callerRow(deps, userId);
  await deps.db.updateTable('users').set({ avatar_file_id: null }).where('id', '=', userId).execute();
  return getMe(deps, userId);
}

const passwordReplaced = () => new AppError('INVALID_CREDENTIALS', 'The password is incorrect');

/** Deleting one's own account: a password account must confirm with its password. */
export async function deleteMe(
  deps: Deps & Pick<Services, 'jobs'>,
  input: { userId: string; password?: string | undefined },
): Promise<void> {
  const user = await callerRow(deps, input.userId);
  if (user.password_hash) {
    const { valid } = await checkPassword(user.password_hash, input.password ?? '');
    if (!valid) throw new AppError('INVALID_CREDENTIALS', 'The password is incorrect');
  }
  await deleteUser(deps, input.userId, { passwordChecked: user.password_hash });
}
