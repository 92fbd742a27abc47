import { z } from 'zod';

/** Ids are UUIDv7 strings. */
export const id = z.uuid({ error: 'must be a UUID' });

/** Trimmed and lower-cased before it is checked, as every stored email is. */
export const email = z
  .string()
  .trim()
  .toLowerCase()
  .max(320)
  .pipe(z.email({ error: 'must be an email address' }))
  .meta({ example: 'ada@example.com' });

/** 8-128 characters with at least one letter and one digit. */
export const newPassword = z
  .string()
  .min(8, { error: 'must be at least 8 characters' })
  .max(128, { error: 'must be at most 128 characters' })
  .regex(/\p{L}/u, { error: 'must contain a letter' })
  .regex(/\p{N}/u, { error: 'must contain a digit' });

/** A password as typed at sign-in: only bounded, never judged (old passwords may predate the rules). */
export const password = z.string().min(1, { error: 'is required' }).max(128);

export const isoDateTime = z.iso.datetime({ offset: true }).meta({ example: '2026-11-21T12:00:00.000Z' });

/** Keyset pagination: `cursor` is the `nextCursor` of the previous page. */
export const pageInput = {
  limit: z.number().int().min(1).max(100).default(20),
  cursor: id.optional(),
  search: z.string().trim().max(200).optional(),
};

export const ok = z.object({ ok: z.literal(true) });
