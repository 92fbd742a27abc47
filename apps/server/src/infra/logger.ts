import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  level: string;
  format: 'pretty' | 'json';
  /** Added to every line (e.g. the cluster worker id). */
  base?: Record<string, unknown>;
}

/** Fields of the access-log line that the pretty format already prints in the message. */
const ACCESS_FIELDS = 'method,path,status,durationMs';

export function createLogger(options: LoggerOptions): Logger {
  const pinoOptions = {
    level: options.level,
    base: options.base ?? {},
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token'],
      censor: '[redacted]',
    },
  };
  if (options.format === 'json') return pino(pinoOptions);
  return pino(
    pinoOptions,
    pretty({
      colorize: true,
      translateTime: 'HH:MM:ss.l',
      ignore: `pid,hostname,requestId,${ACCESS_FIELDS}`,
      messageFormat: '{if requestId}[{requestId}] {end}{msg}',
      sync: true,
    }),
  );
}

/** A request id a client may choose: short, printable, no spaces. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a sane incoming `x-request-id` (so a trace crosses services), else makes one. */
export function requestIdFor(request: IncomingMessage): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Warnings about a dependency outage, at most one per dependency a second: during an outage
 * every request fails the same way, and thousands of identical lines would hide the rest.
 */
export function createOutageLog(log: Pick<Logger, 'warn'>) {
  const lastLogged = new Map<string, number>();
  return {
    warn(dependency: string, message: string) {
      const now = Date.now();
      if (now - (lastLogged.get(dependency) ?? 0) < 1_000) return;
      lastLogged.set(dependency, now);
      log.warn({ dependency }, message);
    },
  };
}
