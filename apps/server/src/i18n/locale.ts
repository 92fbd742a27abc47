/**
 * The languages the API answers in, and which one a request asks for. Messages live in
 * `locales/<locale>/*.json`, files a translator edits; English is the fallback.
 */

export const LOCALES = ['en', 'fr'] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'en';

const isLocale = (value: string): value is Locale => (LOCALES as readonly string[]).includes(value);

/**
 * The best supported language for an `Accept-Language` header (RFC 9110 §12.5.4): by weight,
 * then by order; `fr-CA` matches `fr`; `q=0` excludes; anything unreadable is skipped.
 * English when nothing matches or the header is absent.
 */
export function negotiateLocale(header: string | undefined): Locale {
  if (!header) return DEFAULT_LOCALE;
  let best: Locale | undefined;
  let bestWeight = 0;
  for (const part of header.slice(0, 512).split(',')) {
    const [tag = '', ...params] = part.trim().split(';');
    const primary = tag.trim().toLowerCase().split('-')[0] ?? '';
    let weight = 1;
    for (const param of params) {
      const [key, value] = param.trim().split('=');
      if (key?.trim().toLowerCase() === 'q') weight = Number(value);
    }
    if (!(weight > 0 && weight <= 1)) continue;
    const candidate = primary === '*' ? DEFAULT_LOCALE : isLocale(primary) ? primary : undefined;
    if (candidate && weight > bestWeight) {
      best = candidate;
      bestWeight = weight;
    }
  }
  return best ?? DEFAULT_LOCALE;
}

/** A stored or requested locale, if it is one we ship. */
export function supportedLocale(value: string | null | undefined): Locale | undefined {
  return value && isLocale(value) ? value : undefined;
}

/**
 * Marks a response whose words follow the request's `Accept-Language` (an error body):
 * `Content-Language` says which (the response's headers then name `Accept-Language` in `Vary`,
 * common-headers.ts: a shared cache does not serve it to someone who asked for another language).
 */
export function markLanguage(reply: { header(name: string, value: string): unknown }, locale: Locale): void {
  reply.header('content-language', locale);
}

/** The language to answer a request's error in, marked on its reply (`markLanguage`). */
export function answerLanguage(
  request: { headers: { 'accept-language'?: string | undefined } },
  reply: Parameters<typeof markLanguage>[0],
): Locale {
  const locale = negotiateLocale(request.headers['accept-language']);
  markLanguage(reply, locale);
  return locale;
}

/** The language to write to an account in: its own, else the one the request asked for, else English. */
export function preferredLocale(stored: string | null | undefined, requested: Locale | undefined): Locale {
  return supportedLocale(stored) ?? requested ?? DEFAULT_LOCALE;
}

/** Fills `{name}` placeholders; a placeholder without a value stays as written. */
export function interpolate(template: string, params: Record<string, string | number> | undefined): string {
  if (!params) return template;
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const value = params[key];
    return value === undefined ? whole : String(value);
  });
}
