import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LOCALES } from '../src/i18n/locale.ts';
import {
  EMAIL_CATALOGUES,
  emailMessage,
  renderEmail,
  TEMPLATE_NAMES,
  TEMPLATES,
  type TemplateName,
} from '../src/infra/mail/templates.ts';

const brand = { productName: 'Acme', footer: 'Acme Inc., 1 Main St.' };
const source = (file: string) => readFileSync(new URL(`../src/infra/mail/templates/${file}`, import.meta.url), 'utf8');
const messagesOf = (locale: (typeof LOCALES)[number], name: TemplateName): Record<string, unknown> =>
  (EMAIL_CATALOGUES[locale] as Record<string, Record<string, unknown> | undefined>)[name] ?? {};
const cases = TEMPLATE_NAMES.flatMap((name) => LOCALES.map((locale) => [name, locale] as const));

describe('email templates', () => {
  it.each(cases)('%s (%s) compiles without MJML errors and has every part', async (name, locale) => {
    const email = await renderEmail(name, TEMPLATES[name].sample, brand, locale);
    expect(email.subject).toContain('Acme');
    expect(email.subject).not.toMatch(/[{}]/);
    expect(email.html).toMatch(/^<!doctype html>/i);
    expect(email.html).toContain('Acme Inc., 1 Main St.');
    expect(email.html).not.toMatch(/\{\{|\{\w+\}|<\/?mj-/);
    expect(email.html).toMatch(new RegExp(`<html lang="${locale}"`));
    expect(email.html).not.toMatch(/lang="(?!en"|fr")/);
    expect(email.text).toContain('Acme Inc., 1 Main St.');
    expect(email.text).not.toMatch(/\{\{|\{\w+\}|<\w/);
    for (const value of Object.values(TEMPLATES[name].sample)) {
      if (value.trim()) expect(email.text).toContain(value.trim());
    }
    // Every sentence of the catalogue ends up in one of the parts (apostrophes are escaped in the HTML).
    const html = email.html.replaceAll('&#39;', "'");
    const sentences = Object.values(messagesOf(locale, name)).map((s) => String(s).split('{')[0]?.trim());
    for (const start of sentences) {
      if (start) expect(`${html}${email.text}`).toContain(start);
    }
  });

  it('keeps the English wording', async () => {
    const verify = await renderEmail('verify-email', TEMPLATES['verify-email'].sample, brand, 'en');
    expect(verify.subject).toBe('Confirm your email for Acme');
    expect(verify.text).toContain('Hello Ada,');
    expect(verify.text).toContain('Please confirm that this is your email address for Acme:');
    expect(verify.text).toContain('The link works once. If you did not sign up, ignore this email.');
    expect(verify.html).toContain('Confirm my email');
    const code = await renderEmail('one-time-code', { code: '123456', minutes: '10' }, brand, 'en');
    expect(code.subject).toBe('123456 is your Acme code');
    expect(code.text).toMatch(/^Your Acme sign-in code: 123456\n/);
  });

  it('writes French in French', async () => {
    const en = await renderEmail('verify-email', TEMPLATES['verify-email'].sample, brand, 'en');
    const fr = await renderEmail('verify-email', TEMPLATES['verify-email'].sample, brand, 'fr');
    expect(fr.subject).not.toBe(en.subject);
    expect(fr.subject).toMatch(/\bvotre\b/);
    expect(fr.text).toContain('Bonjour Ada,');
    expect(fr.html).toContain('Confirmer mon adresse e-mail');
    for (const name of TEMPLATE_NAMES) {
      const [subjectEn, subjectFr] = (['en', 'fr'] as const).map((l) => messagesOf(l, name).subject);
      expect(subjectFr, name).not.toBe(subjectEn);
    }
    const code = await renderEmail('one-time-code', { code: '123456', minutes: '10' }, brand, 'fr');
    expect(code.subject).toBe('123456 est votre code Acme');
  });

  it.each(LOCALES)('escapes variables in the HTML part (%s), keeps them readable in the text part', async (locale) => {
    const email = await renderEmail(
      'verify-email',
      { greeting: ' <script>alert(1)</script>', link: 'https://x.test/?a=1&b="2"' },
      brand,
      locale,
    );
    expect(email.html).not.toContain('<script>alert(1)</script>');
    expect(email.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(email.html).toContain('href="https://x.test/?a=1&amp;b=&quot;2&quot;"');
    expect(email.html).not.toContain('b="2"');
    expect(email.text).toContain('<script>alert(1)</script>');
  });

  it('escapes the brand, and never reads an inserted value as a placeholder', async () => {
    const email = await renderEmail(
      'welcome',
      { email: '{{t.subject}} {productName} <b>@x.test', link: 'https://x.test' },
      { productName: 'A&B <i>', footer: 'F' },
      'fr',
    );
    expect(email.subject).toBe('Bienvenue sur A&B <i>');
    expect(email.html).toContain('Bienvenue sur A&amp;B &lt;i&gt;');
    expect(email.html).not.toContain('<i>');
    expect(email.html).toContain('{{t.subject}} {productName} &lt;b&gt;@x.test');
    expect(email.text).toContain('{{t.subject}} {productName} <b>@x.test');
  });

  it.each(LOCALES)('refuses to send a template with a missing variable (%s)', async (locale) => {
    await expect(renderEmail('one-time-code', { minutes: '10' }, brand, locale)).rejects.toThrow(/"code" has no value/);
    await expect(renderEmail('verify-email', { greeting: '' }, brand, locale)).rejects.toThrow(/"link" has no value/);
  });
});

describe('email catalogues', () => {
  const english = EMAIL_CATALOGUES.en as Record<string, Record<string, unknown>>;

  it('English has a catalogue for every template, and nothing else', () => {
    expect(Object.keys(english).sort()).toEqual([...TEMPLATE_NAMES].sort());
  });

  it.each(LOCALES)('%s has exactly the keys English has, every one a non-empty string', (locale) => {
    const catalogue = EMAIL_CATALOGUES[locale] as Record<string, Record<string, unknown>>;
    expect(Object.keys(catalogue).sort()).toEqual([...TEMPLATE_NAMES].sort());
    for (const name of TEMPLATE_NAMES) {
      const messages = catalogue[name] ?? {};
      expect(Object.keys(messages).sort(), `${locale}/${name}`).toEqual(Object.keys(english[name] ?? {}).sort());
      for (const [key, value] of Object.entries(messages)) {
        expect(typeof value === 'string' && value.trim() !== '', `${locale}/${name}.${key}`).toBe(true);
      }
    }
  });

  it.each(TEMPLATE_NAMES)('%s: the template uses exactly the sentences of its catalogue', (name) => {
    const used = new Set(
      [source('layout.mjml'), source(`${name}.mjml`), source(`${name}.txt`)].flatMap((file) =>
        [...file.matchAll(/\{\{t\.(\w+)\}\}/g)].map((m) => m[1]),
      ),
    );
    const keys = Object.keys(english[name] ?? {});
    for (const key of used) expect(keys, `{{t.${key}}} in ${name}`).toContain(key);
    // The converse: no sentence a translator would translate for nothing.
    for (const key of keys) expect(used, `${name}.${key} is never used`).toContain(key);
    // No sentence left in the markup: outside tags and placeholders, only punctuation and spaces.
    for (const file of [`${name}.mjml`, `${name}.txt`]) {
      const rest = source(file)
        .replace(/<[^>]*>/g, '')
        .replace(/\{\{[\w.]+\}\}/g, '');
      expect(rest, file).not.toMatch(/\p{L}/u);
    }
  });

  it.each(cases)('%s (%s): every {var} of a sentence is a variable the template receives', (name, locale) => {
    const received = new Set([...Object.keys(TEMPLATES[name].sample), 'productName', 'footer']);
    for (const [key, value] of Object.entries(messagesOf(locale, name))) {
      for (const [, variable] of String(value).matchAll(/\{(\w+)\}/g)) {
        expect(received, `${locale}/${name}.${key} uses {${variable}}`).toContain(variable);
      }
    }
  });

  it('falls back to English for a sentence (or a template) a locale lacks or left empty', () => {
    const catalogues = {
      en: EMAIL_CATALOGUES.en,
      fr: { 'verify-email': { subject: 'Confirmez {productName}', preview: '' }, welcome: {} },
    };
    expect(emailMessage('verify-email', 'subject', 'fr', catalogues)).toBe('Confirmez {productName}');
    expect(emailMessage('verify-email', 'hello', 'fr', catalogues)).toBe('Hello{greeting},');
    expect(emailMessage('verify-email', 'preview', 'fr', catalogues)).toBe('One click to confirm your address');
    expect(emailMessage('welcome', 'heading', 'fr', catalogues)).toBe('Welcome to {productName}!');
    expect(emailMessage('one-time-code', 'intro', 'fr', catalogues)).toBe('Your {productName} sign-in code:');
    expect(() => emailMessage('welcome', 'nope', 'fr', catalogues)).toThrow(/"welcome" has no message "nope"/);
  });
});
