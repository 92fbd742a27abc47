import { z } from 'zod';
import { id, isoDateTime, lineOfText, pageInput, text } from '../common-schemas.ts';

const title = lineOfText.min(1, { error: 'must not be empty' }).max(200);
const body = text.max(20_000);

export const noteOutput = z
  .object({ id, title: z.string(), body: z.string(), ownerId: id, createdAt: isoDateTime, updatedAt: isoDateTime })
  .meta({ id: 'Note' });

export const listNotesInput = z.object(pageInput);
export const listNotesOutput = z.object({ items: z.array(noteOutput), nextCursor: id.nullable() });
export const noteIdInput = z.object({ id });
export const createNoteInput = z.object({ title, body: body.optional() });
export const updateNoteInput = z.object({ id, title: title.optional(), body: body.optional() });

export type NoteDto = z.infer<typeof noteOutput>;
