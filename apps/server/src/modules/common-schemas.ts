import { z } from 'zod';
import { lineProblem } from '../infra/text.ts';

/**
 * Where every string input starts (`text`, never `z.string()`): Postgres cannot store NUL
 * characters, so they are refused here, with the field named, instead of failing in SQL;
 * nor can UTF-8 carry half of a UTF-16 surrogate pair, which would be stored as U+FFFD,
 * silently changed. A test walks every procedure's input and checks that each string refuses both.
 */
export const text = z
  .string()
  .refine((value) => !value.includes('\u0000'), { error: 'must not contain NUL (\\u0000) characters' })
  .refine((value) => value.isWellFormed(), { error: 'must not contain unpaired surrogates (invalid Unicode)' });

/**
 * One line shown to people (a name, a title), trimmed: none of the characters `lineProblem`
 * names (control and invisible formatting characters), and at least one visible character.
 */
export const lineOfText = text.trim().superRefine((value, context) => {
  // One issue, the first that applies (NUL has its own, from `text`).
  const problem = lineProblem(value);
  if (problem === 'control') {
    context.addIssue({ code: 'custom', message: 'must not contain control characters' });
  } else if (problem === 'invisible') {
    context.addIssue({ code: 'custom', message: 'must not contain invisible formatting characters' });
  } else if (problem === 'blank') {
    context.addIssue({ code: 'custom', message: 'must contain a visible character' });
  }
});

/**
 * Ids are UUIDv7 strings, lower-cased as Postgres writes them: an id given in capitals is the
 * same id wherever it is compared, in SQL or in code.
 */
export const id = z.uuid({ error: 'must be a UUID' }).toLowerCase();

/** Trimmed and lower-cased before it is checked, as every stored email is. */
export const email = text
  .trim()
  .toLowerCase()
  .max(320)
  .pipe(z.email({ error: 'must be an email address' }))
  .meta({ example: 'ada@example.com' });

/** 8-128 characters with at least one letter and one digit. */
export const newPassword = text
  .min(8, { error: 'must be at least 8 characters' })
  .max(128, { error: 'must be at most 128 characters' })
  .regex(/\p{L}/u, { error: 'must contain a letter' })
  .regex(/\p{N}/u, { error: 'must contain a digit' });

/** A password as typed at sign-in: only bounded, never judged (old passwords may predate the rules). */
export const password = text.min(1, { error: 'is required' }).max(128);

export const isoDateTime = z.iso.datetime({ offset: true }).meta({ example: '2026-11-21T12:00:00.000Z' });

/**
 * Keyset pagination: `cursor` is the `nextCursor` of the previous page. Null (the `nextCursor`
 * of a last page, a pager's first page parameter) or empty (`?cursor=`) is the first page.
 */
export const pageInput = {
  limit: z.number().int().min(1).max(100).default(20),
  cursor: z
    .union([id, z.literal(''), z.null()])
    .optional()
    .transform((cursor) => cursor || undefined),
  search: text.trim().max(200).optional(),
};

export const ok = z.object({ ok: z.literal(true) });
