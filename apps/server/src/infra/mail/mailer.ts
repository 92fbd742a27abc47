import type { Logger } from '../logger.ts';
import { withTimeout } from '../with-timeout.ts';

export interface EmailMessage {
  to: string;
  subject: string;
  html: string;
  text: string;
  /** Which template made it (for logs and tests). */
  template: string;
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
 * Sends email through one transport. `dispatch` never makes a request wait for the
 * provider: it sends in the background with a timeout and logs failures with the request
 * id, so the caller's answer (and its timing) does not depend on delivery.
 */
export class Mailer {
  readonly transport: MailTransport;
  readonly #from: string;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #pending = new Set<Promise<void>>();

  constructor(transport: MailTransport, options: { from: string; timeoutMs: number; log: Logger }) {
    this.transport = transport;
    this.#from = options.from;
    this.#timeoutMs = options.timeoutMs;
    this.#log = options.log;
  }

  /** Sends and waits (at most the timeout); throws when delivery fails. */
  send(message: EmailMessage): Promise<{ id: string }> {
    return withTimeout(
      (signal) => this.transport.send({ ...message, from: this.#from }, { signal }),
      this.#timeoutMs,
      () => new MailTimeoutError(this.#timeoutMs),
    );
  }

  /**
   * Prepares and sends in the background: `prepare` (issue a token, render the template)
   * runs after the caller has its answer, so the answer's timing says nothing about it.
   * Failures are logged with the request id, never thrown to the caller. `prepare` may
   * return undefined to send nothing.
   */
  dispatch(prepare: () => Promise<EmailMessage | undefined>, context: { requestId?: string | undefined } = {}): void {
    let template = 'unknown';
    const sending: Promise<void> = (async () => {
      try {
        const message = await prepare();
        if (!message) return;
        template = message.template;
        const { id } = await this.send(message);
        this.#log.info({ requestId: context.requestId, template, id }, 'email sent');
      } catch (error) {
        this.#log.error(
          { requestId: context.requestId, template, err: error },
          `email not sent: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    })();
    this.#pending.add(sending);
    void sending.finally(() => this.#pending.delete(sending));
  }

  /** Background sends still in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Waits for background sends (shutdown). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  /** Waits for background sends, then closes the transport's connections (shutdown). */
  async close(): Promise<void> {
    await this.flush();
    await this.transport.close?.();
  }
}
