/**
 * Email templates: `templates/<name>.mjml` (a fragment placed in layout.mjml) and
 * `templates/<name>.txt` (the plain-text part). Each is compiled once and cached;
 * variables (`{{name}}`) are HTML-escaped in the HTML part.
 */
import { readFile } from 'node:fs/promises';

const dir = new URL('./templates/', import.meta.url);

interface TemplateSpec {
  subject(vars: Record<string, string>): string;
  preview(vars: Record<string, string>): string;
  /** Example values for `pnpm email:preview` and the template tests. */
  sample: Record<string, string>;
}

export const TEMPLATES = {
  'verify-email': {
    subject: (v) => `Confirm your email for ${v.productName}`,
    preview: () => 'One click to confirm your address',
    sample: { greeting: ' Ada', link: 'http://localhost:3000/verify-email?token=sample-token' },
  },
  'reset-password': {
    subject: (v) => `Reset your ${v.productName} password`,
    preview: (v) => `This link works for ${v.minutes} minutes`,
    sample: { greeting: ' Ada', link: 'http://localhost:3000/reset-password?token=sample-token', minutes: '60' },
  },
  'one-time-code': {
    subject: (v) => `${v.code} is your ${v.productName} code`,
    preview: (v) => `It works for ${v.minutes} minutes`,
    sample: { code: '123456', minutes: '10' },
  },
  welcome: {
    subject: (v) => `Welcome to ${v.productName}`,
    preview: () => 'Your account is ready',
    sample: { email: 'ada@example.com', link: 'http://localhost:3000' },
  },
  'test-email': {
    subject: (v) => `Test email from ${v.productName}`,
    preview: () => 'Email delivery works',
    sample: { sender: 'admin@example.com', sentAt: '2026-11-21T12:00:00.000Z' },
  },
} satisfies Record<string, TemplateSpec>;

export type TemplateName = keyof typeof TEMPLATES;
export const TEMPLATE_NAMES = Object.keys(TEMPLATES) as TemplateName[];

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

function fill(source: string, vars: Record<string, string>, encode: (value: string) => string): string {
  return source.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
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

export async function renderEmail(
  name: TemplateName,
  vars: Record<string, string>,
  brand: Brand,
): Promise<RenderedEmail> {
  const spec: TemplateSpec = TEMPLATES[name];
  const all = { ...vars, productName: brand.productName, footer: brand.footer };
  const subject = spec.subject(all);
  const { html, text } = await compile(name);
  return {
    subject,
    html: fill(html, { ...all, subject, preview: spec.preview(all) }, escapeHtml),
    text: `${fill(text, all, (value) => value).trim()}\n\n--\n${brand.footer}\n`,
  };
}
