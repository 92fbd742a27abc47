import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { type Locale, negotiateLocale } from '../i18n/locale.ts';
import type { Services } from '../services.ts';

export interface Context {
  services: Services;
  requestId: string;
  log: FastifyBaseLogger;
  /** Client IP (X-Forwarded-For is believed only with TRUST_PROXY). */
  ip: string;
  userAgent: string | undefined;
  /** The language of error messages (and of emails with no account language): from `Accept-Language`. */
  locale: Locale;
  /** Whether responses may carry stack traces and internal messages (development only). */
  exposeErrorDetails: boolean;
  /** The raw `Authorization` header; authedProcedure turns it into `caller` (with auth's `authenticate`). */
  authorization: string | undefined;
  /** Sets a response header (rate-limit headers, for instance). */
  setHeader(name: string, value: string): void;
}

export function createContextFactory(services: Services) {
  return ({ req, res }: { req: FastifyRequest; res: FastifyReply }): Context => ({
    services,
    requestId: req.id,
    log: req.log,
    ip: req.ip,
    userAgent: req.headers['user-agent'],
    locale: negotiateLocale(req.headers['accept-language']),
    exposeErrorDetails: services.config.exposeErrorDetails,
    authorization: req.headers.authorization,
    setHeader(name, value) {
      res.header(name, value);
    },
  });
}
