import { z } from 'zod';
import { id, isoDateTime, pageInput, text } from '../common-schemas.ts';

export const fileOutput = z
  .object({
    id,
    name: z.string().meta({ description: 'For display (the uploaded file name)' }),
    contentType: z.string().meta({ description: 'Sniffed from the bytes' }),
    size: z.number().int().min(0),
    sha256: z.string().meta({ description: 'Hex SHA-256 of the bytes (the download ETag)' }),
    createdAt: isoDateTime,
  })
  .meta({ id: 'File' });

export const listFilesInput = z.object(pageInput);
export const listFilesOutput = z.object({ items: z.array(fileOutput), nextCursor: id.nullable() });
export const fileIdInput = z.object({ id });

export const createUploadInput = z.object({
  name: text.trim().min(1).max(255),
  contentType: text.min(3).max(100).meta({ description: 'What the bytes are: checked against them at completion' }),
  size: z.number().int().min(0).meta({ description: 'The exact size in bytes, signed into the URL' }),
});
export const createUploadOutput = z.object({
  id,
  url: z.string().meta({ description: 'PUT the bytes here, with `headers`, before `expiresAt`' }),
  method: z.literal('PUT'),
  headers: z.record(z.string(), z.string()),
  expiresAt: isoDateTime,
});
