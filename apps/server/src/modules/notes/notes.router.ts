import { router } from '../../trpc/init.ts';
import { authedProcedure } from '../../trpc/procedures.ts';
import { ok } from '../common-schemas.ts';
import { permissionsOfUser } from '../rbac/rbac.service.ts';
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
    .meta({ openapi: { method: 'GET', path: '/notes', tags, protect: true, summary: 'Your notes, newest first' } })
    .input(listNotesInput)
    .output(listNotesOutput)
    .query(({ ctx, input }) => notes.listNotes(ctx.services.db, ctx.caller.userId, input)),

  get: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/notes/{id}',
        tags,
        protect: true,
        summary: "One of your notes (anyone's with notes:read-any)",
        errorResponses: { 404: 'No such note' },
      },
    })
    .input(noteIdInput)
    .output(noteOutput)
    .query(({ ctx, input }) => {
      const canReadAny = async () =>
        (await permissionsOfUser(ctx.services.db, ctx.caller.userId)).has('notes:read-any');
      return notes.getNote(ctx.services.db, { userId: ctx.caller.userId, canReadAny }, input.id);
    }),

  create: authedProcedure
    .meta({ openapi: { method: 'POST', path: '/notes', tags, protect: true, summary: 'Write a note' } })
    .input(createNoteInput)
    .output(noteOutput)
    .mutation(({ ctx, input }) => notes.createNote(ctx.services.db, ctx.caller.userId, input)),

  update: authedProcedure
    .meta({
      openapi: { method: 'PATCH', path: '/notes/{id}', tags, protect: true, summary: 'Change one of your notes' },
    })
    .input(updateNoteInput)
    .output(noteOutput)
    .mutation(({ ctx, input }) => notes.updateNote(ctx.services.db, ctx.caller.userId, input.id, input)),

  delete: authedProcedure
    .meta({
      openapi: { method: 'DELETE', path: '/notes/{id}', tags, protect: true, summary: 'Delete one of your notes' },
    })
    .input(noteIdInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await notes.deleteNote(ctx.services.db, ctx.caller.userId, input.id);
      return { ok: true as const };
    }),
});
