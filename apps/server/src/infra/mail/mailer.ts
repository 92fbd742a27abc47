import { withTimeout } from '../with-timeout.ts';

export interface EmailMessage {
  to: string;
  subject: string;
  html: string;
  text: string;
  /** Which template made it (for logs and tests). */
  template: string;
  /**
   * The same key for every try of one email (its job's id): a provider that honours it
   * (Resend) sends it once; the others are given it as the Message-ID.
   */
  idempotencyKey?: string | undefined;
}

export interface MailTransport {
  readonly name: 'resend' | 'smtp' | 'outbox' | 'memory';
  /** Whether messages reach real inboxes (false for the development outbox). */
  readonly delivers: boolean;
  /** `signal` aborts when the mailer gives up on the send: a transport that can stops and frees its connection. */
  send(message: EmailMessage & { from: string }, options: { signal: AbortSignal }): Promise<{ id: string }>;
  /** Releases pooled connections (shutdown), once nothing is being sent. */
  close?(): Promise<void>;
}

export class MailTimeoutError extends Error {
  constructor(ms: number) {
    super(`the email provider did not answer within ${ms} ms`);
    this.name = 'MailTimeoutError';
  }
}

/**
 * Sends email through one transport, with a timeout. Requests never wait for it: the
 * account flows queue email jobs (modules/auth/email-jobs.ts), which send from a worker and
 * are retried while the provider fails; only the admin's test email waits, to report.
 */
export class Mailer {
  readonly transport: MailTransport;
  readonly #from: string;
  readonly #timeoutMs: number;

  constructor(transport: MailTransport, options: { from: string; timeoutMs: number }) {
    this.transport = transport;
    this.#from = options.from;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * Sends and waits (at most the timeout, or until `signal` aborts: a job taken back from
   * its worker); throws when delivery fails.
   */
  send(message: EmailMessage, options: { signal?: AbortSignal | undefined } = {}): Promise<{ id: string }> {
    return withTimeout(
      (signal) => this.transport.send({ ...message, from: this.#from }, { signal }),
      this.#timeoutMs,
      () => new MailTimeoutError(this.#timeoutMs),
      options.signal,
    );
  }

  /** Closes the transport's connections (shutdown: the job worker has stopped first). */
  async close(): Promise<void> {
    await this.transport.close?.();
  }
}
