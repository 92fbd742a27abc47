/** `pnpm email:preview`: renders every template with sample data into email-preview/ and prints the paths. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '@app/db';
import { renderEmail, TEMPLATE_NAMES, TEMPLATES } from './templates.ts';

const out = path.join(repoRoot, 'email-preview');
await mkdir(out, { recursive: true });
const brand = { productName: 'App', footer: 'You received this email because of an account with this address.' };
for (const name of TEMPLATE_NAMES) {
  const email = await renderEmail(name, TEMPLATES[name].sample, brand);
  const html = path.join(out, `${name}.html`);
  await writeFile(html, email.html);
  await writeFile(path.join(out, `${name}.txt`), `Subject: ${email.subject}\n\n${email.text}`);
  console.log(`${name.padEnd(16)} ${html}  (+ .txt)  "${email.subject}"`);
}
