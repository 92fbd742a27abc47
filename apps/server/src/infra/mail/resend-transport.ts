import { Resend } from 'resend';
import type { EmailMessage, MailTransport } from './mailer.ts';

/** Resend's HTTP API (RESEND_BASE_URL points it elsewhere: a proxy, or a fake in tests). */
export class ResendTransport implements MailTransport {
  readonly name = 'resend';
  readonly delivers = true;
  readonly #client: Resend;

  constructor(options: { apiKey: string; baseUrl?: string | undefined }) {
    this.#client = new Resend(
      options.apiKey,
      options.baseUrl ? { baseUrl: options.baseUrl.replace(/\/+$/, '') } : undefined,
    );
  }

  async send(message: EmailMessage & { from: string }): Promise<{ id: string }> {
    const { data, error } = await this.#client.emails.send(
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
    if (error || !data) throw new Error(`Resend refused the email: ${error?.message ?? 'no answer'}`);
    return { id: data.id };
  }
}
