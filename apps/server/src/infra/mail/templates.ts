/**
 * Email templates, localized. Three kinds of file:
 *
 * - `templates/<name>.mjml`, a fragment placed in `templates/layout.mjml` (the HTML part), and
 *   `templates/<name>.txt` (the plain-text part): markup only, no human-readable sentence.
 * - `../../i18n/locales/<locale>/emails.json`, the sentences, which a translator edits:
 *   `{ "<template name>": { "subject": "…", "preview": "…", "<key>": "…" } }`. A sentence
 *   names the template's variables as `{var}` (see `interpolate` in i18n/locale.ts).
 *
 * The syntax in the .mjml and .txt files:
 *
 * - `{{t.key}}` inserts the catalogue sentence `key` of this template, in the email's locale,
 *   with its `{var}` placeholders filled. `layout.mjml` uses `{{t.subject}}` and `{{t.preview}}`.
 * - `{{var}}` inserts a variable as is, for markup that needs it (`href="{{link}}"`, the code).
 *   Besides the caller's variables there are `productName` and `footer` (the brand) and
 *   `lang` (the locale, for `<mjml lang="{{lang}}">`).
 *
 * The MJML is compiled once per template (not per locale) and cached; the values are filled
 * into the compiled HTML afterwards, in one pass, so nothing inserted is read as a placeholder.
 * In the HTML part every inserted value is HTML-escaped, catalogue sentences (after filling)
 * included; the text part is not escaped. A sentence missing from a locale's catalogue (or
 * empty there) falls back to English; a variable without a value throws, as does a `{{t.key}}`
 * English does not have.
 */
import { readFile } from 'node:fs/promises';
import { DEFAULT_LOCALE, interpolate, type Locale } from '../../i18n/locale.ts';
import en from '../../i18n/locales/en/emails.json' with { type: 'json' };
import fr from '../../i18n/locales/fr/emails.json' with { type: 'json' };

const dir = new URL('./templates/', import.meta.url);

interface TemplateSpec {
  /** Example values for `pnpm email:preview` and the template tests. */
  sample: Record<string, string>;
}

export const TEMPLATES = {
  'verify-email': {
    sample: { greeting: ' Ada', link: 'http://localhost:3000/verify-email?token=sample-token' },
  },
  'reset-password': {
    sample: { greeting: ' Ada', link: 'http://localhost:3000/reset-password?token=sample-token', minutes: '60' },
  },
  'one-time-code': {
    sample: { code: '123456', minutes: '10' },
  },
  welcome: {
    sample: { email: 'ada@example.com', link: 'http://localhost:3000' },
  },
  'test-email': {
    sample: { sender: 'admin@example.com', sentAt: '2026-11-21T12:00:00.000Z' },
  },
} satisfies Record<string, TemplateSpec>;

export type TemplateName = keyof typeof TEMPLATES;
export const TEMPLATE_NAMES = Object.keys(TEMPLATES) as TemplateName[];

/** One template's sentences, by key. */
export type EmailMessages = Record<string, string>;
/** A locale's catalogue, as a translator may leave it: templates or sentences can be missing. */
export type EmailCatalogue = Partial<Record<TemplateName, Partial<EmailMessages>>>;

/** The shipped catalogues. English is complete (checked here) and is the fallback of the others. */
export const EMAIL_CATALOGUES = {
  en: en satisfies Record<TemplateName, EmailMessages & { subject: string; preview: string }>,
  fr,
} satisfies Record<Locale, EmailCatalogue>;

/**
 * The sentence `key` of template `name` in `locale`, or English's when the locale lacks it (or
 * left it empty). Throws only when English lacks it too: the template names a sentence nobody wrote.
 */
export function emailMessage(
  name: TemplateName,
  key: string,
  locale: Locale,
  catalogues: Partial<Record<Locale, EmailCatalogue>> = EMAIL_CATALOGUES,
): string {
  for (const candidate of [locale, DEFAULT_LOCALE]) {
    const value = catalogues[candidate]?.[name]?.[key];
    if (typeof value === 'string' && value !== '') return value;
  }
  throw new Error(`Email template "${name}" has no message "${key}"`);
}

export interface Brand {
  productName: string;
  footer: string;
}

const compiled = new Map<TemplateName, Promise<{ html: string; text: string }>>();

/** Compiles the MJML once (strict: any MJML error throws) and reads the text part. */
function compile(name: TemplateName): Promise<{ html: string; text: string }> {
  let cached = compiled.get(name);
  if (!cached) {
    cached = (async () => {
      const [layout, fragment, text] = await Promise.all([
        readFile(new URL('layout.mjml', dir), 'utf8'),
        readFile(new URL(`${name}.mjml`, dir), 'utf8'),
        readFile(new URL(`${name}.txt`, dir), 'utf8'),
      ]);
      // Loaded on first use: MJML is ~40% of the server's start-up time, and most starts send no email.
      const { default: mjml2html } = await import('mjml');
      const { html } = await mjml2html(layout.replace('<!-- content -->', fragment), { validationLevel: 'strict' });
      return { html, text };
    })();
    compiled.set(name, cached);
  }
  return cached;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);

/** Fills a sentence's `{var}` placeholders; a variable without a value throws. */
function sentence(message: string, vars: Record<string, string>): string {
  for (const [, key] of message.matchAll(/\{(\w+)\}/g)) {
    if (vars[key as string] === undefined) throw new Error(`Email template variable "${key}" has no value`);
  }
  return interpolate(message, vars);
}

/** Fills `{{t.key}}` (a sentence) and `{{var}}` (a variable) in one pass, each through `encode`. */
function fill(
  source: string,
  vars: Record<string, string>,
  t: (key: string) => string,
  encode: (value: string) => string,
): string {
  return source.replace(/\{\{(t\.)?(\w+)\}\}/g, (_, message: string | undefined, key: string) => {
    if (message) return encode(sentence(t(key), vars));
    const value = vars[key];
    if (value === undefined) throw new Error(`Email template variable "${key}" has no value`);
    return encode(value);
  });
}

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
}

/**
 * Renders template `name` in `locale`: the subject, the HTML part and the text part (with the
 * footer). `vars` are the template's variables; the brand adds `productName` and `footer`.
 */
export async function renderEmail(
  name: TemplateName,
  vars: Record<string, string>,
  brand: Brand,
  locale: Locale,
): Promise<RenderedEmail> {
  const all = { ...vars, productName: brand.productName, footer: brand.footer, lang: locale };
  const t = (key: string) => emailMessage(name, key, locale);
  const { html, text } = await compile(name);
  return {
    subject: sentence(t('subject'), all),
    html: fill(html, all, t, escapeHtml),
    text: `${fill(text, all, t, (value) => value).trim()}\n\n--\n${brand.footer}\n`,
  };
}
