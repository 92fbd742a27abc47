import { router } from '../../trpc/init.ts';
import { authedProcedure } from '../../trpc/procedures.ts';
import { hasPermission } from '../auth/assert-permission.ts';
import { ok } from '../common-schemas.ts';
import {
  createNoteInput,
  listNotesInput,
  listNotesOutput,
  noteIdInput,
  noteOutput,
  updateNoteInput,
} from './notes.schemas.ts';
import * as notes from './notes.service.ts';

const tags = ['notes'];

export const notesRouter = router({
  list: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/notes', tags, summary: 'Your notes, newest first' } })
    .input(listNotesInput)
    .output(listNotesOutput)
    .query(({ ctx, input }) => notes.listNotes(ctx.services, { ...input, ownerId: ctx.caller.userId })),

  get: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/notes/{id}',
        tags,
        summary: "One of your notes (anyone's with notes:read-any)",
      },
      errors: ['NOT_FOUND'],
    })
    .input(noteIdInput)
    .output(noteOutput)
    .query(({ ctx, input }) => {
      const canReadAny = () => hasPermission(ctx.services, ctx.caller, 'notes:read-any');
      return notes.getNote(ctx.services, { id: input.id, viewer: { userId: ctx.caller.userId, canReadAny } });
    }),

  create: authedProcedure
    .meta({ openapi: { method: 'POST', path: '/notes', tags, summary: 'Write a note' } })
    .input(createNoteInput)
    .output(noteOutput)
    .mutation(({ ctx, input }) => notes.createNote(ctx.services, { ...input, ownerId: ctx.caller.userId })),

  update: authedProcedure
    .meta({
      openapi: { method: 'PATCH', path: '/notes/{id}', tags, summary: 'Change one of your notes' },
      errors: ['NOT_FOUND'],
    })
    .input(updateNoteInput)
    .output(noteOutput)
    .mutation(({ ctx, input }) => notes.updateNote(ctx.services, { ...input, ownerId: ctx.caller.userId })),

  delete: authedProcedure
    .meta({
      openapi: { method: 'DELETE', path: '/notes/{id}', tags, summary: 'Delete one of your notes' },
      errors: ['NOT_FOUND'],
    })
    .input(noteIdInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await notes.deleteNote(ctx.services, { ownerId: ctx.caller.userId, id: input.id });
      return { ok: true as const };
    }),
});
