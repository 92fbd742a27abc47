import type { Resend } from 'resend';
import type { EmailMessage, MailTransport } from './mailer.ts';

/** The id of an email whose key Resend took before, with another body: delivered then, not now. */
export const SENT_BEFORE = 'sent-before';

/** Resend's HTTP API (RESEND_BASE_URL points it elsewhere: a proxy, or a fake in tests). */
export class ResendTransport implements MailTransport {
  readonly name = 'resend';
  readonly delivers = true;
  readonly #options: { apiKey: string; baseUrl?: string | undefined };
  /** Resend's SDK (and the mail parser it brings) is loaded with the first email, not at start-up. */
  #client: Promise<Resend> | undefined;

  constructor(options: { apiKey: string; baseUrl?: string | undefined }) {
    this.#options = options;
  }

  #resend(): Promise<Resend> {
    const { apiKey, baseUrl } = this.#options;
    this.#client ??= import('resend').then(
      ({ Resend }) => new Resend(apiKey, baseUrl ? { baseUrl: baseUrl.replace(/\/+$/, '') } : undefined),
    );
    return this.#client;
  }

  async send(message: EmailMessage & { from: string }): Promise<{ id: string }> {
    const client = await this.#resend();
    const { data, error } = await client.emails.send(
      {
        from: message.from,
        to: message.to,
        subject: message.subject,
        html: message.html,
        text: message.text,
        tags: [{ name: 'template', value: message.template.replace(/[^\w-]/g, '_') }],
      },
      // Resend sends a retried email once: the same key within 24 h answers the first send.
      message.idempotencyKey ? { idempotencyKey: message.idempotencyKey } : undefined,
    );
    // The key was sent before with another body (a try whose answer was lost, rendered again
    // after a deploy or a change of name or language): Resend delivered that one, and refuses
    // this one on every try, so it is done.
    if (error?.name === 'invalid_idempotent_request') return { id: SENT_BEFORE };
    if (error || !data) throw new Error(`Resend refused the email: ${error?.message ?? 'no answer'}`);
    return { id: data.id };
  }
}
