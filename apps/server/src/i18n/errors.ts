/**
 * Error messages in the language of the request. The catalogues
 * (`locales/<locale>/errors.json`) hold:
 * - `codes`: a message per app code, for an error whose own message has no translation
 *   (or that has no message of ours: a route that does not exist, a body Fastify refused);
 * - `messages`: translations of the services' messages, keyed by the English message as
 *   written in the code (`{name}` placeholders included);
 * - `issues`: translations of the schemas' own validation messages; zod's built-in ones
 *   come translated from zod's locales.
 * The `appCode` never changes with the language; English answers keep the services' words.
 */
import { z } from 'zod';
import { DEFAULT_LOCALE, interpolate, type Locale } from './locale.ts';
import en from './locales/en/errors.json' with { type: 'json' };
import fr from './locales/fr/errors.json' with { type: 'json' };

/** An app code (errors/app-error-codes.ts); a test checks each has a message in every language. */
type AppCode = string;

export interface ErrorCatalogue {
  codes: Record<AppCode, string>;
  messages: Record<string, string>;
  issues: Record<string, string>;
}

export const ERROR_CATALOGUES: Record<Locale, ErrorCatalogue> = { en, fr };

const ZOD_LOCALES: Record<Locale, () => { localeError: z.core.$ZodErrorMap }> = {
  en: z.locales.en,
  fr: z.locales.fr,
};

/** The message of an error answered in `locale`. */
export function errorMessage(
  locale: Locale,
  error: {
    appCode: AppCode;
    message: string;
    template?: string | undefined;
    params?: Record<string, string | number> | undefined;
  },
): string {
  const catalogue = ERROR_CATALOGUES[locale];
  const translated = error.template === undefined ? undefined : catalogue.messages[error.template];
  if (translated) return interpolate(translated, error.params);
  if (locale === DEFAULT_LOCALE) return error.message;
  return codeMessage(locale, error.appCode);
}

/** The message of an app code alone, in `locale` (for errors that carry none of ours). */
export function codeMessage(locale: Locale, appCode: AppCode): string {
  return ERROR_CATALOGUES[locale].codes[appCode] ?? ERROR_CATALOGUES[DEFAULT_LOCALE].codes[appCode] ?? appCode;
}

/** A sample value of each type zod names in "received …" (the issue no longer holds the input). */
const RECEIVED_SAMPLES: Record<string, unknown> = {
  string: '',
  number: 0,
  bigint: 0n,
  boolean: false,
  undefined: undefined,
  null: null,
  array: [],
  object: {},
  symbol: Symbol('received'),
  function: () => undefined,
  date: new Date(0),
  nan: Number.NaN,
};

function zodMessage(locale: Locale, issue: z.core.$ZodIssue, input: unknown): string | undefined {
  const result = ZOD_LOCALES[locale]().localeError({ ...issue, input } as never);
  return typeof result === 'string' ? result : result?.message;
}

/**
 * A validation issue's message in `locale`: the catalogue's translation of a schema's own
 * message, or zod's own message in that language; as it came when neither applies.
 */
export function issueMessage(locale: Locale, issue: z.core.$ZodIssue): string {
  const own = ERROR_CATALOGUES[locale].issues[issue.message];
  if (own) return own;
  if (locale === DEFAULT_LOCALE) return issue.message;
  const received = issue.code === 'invalid_type' ? /received (\w+)$/.exec(issue.message)?.[1] : undefined;
  const input = received === undefined ? undefined : RECEIVED_SAMPLES[received.toLowerCase()];
  // Only zod's own English message is replaced: a schema's message is not zod's.
  if (zodMessage(DEFAULT_LOCALE, issue, input) !== issue.message) return issue.message;
  return zodMessage(locale, issue, input) ?? issue.message;
}
