import type { Services } from '../../services.ts';
import { composeEmail } from '../auth/emails.ts';
import { getUser } from '../users/users.service.ts';

/** Sends and waits for the provider (unlike the user-facing flows): the admin wants to know. */
export async function sendTestEmail(
  deps: Pick<Services, 'db' | 'config' | 'mailer' | 'clock'>,
  senderId: string,
  to: string | undefined,
): Promise<{ ok: true; transport: string; messageId: string; to: string } | { ok: false; reason: string }> {
  const sender = await getUser(deps.db, senderId);
  const recipient = to ?? sender.email;
  const message = await composeEmail(deps, 'test-email', recipient, {
    sender: sender.email,
    sentAt: new Date(deps.clock.now()).toISOString(),
  });
  try {
    const { id } = await deps.mailer.send(message);
    return { ok: true, transport: deps.mailer.transport.name, messageId: id, to: recipient };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}
