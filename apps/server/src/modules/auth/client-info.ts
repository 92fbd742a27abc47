import type { Locale } from '../../i18n/locale.ts';
import type { ClientInfo } from '../sessions/sessions.service.ts';

/** Who is signing in, as a session records it: from a procedure's context or a plain route's request. */
export const clientInfo = (source: {
  ip: string;
  userAgent: string | undefined;
  requestId: string;
  locale: Locale;
}): ClientInfo => ({
  ip: source.ip,
  userAgent: source.userAgent,
  requestId: source.requestId,
  locale: source.locale,
});
