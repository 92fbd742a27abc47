import { createServer, type Socket } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/**
 * A certificate for localhost and 127.0.0.1 (self-signed, valid 2000–2100), made once with
 * `openssl ca -selfsign`, so TLS is tested for real: the SMTP client trusts it as its `ca`.
 */
export const LOCALHOST_TLS = {
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPWuT2kVsLDu982C1
1ylChyzTOUbgyXcefM21MRcT2HyhRANCAARs/c8lPs0YsDEW3KY8mpYumwFHf7hP
DYzz4E68uJVSyXwS8hMnfgUwnoGKcqSh4Vvjha6nIPEZZWJ4S+Z5mPss
-----END PRIVATE KEY-----
`,
  cert: `-----BEGIN CERTIFICATE-----
MIIBjDCCATKgAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv
c3QwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM
CWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGz9zyU+zRiwMRbc
pjyali6bAUd/uE8NjPPgTry4lVLJfBLyEyd+BTCegYpypKHhW+OFrqcg8RllYnhL
5nmY+yyjczBxMA8GA1UdEwEB/wQFMAMBAf8wGgYDVR0RBBMwEYIJbG9jYWxob3N0
hwR/AAABMA4GA1UdDwEB/wQEAwIChDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNV
HQ4EFgQUATAPGnIMJUM5jGvLR46SVNBV+JgwCgYIKoZIzj0EAwIDSAAwRQIgWUUx
BRWm7kinpbuNbR9RvwjoxoiQujnAiPis6VA/RcMCIQCDY7D+6QOpUQooj5kVOr/F
P3TcKJHEBai7vhJkZjwT/g==
-----END CERTIFICATE-----
`,
};

export interface ReceivedMail {
  /** The SMTP envelope (MAIL FROM, RCPT TO). */
  mailFrom: string | undefined;
  rcptTo: string[];
  /** The session was encrypted (smtps, or after STARTTLS). */
  secure: boolean;
  /** The user that signed in, if any. */
  user: string | undefined;
  /** The message as a mail client reads it. */
  parsed: ParsedMail;
}

export interface SmtpServerOptions {
  /** Require this user and password (over plaintext too: the client decides when to insist on TLS). */
  auth?: { user: string; pass: string };
  /** 'implicit': TLS from the first byte (smtps); 'starttls': offered after EHLO; 'none': never. */
  tls?: 'implicit' | 'starttls' | 'none';
}

/**
 * A real SMTP server (nodemailer's smtp-server) on a free local port, keeping what it
 * receives, parsed. `authAttempts` counts logins (to prove a password was never sent),
 * `connections` the sessions opened (to see the pool reuse them).
 */
export async function startSmtpServer(options: SmtpServerOptions = {}) {
  const received: ReceivedMail[] = [];
  const waiting: (() => void)[] = [];
  let authAttempts = 0;
  let connections = 0;
  const tls = options.tls ?? 'none';
  const serverOptions: SMTPServerOptions = {
    logger: false,
    disableReverseLookup: true,
    secure: tls === 'implicit',
    ...(tls !== 'none' && LOCALHOST_TLS),
    disabledCommands: [...(tls === 'none' ? ['STARTTLS'] : []), ...(options.auth ? [] : ['AUTH'])],
    authOptional: !options.auth,
    allowInsecureAuth: true,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      authAttempts++;
      if (auth.username === options.auth?.user && auth.password === options.auth?.pass) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error('Authentication credentials invalid'));
      }
    },
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (parsed) => {
          received.push({
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
            rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            secure: session.secure,
            user: typeof session.user === 'string' ? session.user : undefined,
            parsed,
          });
          for (const wake of waiting.splice(0)) wake();
          callback();
        },
        (error: Error) => callback(error),
      );
    },
  };
  const server = new SMTPServer(serverOptions);
  server.on('error', () => {}); // a client that hangs up mid-session is not the test's failure
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    received,
    get authAttempts() {
      return authAttempts;
    },
    /** SMTP sessions opened so far. */
    get connections() {
      return connections;
    },
    /** Resolves once `count` messages have arrived. */
    async waitForMessages(count: number): Promise<ReceivedMail[]> {
      while (received.length < count) await new Promise<void>((resolve) => waiting.push(resolve));
      return received;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Accepts TCP connections and never says a word: an SMTP server that hangs before its greeting. */
export async function startSilentServer() {
  const sockets = new Set<Socket>();
  const closed: Socket[] = [];
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      closed.push(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    /** Connections currently open (the client has not given up on them). */
    get open() {
      return sockets.size;
    },
    /** Connections that were opened, then closed. */
    get closed() {
      return closed.length;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
