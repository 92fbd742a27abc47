import { z } from 'zod';

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
 * One line shown to people (a name, a title), trimmed: no control characters (line breaks,
 * terminal escapes), none of the invisible ones that reorder or hide what a list shows (bidi
 * embeddings, overrides and isolates; zero-width spaces, joiners of words, the BOM), and at
 * least one visible character. The joiners emoji and some scripts need stay, as do the
 * left-to-right and right-to-left marks.
 */
export const lineOfText = text.trim().superRefine((value, context) => {
  // One issue, the first that applies (NUL has its own, from `text`).
  if (/\p{Cc}/u.test(value.replaceAll('\u0000', ''))) {
    context.addIssue({ code: 'custom', message: 'must not contain control characters' });
  } else if (/[\u200B\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/u.test(value)) {
    context.addIssue({ code: 'custom', message: 'must not contain invisible formatting characters' });
  } else if (value !== '' && !/[^\p{Cf}\p{M}\p{Z}]/u.test(value)) {
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
