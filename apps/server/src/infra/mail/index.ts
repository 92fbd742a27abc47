import type { Config } from '../../config.ts';
import type { Logger } from '../logger.ts';
import { Mailer, type MailTransport } from './mailer.ts';
import { OutboxTransport } from './outbox-transport.ts';
import { ResendTransport } from './resend-transport.ts';

export { type EmailMessage, Mailer, type MailTransport } from './mailer.ts';
export { MemoryTransport } from './memory-transport.ts';
export { OutboxTransport } from './outbox-transport.ts';
export { type RenderedEmail, renderEmail, type TemplateName } from './templates.ts';

/** Resend when RESEND_API_KEY is set; otherwise (never in production) the development outbox. */
export function createMailer(config: Config, log: Logger, transport?: MailTransport): Mailer {
  const chosen =
    transport ??
    (config.email.resendApiKey
      ? new ResendTransport({ apiKey: config.email.resendApiKey, baseUrl: config.email.resendBaseUrl })
      : new OutboxTransport(config.email.outboxDir));
  return new Mailer(chosen, { from: config.email.from, timeoutMs: config.email.sendTimeoutMs, log });
}
