import { DEFAULT_LOCALE, type Locale } from '../../i18n/locale.ts';
import { renderEmail, type TemplateName } from '../../infra/mail/index.ts';
import type { EmailMessage } from '../../infra/mail/mailer.ts';
import type { Services } from '../../services.ts';

/** Renders a template for `to` in `locale` (English when not given) with the product's name and footer. */
export async function composeEmail(
  deps: Pick<Services, 'config'>,
  {
    template,
    to,
    vars,
    locale = DEFAULT_LOCALE,
  }: { template: TemplateName; to: string; vars: Record<string, string>; locale?: Locale },
): Promise<EmailMessage> {
  const { productName, footer } = deps.config.email;
  const rendered = await renderEmail(template, vars, { productName, footer }, locale);
  return { to, template, ...rendered };
}

/** " Ada" or "": the greeting's name part. */
export const greeting = (name: string | null) => (name ? ` ${name}` : '');
