import { isForeignKeyViolation, type NoteRow } from '@app/db';
import { AppError } from '../../errors/index.ts';
import { isoTime } from '../../infra/iso-time.ts';
import { keysetPage, likePattern } from '../../infra/sql.ts';
import type { Services } from '../../services.ts';
import { callerAccountGone } from '../users/users.service.ts';
import type { NoteDto } from './notes.schemas.ts';

type Deps = Pick<Services, 'db'>;

function toDto(row: NoteRow): NoteDto {
  return {
    id: row.id,
    title: row.title,
    body: row.body,
    ownerId: row.owner_id,
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

/** The owner's notes, newest first (ids are time-ordered), `limit` per page. */
export async function listNotes(
  deps: Deps,
  input: { ownerId: string; limit: number; cursor?: string | undefined; search?: string | undefined },
): Promise<{ items: NoteDto[]; nextCursor: string | null }> {
  let query = deps.db
    .selectFrom('notes')
    .selectAll()
    .where('owner_id', '=', input.ownerId)
    .orderBy('id', 'desc')
    .limit(input.limit + 1);
  if (input.cursor) query = query.where('id', '<', input.cursor);
  if (input.search) query = query.where('title', 'ilike', likePattern(input.search));
  return keysetPage(await query.execute(), input.limit, toDto);
}

/**
 * Someone else's note is "not found" (never "forbidden"), unless the caller may read any
 * note; that permission is looked up only for someone else's note.
 */
export async function getNote(
  deps: Deps,
  { id, viewer }: { id: string; viewer: { userId: string; canReadAny: () => Promise<boolean> } },
): Promise<NoteDto> {
  const row = await deps.db.selectFrom('notes').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.owner_id !== viewer.userId && !(await viewer.canReadAny()))) {
    throw new AppError('NOT_FOUND', 'No such note');
  }
  return toDto(row);
}

export async function createNote(
  deps: Deps,
  input: { ownerId: string; title: string; body?: string | undefined },
): Promise<NoteDto> {
  const row = await deps.db
    .insertInto('notes')
    .values({ owner_id: input.ownerId, title: input.title, body: input.body ?? '' })
    .returningAll()
    .executeTakeFirstOrThrow()
    .catch((error: unknown) => {
      // The only reference a note makes is to its owner, the caller.
      throw isForeignKeyViolation(error) ? callerAccountGone() : error;
    });
  return toDto(row);
}

export async function updateNote(
  deps: Deps,
  input: { ownerId: string; id: string; title?: string | undefined; body?: string | undefined },
): Promise<NoteDto> {
  const { ownerId, id } = input;
  const changes = {
    ...(input.title !== undefined && { title: input.title }),
    ...(input.body !== undefined && { body: input.body }),
  };
  const row =
    Object.keys(changes).length === 0
      ? await deps.db
          .selectFrom('notes')
          .selectAll()
          .where('id', '=', id)
          .where('owner_id', '=', ownerId)
          .executeTakeFirst()
      : await deps.db
          .updateTable('notes')
          .set(changes)
          .where('id', '=', id)
          .where('owner_id', '=', ownerId)
          .returningAll()
          .executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', 'No such note');
  return toDto(row);
}

export async function deleteNote(deps: Deps, { ownerId, id }: { ownerId: string; id: string }): Promise<void> {
  const deleted = await deps.db
    .deleteFrom('notes')
    .where('id', '=', id)
    .where('owner_id', '=', ownerId)
    .executeTakeFirst();
  if (deleted.numDeletedRows === 0n) throw new AppError('NOT_FOUND', 'No such note');
}
