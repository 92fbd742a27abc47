import { AppError } from '../../errors/index.ts';
import { type Locale, preferredLocale } from '../../i18n/locale.ts';
import { isoTime } from '../../infra/iso-time.ts';
import type { Services } from '../../services.ts';
import { composeEmail } from '../auth/emails.ts';
import { getUser } from '../users/users.service.ts';

/** Sends and waits for the provider (unlike the user-facing flows): the admin wants to know. */
export async function sendTestEmail(
  deps: Pick<Services, 'db' | 'config' | 'mailer' | 'clock'>,
  input: { senderId: string; to?: string | undefined; locale?: Locale | undefined },
): Promise<{ ok: true; transport: string; messageId: string; to: string }> {
  const sender = await getUser(deps, input.senderId);
  const recipient = input.to ?? sender.email;
  const message = await composeEmail(deps, {
    template: 'test-email',
    to: recipient,
    vars: { sender: sender.email, sentAt: isoTime(new Date(deps.clock.now())) },
    locale: preferredLocale(sender.locale, input.locale),
  });
  try {
    const { id } = await deps.mailer.send(message);
    return { ok: true, transport: deps.mailer.transport.name, messageId: id, to: recipient };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new AppError('EMAIL_DELIVERY_FAILED', 'Email delivery failed: {reason}', { params: { reason } });
  }
}
