import type { ConnectionOptions } from 'node:tls';
import type { Transporter } from 'nodemailer';
import type { SMTPPoolOptions, SMTPPoolSentMessageInfo } from 'nodemailer/lib/smtp-pool';
import type { SmtpServer } from '../../config.ts';
import type { EmailMessage, MailTransport } from './mailer.ts';

export interface SmtpTransportOptions extends SmtpServer {
  /** Connecting, DNS, the greeting and each reply: none may take longer (EMAIL_SEND_TIMEOUT_MS). */
  timeoutMs: number;
  /** More options for tls.connect, e.g. `ca` for a relay whose certificate a private authority signed. */
  tls?: ConnectionOptions;
}

/** Connections kept open to the server: a burst of emails queues on them instead of opening one each. */
const MAX_CONNECTIONS = 5;

/** A failed delivery, described for the log and the admin's test email; it never holds the password. */
export class SmtpError extends Error {
  /** nodemailer's code: ECONNECTION, ETIMEDOUT, ETLS, EAUTH, EENVELOPE… */
  readonly smtpCode: string | undefined;
  /** The server's reply code, when it answered (535: bad credentials, 550: mailbox refused…). */
  readonly responseCode: number | undefined;

  constructor(message: string, smtpCode: string | undefined, responseCode: number | undefined) {
    super(message);
    this.name = 'SmtpError';
    this.smtpCode = smtpCode;
    this.responseCode = responseCode;
  }
}

/** How long after the mailer gives up the transport's own timeouts would cut a connection. */
const BACKSTOP_MS = 1_000;

/**
 * Any SMTP server: SES, Postmark, Mailgun, a company relay, or Mailpit under docker compose.
 * Pooled connections; smtps:// is TLS from the first byte, smtp:// upgrades with STARTTLS when
 * the server offers it (and must, when `requireTls`). A send the mailer gives up on (after
 * `timeoutMs`) is aborted, which closes its connection; every phase also has a timeout of its
 * own, a second later, for a connection no send is waiting on.
 */
export class SmtpTransport implements MailTransport {
  readonly name = 'smtp';
  readonly delivers = true;
  readonly #options: SmtpTransportOptions;
  /** Made (and nodemailer loaded) with the first email: start-up does not pay for it. */
  #transporter: Promise<Transporter<SMTPPoolSentMessageInfo, SMTPPoolOptions>> | undefined;
  readonly #server: string;

  constructor(options: SmtpTransportOptions) {
    this.#options = options;
    this.#server = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
  }

  #pool(): Promise<Transporter<SMTPPoolSentMessageInfo, SMTPPoolOptions>> {
    const options = this.#options;
    this.#transporter ??= import('nodemailer').then(({ createTransport }) =>
      createTransport({
        pool: true,
        maxConnections: MAX_CONNECTIONS,
        host: options.host,
        port: options.port,
        secure: options.secure,
        requireTLS: options.requireTls,
        auth: options.auth,
        tls: options.tls,
        // Backstops a second past the mailer's own bound, which aborts the send (closing its
        // connection) first: at the same moment, which of the two answered was a race.
        connectionTimeout: options.timeoutMs + BACKSTOP_MS,
        greetingTimeout: options.timeoutMs + BACKSTOP_MS,
        socketTimeout: options.timeoutMs + BACKSTOP_MS,
        dnsTimeout: options.timeoutMs + BACKSTOP_MS,
        // An idle connection says goodbye before the socket timeout would cut it.
        idleTimeout: Math.floor(options.timeoutMs / 2),
        disableFileAccess: true,
        disableUrlAccess: true,
      }),
    );
    return this.#transporter;
  }

  async send(message: EmailMessage & { from: string }, options: { signal: AbortSignal }): Promise<{ id: string }> {
    try {
      const transporter = await this.#pool();
      const info = await transporter.sendMail({
        from: message.from,
        to: message.to,
        subject: message.subject,
        html: message.html,
        text: message.text,
        // A retried email keeps its Message-ID, so a receiver that sees both can tell.
        ...(message.idempotencyKey && { messageId: `<${message.idempotencyKey}@app.local>` }),
        signal: options.signal,
      });
      return { id: info.messageId };
    } catch (error) {
      throw this.#describe(error);
    }
  }

  async close(): Promise<void> {
    (await this.#transporter)?.close();
  }

  /**
   * nodemailer's error, said in terms of what to check. Not chained as `cause`: its codes
   * (ETIMEDOUT, ECONNREFUSED) would read as a database outage to unavailableDependency.
   */
  #describe(error: unknown): SmtpError {
    const { code, originalCode, responseCode, message } = (typeof error === 'object' && error ? error : {}) as {
      code?: string;
      /** The socket's own code under nodemailer's ESOCKET: ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT… */
      originalCode?: string;
      responseCode?: number;
      message?: string;
    };
    const server = `the SMTP server ${this.#server}`;
    const detail = message ?? String(error);
    const said = (() => {
      if (code === 'ETLS' || /CERT|SSL|TLS/.test(originalCode ?? '')) return `TLS with ${server} failed: ${detail}`;
      switch (code) {
        case 'ECONNECTION':
        case 'ESOCKET':
        case 'EDNS':
        case 'ETIMEDOUT':
        case 'EPROXY':
          return `cannot reach ${server}: ${detail}`;
        case 'EAUTH':
        case 'ENOAUTH':
          return `${server} refused the user and password of SMTP_URL: ${detail}`;
        case 'EENVELOPE':
          return `${server} refused the sender (EMAIL_FROM) or the recipient: ${detail}`;
        default:
          return `${server} did not take the email: ${detail}`;
      }
    })();
    return new SmtpError(said, code, responseCode);
  }
}
