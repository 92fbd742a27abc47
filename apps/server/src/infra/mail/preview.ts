/**
 * `pnpm email:preview`: renders every template in every locale with sample data into
 * email-preview/ (`<name>.<locale>.html` and `.txt`) and prints the paths.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '@app/db';
import { LOCALES } from '../../i18n/locale.ts';
import { renderEmail, TEMPLATE_NAMES, TEMPLATES } from './templates.ts';

const out = path.join(repoRoot, 'email-preview');
await mkdir(out, { recursive: true });
const brand = { productName: 'App', footer: 'You received this email because of an account with this address.' };
for (const name of TEMPLATE_NAMES) {
  for (const locale of LOCALES) {
    const email = await renderEmail(name, TEMPLATES[name].sample, brand, locale);
    const html = path.join(out, `${name}.${locale}.html`);
    await writeFile(html, email.html);
    await writeFile(path.join(out, `${name}.${locale}.txt`), `Subject: ${email.subject}\n\n${email.text}`);
    console.log(`${`${name}.${locale}`.padEnd(19)} ${html}  (+ .txt)  "${email.subject}"`);
  }
}
