import type { Config } from '../../config.ts';
import { Mailer, type MailTransport } from './mailer.ts';
import { OutboxTransport } from './outbox-transport.ts';
import { ResendTransport } from './resend-transport.ts';
import { SmtpTransport } from './smtp-transport.ts';

export { type EmailMessage, Mailer, type MailTransport } from './mailer.ts';
export { MemoryTransport } from './memory-transport.ts';
export { OutboxTransport } from './outbox-transport.ts';
export { SmtpTransport } from './smtp-transport.ts';
export { type RenderedEmail, renderEmail, type TemplateName } from './templates.ts';

/** The transport the config chose: Resend, an SMTP server, or (never in production) the development outbox. */
export function createMailer(config: Config, transport?: MailTransport): Mailer {
  return new Mailer(transport ?? configuredTransport(config.email), {
    from: config.email.from,
    timeoutMs: config.email.sendTimeoutMs,
  });
}

function configuredTransport(email: Config['email']): MailTransport {
  const { delivery } = email;
  switch (delivery.transport) {
    case 'resend':
      return new ResendTransport({ apiKey: delivery.apiKey, baseUrl: delivery.baseUrl });
    case 'smtp':
      return new SmtpTransport({ ...delivery.server, timeoutMs: email.sendTimeoutMs });
    case 'outbox':
      return new OutboxTransport(email.outboxDir);
  }
}
