import { describe, expect, it } from 'vitest';
import { renderEmail, TEMPLATE_NAMES, TEMPLATES } from '../src/infra/mail/templates.ts';

const brand = { productName: 'Acme', footer: 'Acme Inc., 1 Main St.' };

describe('email templates', () => {
  it.each(TEMPLATE_NAMES)('%s compiles without MJML errors and has every part', async (name) => {
    const email = await renderEmail(name, TEMPLATES[name].sample, brand);
    expect(email.subject).toContain('Acme');
    expect(email.html).toMatch(/^<!doctype html>/i);
    expect(email.html).toContain('Acme Inc., 1 Main St.');
    expect(email.html).not.toMatch(/\{\{\w+\}\}|<\/?mj-/);
    expect(email.html).toMatch(/<html lang="en"/);
    expect(email.text).toContain('Acme Inc., 1 Main St.');
    expect(email.text).not.toMatch(/\{\{\w+\}\}|<\w/);
    for (const value of Object.values(TEMPLATES[name].sample)) {
      if (value.trim()) expect(email.text).toContain(value.trim());
    }
  });

  it('escapes variables in the HTML part, keeps them readable in the text part', async () => {
    const email = await renderEmail(
      'verify-email',
      { greeting: ' <script>alert(1)</script>', link: 'https://x.test/?a=1&b="2"' },
      brand,
    );
    expect(email.html).not.toContain('<script>alert(1)</script>');
    expect(email.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(email.html).toContain('href="https://x.test/?a=1&amp;b=&quot;2&quot;"');
    expect(email.text).toContain('<script>alert(1)</script>');
  });

  it('refuses to send a template with a missing variable', async () => {
    await expect(renderEmail('one-time-code', { minutes: '10' }, brand)).rejects.toThrow(/"code" has no value/);
  });
});
