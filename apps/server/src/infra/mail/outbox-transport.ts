import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isoTime } from '../iso-time.ts';
import type { EmailMessage, MailTransport } from './mailer.ts';

export interface OutboxEntry {
  id: string;
  to: string;
  from: string;
  subject: string;
  template: string;
  sentAt: string;
}

const ID = /^\d{8}T\d{9}Z-[0-9a-f-]{36}$/;

/**
 * Development without an email provider: every email is written to the outbox folder as
 * HTML, text and JSON, and listed at /dev/outbox. Never used in production.
 */
export class OutboxTransport implements MailTransport {
  readonly name = 'outbox';
  readonly delivers = false;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async send(message: EmailMessage & { from: string }): Promise<{ id: string }> {
    const sentAt = isoTime(new Date());
    // Sortable by time, unique, and safe as a file name.
    const id = `${sentAt.replace(/[-:.]/g, '')}-${randomUUID()}`;
    const entry: OutboxEntry = {
      id,
      to: message.to,
      from: message.from,
      subject: message.subject,
      template: message.template,
      sentAt,
    };
    await mkdir(this.dir, { recursive: true });
    await Promise.all([
      writeFile(path.join(this.dir, `${id}.json`), JSON.stringify(entry, null, 2)),
      writeFile(path.join(this.dir, `${id}.html`), message.html),
      writeFile(path.join(this.dir, `${id}.txt`), message.text),
    ]);
    return { id };
  }

  /** Newest first. */
  async list(): Promise<OutboxEntry[]> {
    let files: string[];
    try {
      files = await readdir(this.dir);
    } catch {
      return [];
    }
    const ids = files
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .filter((id) => ID.test(id));
    const entries = await Promise.all(
      ids.map(async (id) => JSON.parse(await readFile(path.join(this.dir, `${id}.json`), 'utf8'))),
    );
    return (entries as OutboxEntry[]).sort((a, b) => b.id.localeCompare(a.id));
  }

  /** The stored HTML or text of one email; undefined for an unknown (or malformed) id. */
  async read(id: string, part: 'html' | 'txt'): Promise<string | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      return await readFile(path.join(this.dir, `${id}.${part}`), 'utf8');
    } catch {
      return undefined;
    }
  }
}
