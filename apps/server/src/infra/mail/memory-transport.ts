import { randomUUID } from 'node:crypto';
import type { EmailMessage, MailTransport } from './mailer.ts';

/** Keeps sent emails in memory: for tests, which read codes and links from it. */
export class MemoryTransport implements MailTransport {
  readonly name = 'memory';
  readonly delivers: boolean;
  readonly sent: (EmailMessage & { from: string; id: string })[] = [];

  /** `delivers: false` makes it stand for "no provider configured", like the outbox. */
  constructor(options: { delivers?: boolean } = {}) {
    this.delivers = options.delivers ?? true;
  }

  /** Tries of one email (by idempotency key) are sent once, like a provider that honours the key. */
  async send(message: EmailMessage & { from: string }): Promise<{ id: string }> {
    const known = message.idempotencyKey && this.sent.find((sent) => sent.idempotencyKey === message.idempotencyKey);
    if (known) return { id: known.id };
    const id = randomUUID();
    this.sent.push({ ...message, id });
    return { id };
  }

  /** The emails sent to `to`, oldest first. */
  to(to: string): (EmailMessage & { from: string; id: string })[] {
    return this.sent.filter((message) => message.to === to);
  }

  /**
   * The newest email of `template` to `to`. Always by template: background sends finish in
   * any order, so "the newest email to someone" may be another flow's.
   */
  last(to: string, template: string): (EmailMessage & { from: string; id: string }) | undefined {
    return this.to(to)
      .filter((message) => message.template === template)
      .at(-1);
  }
}
