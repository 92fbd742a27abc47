/**
 * Bulk user administration: every item is checked before anything is written (all the
 * checks that need the database are one query each for the whole batch), then written in
 * one transaction (`atomic`) or one transaction per item, and answered on its own.
 */
import { z } from 'zod';
import { AppError, recognizeError } from '../../errors/index.ts';
import { hashPassword } from '../../infra/passwords.ts';
import type { Services } from '../../services.ts';
import { administratorIds, changeRoles, keepAnAdministrator, lastAdministrator } from '../rbac/rbac.service.ts';
import { endSessions, publishRevocationsOf, revokeSessions } from '../sessions/sessions.service.ts';
import type { UserDto } from './users.schemas.ts';
import { deleteUserRow, getUsers, insertUser } from './users.service.ts';
import { newUserItem, userChangesItem, userIdItem } from './users-batch.schemas.ts';
import { assertMayAssignRoles, assertMayGrantRoles, assertMayManage } from './users-policy.ts';

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'log' | 'clock' | 'jobs'>;
type DbDeps = Pick<Services, 'db' | 'clock' | 'config'>;

/** Each item's outcome, at the item's index. */
export type Outcome<Value> = { ok: true; value: Value } | { ok: false; error: AppError };

const failure = (error: AppError): Outcome<never> => ({ ok: false, error });

/** An item that breaks the rules of the single-user procedure: its own VALIDATION_FAILED, with `issues`. */
function parseItem<Schema extends z.ZodType>(schema: Schema, item: unknown): z.output<Schema> | AppError {
  const result = schema.safeParse(item);
  return result.success
    ? result.data
    : new AppError('VALIDATION_FAILED', 'Input validation failed', { cause: result.error });
}

function invalidItem(path: (string | number)[], { message }: { message: string }): AppError {
  // ZodRealError: an Error, as the one safeParse returns (tRPC keeps an Error's issues as its cause).
  const cause = new z.ZodRealError([{ code: 'custom', path, message, input: undefined }]);
  return new AppError('VALIDATION_FAILED', 'Input validation failed', { cause });
}

/** The later occurrences of a key already seen in the batch are refused (the first one stands). */
function refuseRepeats<Item>(planned: (Item | AppError)[], keyOf: (item: Item) => string, path: string[]): void {
  const seen = new Set<string>();
  planned.forEach((item, index) => {
    if (item instanceof AppError) return;
    const key = keyOf(item);
    if (seen.has(key)) planned[index] = invalidItem(path, { message: 'appears more than once in this batch' });
    seen.add(key);
  });
}

/** Role ids by name, for the names the items use; an unknown name refuses its item. */
async function resolveRoles<Item extends { roles?: string[] | undefined }>(
  deps: DbDeps,
  planned: (Item | AppError)[],
): Promise<((Item & { roleIds: string[] | undefined }) | AppError)[]> {
  const names = [...new Set(planned.flatMap((item) => (item instanceof AppError ? [] : (item.roles ?? []))))];
  const rows = names.length
    ? await deps.db.selectFrom('roles').select(['id', 'name']).where('name', 'in', names).execute()
    : [];
  const idOf = new Map(rows.map((row) => [row.name, row.id]));
  return planned.map((item) => {
    if (item instanceof AppError) return item;
    const unknown = (item.roles ?? []).findIndex((role) => !idOf.has(role));
    if (unknown !== -1) return invalidItem(['roles', unknown], { message: 'no such role' });
    const roleIds = item.roles?.map((role) => idOf.get(role) as string);
    return { ...item, roleIds: roleIds && [...new Set(roleIds)] };
  });
}

function aborted(failedIndex: number): AppError {
  return new AppError('BATCH_ABORTED', 'Not written: item {index} failed and the batch is atomic', {
    params: { index: failedIndex },
  });
}

/**
 * Writes the checked items. Atomic: one transaction, and any refusal (before or during the
 * writes) leaves everything unwritten. Otherwise one transaction per item; once the
 * database is down, the items left are answered with that instead of each waiting for it.
 * `inTurns`: the writes may take an administrator away, so each transaction takes its turn
 * (`keepAnAdministrator`'s lock) before it writes anything (after a user's row, it could
 * deadlock with a change that took them in the other order).
 */
async function writeItems<Item, Value>(
  deps: DbDeps,
  planned: (Item | AppError)[],
  atomic: boolean,
  write: (deps: DbDeps, item: Item) => Promise<Value>,
  options: { inTurns?: boolean } = {},
): Promise<Outcome<Value>[]> {
  const transaction = <T>(run: (trx: DbDeps) => Promise<T>) =>
    deps.db.transaction().execute((trx) => {
      const inTransaction = { ...deps, db: trx };
      return options.inTurns ? keepAnAdministrator(inTransaction, run) : run(inTransaction);
    });
  const refused = planned.findIndex((item) => item instanceof AppError);
  if (atomic && refused !== -1) {
    return planned.map((item) => failure(item instanceof AppError ? item : aborted(refused)));
  }
  if (atomic) {
    let current = 0;
    try {
      const values = await transaction(async (trx) => {
        const written: Value[] = [];
        for (const [index, item] of planned.entries()) {
          current = index;
          written.push(await write(trx, item as Item));
        }
        return written;
      });
      return values.map((value) => ({ ok: true, value }));
    } catch (error) {
      const known = recognizeError(error);
      // Nothing was written: a dependency outage fails the call (503), to be retried whole.
      if (!known || known.appCode === 'DEPENDENCY_DOWN') throw known ?? error;
      return planned.map((_, index) => failure(index === current ? known : aborted(current)));
    }
  }
  const outcomes: Outcome<Value>[] = [];
  let outage: AppError | undefined;
  for (const item of planned) {
    if (item instanceof AppError || outage) {
      outcomes.push(failure(item instanceof AppError ? item : (outage as AppError)));
      continue;
    }
    try {
      outcomes.push({
        ok: true,
        value: await transaction((trx) => write(trx, item)),
      });
    } catch (error) {
      const known = recognizeError(error);
      if (!known) throw error;
      if (known.appCode === 'DEPENDENCY_DOWN') outage = known;
      outcomes.push(failure(known));
    }
  }
  return outcomes;
}

/** The written users as the API shows them (read in one go), in item order. */
async function withUsers(deps: Deps, outcomes: Outcome<string>[]): Promise<Outcome<UserDto>[]> {
  const users = await getUsers(
    deps,
    outcomes.flatMap((outcome) => (outcome.ok ? [outcome.value] : [])),
  );
  return outcomes.map((outcome) => {
    if (!outcome.ok) return outcome;
    const user = users.get(outcome.value);
    // (Deleted once written, before it could be read back.)
    return user ? { ok: true, value: user } : failure(new AppError('NOT_FOUND', 'No such user'));
  });
}

/** Bounded parallelism for the password hashes (each is memory-hard and holds a worker thread). */
async function mapInTurns<Item, Result>(items: Item[], turns: number, map: (item: Item) => Promise<Result>) {
  const results: Result[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index] as Item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(turns, items.length) }, worker));
  return results;
}

/** The valid items (each with `keep`'s result when it gives one). */
const validItems = <Item, Kept>(planned: (Item | AppError)[], keep: (item: Item) => Kept | undefined): Kept[] =>
  planned.flatMap((item) => {
    const kept = item instanceof AppError ? undefined : keep(item);
    return kept === undefined ? [] : [kept];
  });

/**
 * Up to 100 accounts, with their roles (the default role when none are named). No email is
 * sent. `granted`: the caller's permissions, for the roles they give (users-policy.ts).
 */
export async function createMany(
  deps: Deps,
  input: { items: { roles?: unknown }[]; atomic: boolean },
  granted: ReadonlySet<string>,
): Promise<Outcome<UserDto>[]> {
  assertMayAssignRoles(granted, input.items);
  const parsed = input.items.map((item) => parseItem(newUserItem, item));
  refuseRepeats(parsed, (item) => item.email, ['email']);
  const emails = parsed.flatMap((item) => (item instanceof AppError ? [] : [item.email]));
  const taken = new Set(
    emails.length
      ? (await deps.db.selectFrom('users').select('email').where('email', 'in', emails).execute()).map((r) => r.email)
      : [],
  );
  const planned = (await resolveRoles(deps, parsed)).map((item) =>
    item instanceof AppError || !taken.has(item.email)
      ? item
      : new AppError('EMAIL_TAKEN', 'An account with this email already exists'),
  );
  await assertMayGrantRoles(
    deps,
    granted,
    validItems(planned, (item) => item.roleIds && { roleIds: item.roleIds }),
  );
  // Hashing is the slow part: skipped for a batch already doomed.
  const doomed = input.atomic && planned.some((item) => item instanceof AppError);
  const hashed = await mapInTurns(planned, 2, async (item) =>
    item instanceof AppError
      ? item
      : {
          ...item,
          passwordHash: item.password === undefined || doomed ? undefined : await hashPassword(item.password),
        },
  );
  const outcomes = await writeItems(deps, hashed, input.atomic, (trx, item) =>
    insertUser(trx, {
      email: item.email,
      name: item.name ?? undefined,
      passwordHash: item.passwordHash,
      emailVerified: item.emailVerified ?? false,
      roleIds: item.roleIds,
    }),
  );
  return withUsers(deps, outcomes);
}

/**
 * Renames, disables or enables, and sets the roles of up to 100 users; disabling ends their
 * sessions at once. Never leaves no administrator (that item is LAST_ADMIN). `granted`: the
 * caller's permissions, for the users they change and the roles they give or take.
 */
export async function updateMany(
  deps: Deps,
  input: { items: { roles?: unknown }[]; atomic: boolean },
  granted: ReadonlySet<string>,
): Promise<Outcome<UserDto>[]> {
  assertMayAssignRoles(granted, input.items);
  const parsed = input.items.map((item) => parseItem(userChangesItem, item));
  refuseRepeats(parsed, (item) => item.id, ['id']);
  const planned = await withExisting(deps, await resolveRoles(deps, parsed), (item) => item.id);
  // Renaming, disabling or enabling needs a user holding no more than the caller. So does any
  // item, for a caller without users:read: each answers the user's record, which such a
  // caller may not read otherwise. (A change of roles alone is checked as rbac.assignRole
  // is, below, for the roles it gives or takes.)
  const mayRead = granted.has('users:read');
  await assertMayManage(
    deps,
    granted,
    validItems(planned, (item) =>
      item.name !== undefined || item.disabled !== undefined || !mayRead ? item.id : undefined,
    ),
  );
  const heldRoles = await assertMayGrantRoles(
    deps,
    granted,
    validItems(planned, (item) => item.roleIds && { userId: item.id, roleIds: item.roleIds }),
  );
  // Disabling a user or replacing their roles may take away the last administrator: each
  // such item is checked in its turn, in the batch's order (an atomic batch that demotes one
  // administrator and promotes another names the promotion first).
  const outcomes = await writeItems(
    deps,
    planned,
    input.atomic,
    (trx, item) =>
      item.disabled || item.roleIds
        ? keepAnAdministrator(trx, (guarded) => writeChanges(guarded, item, heldRoles))
        : writeChanges(trx, item, heldRoles),
    { inTurns: planned.some((item) => !(item instanceof AppError) && (item.disabled || item.roleIds)) },
  );
  // Their sessions ended with the change (writeChanges): made effective everywhere now.
  await publishRevocationsOf(
    deps,
    outcomes.flatMap((outcome, index) => {
      const item = planned[index];
      return outcome.ok && !(item instanceof AppError) && item?.disabled ? [item.id] : [];
    }),
  );
  return withUsers(deps, outcomes);
}

/**
 * One item of `updateMany`, in its transaction: disabling ends the sessions with it; its roles
 * change from those the check saw it hold (`heldRoles`, by user id).
 */
async function writeChanges(
  trx: DbDeps,
  item: { id: string; name?: string | null | undefined; disabled?: boolean | undefined; roleIds: string[] | undefined },
  heldRoles: ReadonlyMap<string, ReadonlySet<string>>,
): Promise<string> {
  if (item.name !== undefined || item.disabled !== undefined) {
    const now = new Date(trx.clock.now());
    const updated = await trx.db
      .updateTable('users')
      .set((eb) => ({
        ...(item.name !== undefined && { name: item.name }),
        // Disabling an account already disabled keeps its first time.
        ...(item.disabled !== undefined && {
          disabled_at: item.disabled ? eb.fn.coalesce('disabled_at', eb.val(now)) : null,
        }),
      }))
      .where('id', '=', item.id)
      .executeTakeFirst();
    // Deleted since the batch looked it up.
    if (updated.numUpdatedRows === 0n) throw new AppError('NOT_FOUND', 'No such user');
  }
  if (item.roleIds) {
    await changeRoles(trx, { userId: item.id, held: heldRoles.get(item.id) ?? new Set(), roleIds: item.roleIds });
  }
  if (item.disabled) await endSessions(trx, { userId: item.id });
  return item.id;
}

/**
 * Deletes up to 100 users and their data, ending their sessions first; the removal of their
 * files' bytes is queued in the transaction that deletes them (only committed deletions lose
 * bytes). Never the last administrator: when the batch names every one, the last of them in
 * it is LAST_ADMIN (before any session ends). `granted`: the caller's permissions.
 */
export async function deleteMany(
  deps: Deps & Pick<Services, 'jobs'>,
  input: { ids: unknown[]; atomic: boolean },
  granted: ReadonlySet<string>,
): Promise<Outcome<string>[]> {
  const parsed = input.ids.map((id) => parseItem(userIdItem, id));
  refuseRepeats(parsed, (id) => id, []);
  const planned = await withExisting(deps, parsed, (id) => id);
  await assertMayManage(
    deps,
    granted,
    validItems(planned, (id) => id),
  );
  await keepTheLastAdministrator(deps, planned);
  const proceeds = !(input.atomic && planned.some((item) => item instanceof AppError));
  if (proceeds) {
    for (const id of planned) if (!(id instanceof AppError)) await revokeSessions(deps, { userId: id });
  }
  const endedLate = new Set<string>();
  const outcomes = await writeItems(deps, planned, input.atomic, async (trx, id) => {
    if ((await deleteUserRow({ ...deps, db: trx.db }, id)).length > 0) endedLate.add(id);
    return id;
  });
  // Sessions started since the revocations above: published once their deletion committed.
  await publishRevocationsOf(
    deps,
    outcomes.flatMap((outcome) => (outcome.ok && endedLate.has(outcome.value) ? [outcome.value] : [])),
  );
  return outcomes;
}

/** When the ids are every administrator who can sign in, the last of them in the batch is refused. */
async function keepTheLastAdministrator(deps: DbDeps, planned: (string | AppError)[]): Promise<void> {
  const admins = await administratorIds(deps);
  const leaving = new Set(validItems(planned, (id) => id));
  if (admins.length === 0 || !admins.every((admin) => leaving.has(admin))) return;
  const last = planned.findLastIndex((id) => typeof id === 'string' && admins.includes(id));
  planned[last] = lastAdministrator();
}

/** Items naming a user that does not exist are NOT_FOUND (one query for the batch). */
async function withExisting<Item>(
  deps: DbDeps,
  planned: (Item | AppError)[],
  idOf: (item: Item) => string,
): Promise<(Item | AppError)[]> {
  const ids = planned.flatMap((item) => (item instanceof AppError ? [] : [idOf(item)]));
  const found = new Set(
    ids.length
      ? (await deps.db.selectFrom('users').select('id').where('id', 'in', ids).execute()).map((r) => r.id)
      : [],
  );
  return planned.map((item) =>
    item instanceof AppError || found.has(idOf(item)) ? item : new AppError('NOT_FOUND', 'No such user'),
  );
}
