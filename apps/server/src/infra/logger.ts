import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { type ChildLoggerOptions, type Logger, pino } from 'pino';
import type PinoPretty from 'pino-pretty';

/** pino-pretty (30 modules) is loaded for the pretty format only: production writes JSON. */
const loadPretty = () => createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;

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
    loadPretty()({
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

/** Random bytes for the request ids the app makes, drawn for 256 ids at a time. */
const ID_BYTES = 16;
const idPool = Buffer.alloc(ID_BYTES * 256);
let idPoolAt = idPool.length;

/**
 * A new request id: 128 random bits in hex. One native call makes it, as one flat string:
 * `randomUUID` builds its string a byte at a time (and it is flattened when written): ~1.9k
 * more instructions on every request.
 */
export function newRequestId(): string {
  if (idPoolAt === idPool.length) {
    randomFillSync(idPool);
    idPoolAt = 0;
  }
  idPoolAt += ID_BYTES;
  return idPool.toString('hex', idPoolAt - ID_BYTES, idPoolAt);
}

/** Keeps a sane incoming `x-request-id` (so a trace crosses services), else makes one. */
export function requestIdFor(request: IncomingMessage): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : newRequestId();
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

type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type LogMethod = Logger['info'];

/** Whether a child's options are empty (Fastify passes `{}` for a request's logger). */
function noOptions(options: object | undefined): boolean {
  for (const _ in options) return false;
  return true;
}

/**
 * The logger the app gives Fastify: each request's logger (`child({ requestId })`) is made
 * only when it writes a line at a level its parent writes; Fastify otherwise builds a pino
 * child (its bindings serialized) for every request, whether it logs or not, which cost a
 * tenth of a constant route's CPU. Without bindings it is its parent, as it is (Fastify's
 * root logger, a route's with its own level); a child with options is made at once.
 */
export class LazyLogger {
  readonly #parent: Logger;
  readonly #bindings: Record<string, unknown> | undefined;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings?: Record<string, unknown>) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  #logger(): Logger {
    if (this.#bindings === undefined) return this.#parent;
    this.#child ??= this.#parent.child(this.#bindings);
    return this.#child;
  }

  #write(level: LogLevel, args: unknown[]): void {
    if (this.isLevelEnabled(level)) (this.#logger()[level] as (...line: unknown[]) => void)(...args);
  }

  fatal(...args: Parameters<LogMethod>): void {
    this.#write('fatal', args);
  }
  error(...args: Parameters<LogMethod>): void {
    this.#write('error', args);
  }
  warn(...args: Parameters<LogMethod>): void {
    this.#write('warn', args);
  }
  info(...args: Parameters<LogMethod>): void {
    this.#write('info', args);
  }
  debug(...args: Parameters<LogMethod>): void {
    this.#write('debug', args);
  }
  trace(...args: Parameters<LogMethod>): void {
    this.#write('trace', args);
  }
  silent(): void {}

  get level(): string {
    return (this.#child ?? this.#parent).level;
  }
  set level(level: string) {
    this.#logger().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.#parent).isLevelEnabled(level);
  }

  child(bindings: Record<string, unknown>, options?: ChildLoggerOptions<never>): LazyLogger | Logger {
    if (this.#bindings !== undefined) return this.#logger().child(bindings, options);
    if (noOptions(options)) return new LazyLogger(this.#parent, bindings);
    return new LazyLogger(this.#parent.child(bindings, options));
  }
}
