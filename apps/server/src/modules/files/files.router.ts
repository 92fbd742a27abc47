import { router } from '../../trpc/init.ts';
import { authedProcedure } from '../../trpc/procedures.ts';
import { ok } from '../common-schemas.ts';
import {
  createUploadInput,
  createUploadOutput,
  fileIdInput,
  fileOutput,
  listFilesInput,
  listFilesOutput,
} from './files.schemas.ts';
import * as files from './files.service.ts';

const tags = ['files'];

/** File metadata and direct uploads; the bytes go through plain routes (src/http/files-routes.ts). */
export const filesRouter = router({
  list: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/files', tags, summary: 'Your files, newest first' } })
    .input(listFilesInput)
    .output(listFilesOutput)
    .query(({ ctx, input }) => files.listFiles(ctx.services, { ...input, ownerId: ctx.caller.userId })),

  get: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/files/{id}',
        tags,
        summary: "One of your files (anyone's with files:read-any)",
      },
      errors: ['NOT_FOUND'],
    })
    .input(fileIdInput)
    .output(fileOutput)
    .query(({ ctx, input }) =>
      files.getFile(ctx.services, { id: input.id, viewer: files.viewerOf(ctx.services, ctx.caller, 'files:read-any') }),
    ),

  delete: authedProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/files/{id}',
        tags,
        summary: "Delete one of your files, and its bytes (anyone's with files:delete-any)",
        description:
          'A direct upload of yours not completed yet is cancelled. A direct upload’s size, cancelled or its file deleted, ' +
          'counts against your quota until an hour after its URL expires: bytes can still be PUT to it until then.',
      },
      errors: ['NOT_FOUND'],
    })
    .input(fileIdInput)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await files.deleteFile(ctx.services, {
        id: input.id,
        viewer: files.viewerOf(ctx.services, ctx.caller, 'files:delete-any'),
      });
      return { ok: true as const };
    }),

  createUpload: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/files/uploads',
        tags,
        summary: 'Start a direct upload to storage (S3): a presigned PUT URL',
        description:
          'For large files: PUT the bytes to `url` with `headers` (the size and type are signed into it), then ' +
          'call `POST /api/files/uploads/{id}/complete`. An upload not completed in time is removed.',
      },
      errors: ['DIRECT_UPLOADS_UNAVAILABLE', 'UNSUPPORTED_FILE_TYPE', 'FILE_TOO_LARGE', 'QUOTA_EXCEEDED'],
    })
    .input(createUploadInput)
    .output(createUploadOutput)
    .mutation(({ ctx, input }) => files.createUpload(ctx.services, { ...input, ownerId: ctx.caller.userId })),

  completeUpload: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/files/uploads/{id}/complete',
        tags,
        summary: 'Finish a direct upload: the bytes are checked (size, sniffed type), then the file appears',
      },
      errors: ['NOT_FOUND', 'UPLOAD_REJECTED', 'CONFLICT'],
    })
    .input(fileIdInput)
    .output(fileOutput)
    .mutation(({ ctx, input }) => files.completeUpload(ctx.services, { ownerId: ctx.caller.userId, id: input.id })),
});
