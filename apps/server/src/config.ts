/**
 * The only reader of process.env. One schema validates every variable, with development
 * defaults, checks the rules across variables and builds the Config: a bad or missing
 * variable is reported together with every other problem. Document each variable in
 * .env.example and the README's table (a test holds them to the schema).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { defaultEmbeddedDataDir, isLoopback, isLoopbackUrl, loadRepoEnvFile, repoPath } from '@app/db';
import { z } from 'zod';
import packageJson from '../package.json' with { type: 'json' };
import { isSniffable } from './infra/sniff.ts';

const defaultOutboxDir = repoPath('.data/outbox');
const defaultFilesDir = repoPath('.data/files');
/** `pnpm dev` serves the web app here (apps/web/vite.config.ts). */
const DEV_WEB_APP_URL = 'http://localhost:5173';
const MIB = 1024 * 1024;

/** Used only outside production, where start-up refuses it. */
export const DEVELOPMENT_JWT_SECRET = 'development-only-secret-change-me-in-production!!';

const integer = (min: number, max: number) => {
  const error = `must be a whole number from ${min} to ${max}`;
  return (
    z.coerce
      .number<string>({ error })
      // Not .int(): its issue aborts the whole parse, and zod then skips the rules across
      // variables even with `when`. This one ends only this variable's checks.
      .check((ctx) => {
        if (!Number.isInteger(ctx.value)) ctx.issues.push({ code: 'custom', message: error, input: ctx.value });
      })
      .min(min, { error })
      .max(max, { error })
  );
};
/** A folder: relative to the repository root whichever folder the server runs from (repoPath), or absolute. */
const folder = z.string().min(1).transform(repoPath);
const flag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');
/** "900", "15m", "12h", "30d" -> seconds. */
const duration = z
  .string()
  .regex(/^\d+[smhd]?$/, { error: 'must be a duration like 900, 15m, 12h or 30d' })
  .transform((value) => {
    const unit = { s: 1, m: 60, h: 3_600, d: 86_400 }[value.at(-1) as string] ?? 1;
    return Number.parseInt(value, 10) * unit;
  })
  .refine((seconds) => seconds > 0, { error: 'must be longer than 0' });
/** A PEM key in one env line: literal "\n" sequences stand for line breaks. */
const pem = z
  .string()
  .transform((value) => value.replaceAll('\\n', '\n').trim())
  // Blank would mean "no key pair": tokens signed with the development secret.
  .refine((value) => value.includes('-----BEGIN '), { error: 'must be a PEM key (-----BEGIN … KEY-----)' });
/**
 * Whom to believe about the client's address in X-Forwarded-For: nobody (`false`), the
 * last N proxies (a hop count), or proxies at these addresses/CIDRs. Never "everyone": the
 * left-most entry is whatever the client wrote.
 */
const trustProxy = z.string().transform((value, ctx): false | number | string[] => {
  if (value === 'false' || value === '0') return false;
  if (/^\d+$/.test(value)) return Number(value);
  if (value === 'true') {
    ctx.addIssue({
      code: 'custom',
      message:
        'must say which proxies to trust: their number in front of the server (usually 1) or their addresses; "true" would believe any client-supplied X-Forwarded-For',
    });
    return z.NEVER;
  }
  const addresses = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  const bad = addresses.find((address) => !isIP(address.split('/')[0] ?? ''));
  if (bad) {
    ctx.addIssue({ code: 'custom', message: `"${bad}" is not an IP address or CIDR range` });
    return z.NEVER;
  }
  return addresses;
});

/** An SMTP server to deliver through, from SMTP_URL. */
export interface SmtpServer {
  host: string;
  port: number;
  /** smtps://: TLS from the first byte. Otherwise STARTTLS whenever the server offers it. */
  secure: boolean;
  /** STARTTLS is mandatory (with credentials, unless the server is on this machine). */
  requireTls: boolean;
  auth: { user: string; pass: string } | undefined;
}

/**
 * SMTP_URL: smtp://[user:password@]host[:port] (STARTTLS, port 587 by default) or smtps://…
 * (TLS from the first byte, port 465). Messages never quote the URL: it holds the password.
 */
const smtpUrl = z.string().transform((value, ctx): SmtpServer => {
  const refuse = (message: string) => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
  const form =
    'must be smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465 (TLS), ' +
    'with / @ : ? # in the user or password percent-encoded (%2F %40 %3A %3F %23)';
  if (!URL.canParse(value)) return refuse(form);
  const url = new URL(value);
  const extra = (url.pathname !== '' && url.pathname !== '/') || url.search || url.hash;
  if ((url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || extra) return refuse(form);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) return refuse('has no host, e.g. smtp://user:password@smtp.example.com:587');
  if (url.port === '0') return refuse('must not use port 0');
  if (Boolean(url.username) !== Boolean(url.password)) {
    return refuse('must have both a user and a password, or neither (user:password@host)');
  }
  let auth: SmtpServer['auth'];
  try {
    auth = url.username
      ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
      : undefined;
  } catch {
    return refuse('has a malformed %-escape in its user or password');
  }
  const secure = url.protocol === 'smtps:';
  return {
    host,
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    // Opportunistic STARTTLS can be stripped by anyone on the path: a password only travels
    // encrypted, except to a relay on this machine.
    requireTls: !secure && auth !== undefined && !isLoopback(host),
    auth,
  };
});
const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const variables = z.object({
  // Optional rather than defaulted: unset and "development" differ for the HOST rule.
  NODE_ENV: z.enum(['development', 'test', 'production']).optional(),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: integer(0, 65_535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['auto', 'pretty', 'json']).default('auto'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }).optional(),
  DATABASE_POOL_MAX: integer(1, 1_000).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: integer(100, 120_000).default(5_000),
  DATABASE_STATEMENT_TIMEOUT_MS: integer(0, 3_600_000).default(30_000),
  DATABASE_PREPARED_STATEMENTS: flag.default(true),
  EMBEDDED_POSTGRES_DIR: folder.default(defaultEmbeddedDataDir),
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    .check((ctx) => {
      if (!URL.canParse(ctx.value)) return; // said by the check above
      const url = new URL(ctx.value);
      // ioredis lets options in the query override the app's (its command timeout, its
      // offline queue, the key prefix): only the address family may be chosen there.
      const options = [...url.searchParams.keys()].filter((option) => option !== 'family');
      const refuse = (message: string) => ctx.issues.push({ code: 'custom', message, input: ctx.value });
      if (url.hostname === '') refuse('needs a host: redis://host:6379');
      else if (options.length > 0) {
        refuse(
          `takes no ${options.map((o) => `?${o}`).join(', ')}: the app sets its Redis options itself ` +
            '(REDIS_COMMAND_TIMEOUT_MS, REDIS_KEY_PREFIX); only ?family= may be given',
        );
      }
    })
    .optional(),
  REDIS_KEY_PREFIX: z.string().default('app:'),
  REDIS_COMMAND_TIMEOUT_MS: integer(10, 60_000).default(500),
  JWT_SECRET: z.string().min(1).optional(),
  JWT_PRIVATE_KEY: pem.optional(),
  JWT_PUBLIC_KEY: pem.optional(),
  JWT_KEY_ID: z.string().min(1).max(100).optional(),
  JWT_ISSUER: z.string().min(1).default('app'),
  JWT_AUDIENCE: z.string().min(1).default('app'),
  ACCESS_TOKEN_TTL: duration.default(15 * 60),
  REFRESH_TOKEN_TTL: duration.default(30 * 86_400),
  REFRESH_REUSE_GRACE_SECONDS: integer(0, 300).default(10),
  MAX_SESSIONS_PER_USER: integer(1, 10_000).default(100),
  RATE_LIMIT_AUTH_PER_MINUTE: integer(1, 100_000).default(10),
  RATE_LIMIT_DEFAULT_PER_MINUTE: integer(1, 1_000_000).default(300),
  RATE_LIMIT_EMAIL_FAILURES_PER_MINUTE: integer(1, 100_000).default(50),
  MAIL_TRANSPORT: z.enum(['resend', 'smtp']).optional(),
  RESEND_API_KEY: z.string().min(1).optional(),
  RESEND_BASE_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  SMTP_URL: smtpUrl.optional(),
  // Optional rather than defaulted: production requires it to be set.
  EMAIL_FROM: z
    .string()
    .regex(/^(?:[^<>]*<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/, {
      error: 'must be an address, or a name and an address: "Acme <no-reply@acme.com>"',
    })
    .optional(),
  EMAIL_SEND_TIMEOUT_MS: integer(100, 60_000).default(5_000),
  EMAIL_OUTBOX_DIR: folder.default(defaultOutboxDir),
  PRODUCT_NAME: z.string().min(1).max(100).default('App'),
  EMAIL_FOOTER: z.string().max(500).default('You received this email because of an account with this address.'),
  // Optional: the web app's own dev server by default, this server when it serves the app (WEB_DIR).
  APP_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  WEB_DIR: folder.optional(),
  DEV_OTP: z
    .string()
    .regex(/^\d{6}$/, { error: 'must be 6 digits' })
    .optional(),
  APPLE_REVIEW_EMAIL: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.email({ error: 'must be an email address' }))
    .default('review@apple.com'),
  APPLE_REVIEW_OTP_DAYS: integer(1, 365).default(15),
  // A trailing slash is no part of an origin (browsers send `https://host`, compared exactly).
  CORS_ORIGINS: list
    .transform((origins) => origins.map((origin) => origin.replace(/\/+$/, '')))
    .default(['http://localhost:3000', 'http://localhost:5173']),
  BODY_LIMIT_BYTES: integer(1_024, 100 * 1024 * 1024).default(1024 * 1024),
  TRUST_PROXY: trustProxy.default(false),
  WORKERS: z
    .union([z.literal('auto'), integer(1, 256)], { error: 'must be a whole number from 1 to 256, or "auto"' })
    .default(1),
  MIGRATE_ON_START: flag.optional(),
  SHUTDOWN_TIMEOUT_MS: integer(1_000, 600_000).default(10_000),
  REQUEST_TIMEOUT_MS: integer(1_000, 3_600_000).default(60_000),
  TRPC_TRANSPORT: z.enum(['fast', 'official']).default('fast'),
  TRPC_MAX_BATCH_SIZE: integer(1, 1_000).default(50),
  HEALTH_CHECK_TIMEOUT_MS: integer(50, 60_000).default(2_000),
  PUBLIC_URL: httpUrl.optional(),
  OAUTH_REDIRECT_ORIGINS: list.optional(),
  OAUTH_TIMEOUT_MS: integer(100, 60_000).default(5_000),
  OAUTH_GOOGLE_CLIENT_ID: z.string().min(1).optional(),
  OAUTH_GOOGLE_CLIENT_SECRET: z.string().min(1).optional(),
  OAUTH_GOOGLE_ISSUER: httpUrl.default('https://accounts.google.com'),
  OAUTH_GOOGLE_AUDIENCES: list.default([]),
  OAUTH_GITHUB_CLIENT_ID: z.string().min(1).optional(),
  OAUTH_GITHUB_CLIENT_SECRET: z.string().min(1).optional(),
  OAUTH_GITHUB_URL: httpUrl.default('https://github.com'),
  OAUTH_GITHUB_API_URL: httpUrl.default('https://api.github.com'),
  OAUTH_FACEBOOK_CLIENT_ID: z.string().min(1).optional(),
  OAUTH_FACEBOOK_CLIENT_SECRET: z.string().min(1).optional(),
  OAUTH_FACEBOOK_URL: httpUrl.default('https://www.facebook.com'),
  OAUTH_FACEBOOK_GRAPH_URL: httpUrl.default('https://graph.facebook.com'),
  OAUTH_APPLE_CLIENT_ID: z.string().min(1).optional(),
  OAUTH_APPLE_TEAM_ID: z.string().min(1).optional(),
  OAUTH_APPLE_KEY_ID: z.string().min(1).optional(),
  OAUTH_APPLE_PRIVATE_KEY: pem.optional(),
  OAUTH_APPLE_ISSUER: httpUrl.default('https://appleid.apple.com'),
  OAUTH_APPLE_AUDIENCES: list.default([]),
  OAUTH_OIDC_ISSUER: httpUrl.optional(),
  OAUTH_OIDC_CLIENT_ID: z.string().min(1).optional(),
  OAUTH_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  OAUTH_OIDC_NAME: z.string().min(1).max(50).default('Single sign-on'),
  STORAGE_DRIVER: z.enum(['local', 's3']).default('local'),
  FILES_DIR: folder.default(defaultFilesDir),
  FILES_DISK_TIMEOUT_MS: integer(100, 600_000).default(10_000),
  FILES_MAX_BYTES: integer(1, 5 * 1024 * MIB).default(25 * MIB),
  FILES_QUOTA_BYTES: integer(1, Number.MAX_SAFE_INTEGER).default(1024 * MIB),
  // Checked only when set (a default is never checked): the check loads file-type.
  FILES_ALLOWED_TYPES: list
    .superRefine((types, ctx) => {
      for (const type of types.filter((listed) => !isSniffable(listed))) {
        ctx.addIssue({
          code: 'custom',
          message: `"${type}" can never be recognised from a file's bytes (allowed: text/plain and the binary formats with a signature, e.g. image/png, application/pdf)`,
        });
      }
    })
    .default(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'application/pdf', 'text/plain']),
  // Presigned URLs last at most 7 days (SigV4).
  FILES_UPLOAD_URL_TTL: duration.refine((s) => s <= 7 * 86_400, { error: 'must be at most 7d' }).default(15 * 60),
  FILES_DOWNLOAD_REDIRECT: flag.default(false),
  FILES_DOWNLOAD_URL_TTL: duration.refine((s) => s <= 7 * 86_400, { error: 'must be at most 7d' }).default(5 * 60),
  // Jobs (pg-boss, in Postgres): run here (embedded) or in `pnpm worker` processes only (off).
  JOBS_WORKER: z.enum(['embedded', 'off']).default('embedded'),
  JOBS_POOL_MAX: integer(1, 100).default(4),
  JOBS_CONCURRENCY: integer(1, 100).default(4),
  JOBS_SUPERVISE_INTERVAL: duration.refine((s) => s <= 3_600, { error: 'must be at most 1h' }).default(30),
  JOBS_POLL_INTERVAL: duration.refine((s) => s <= 60, { error: 'must be at most 60s' }).default(2),
  JOBS_READY_FILE: z.string().min(1).optional(),
  MAINTENANCE_INTERVAL: duration
    .refine((s) => s >= 60 && s <= 86_400, { error: 'must be from 1m to 24h' })
    .default(3_600),
  S3_BUCKET: z.string().min(3).max(63).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ENDPOINT: httpUrl.optional(),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_FORCE_PATH_STYLE: flag.default(false),
  S3_TIMEOUT_MS: integer(100, 600_000).default(10_000),
});
type Variables = z.output<typeof variables>;

/**
 * Whether `publicPem` is the public half of `privatePem`. Keys that cannot be read are not
 * judged here: importing them refuses them, with the reason.
 */
function isKeyPair(privatePem: string, publicPem: string): boolean {
  try {
    const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });
    return spki(createPublicKey(privatePem)).equals(spki(createPublicKey(publicPem)));
  } catch {
    return true;
  }
}

/** Whether `pem` is an Ed25519 private key (one that cannot be read is left to the import, as above). */
function isEd25519(pem: string): boolean {
  try {
    return createPrivateKey(pem).asymmetricKeyType === 'ed25519';
  } catch {
    return true;
  }
}

/** Whether `pem` is a PKCS#8 EC P-256 private key (what Apple's .p8 files hold, and ES256 signs with). */
function isP256Pkcs8(pem: string): boolean {
  if (!pem.includes('-----BEGIN PRIVATE KEY-----')) return false;
  try {
    const key = createPrivateKey(pem);
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  } catch {
    return false;
  }
}

/** Every environment variable the server reads. */
export const CONFIG_VARIABLES = Object.keys(variables.shape);

/** Variables whose values must never be echoed back in a report. */
const SECRET_VARIABLES = new Set([
  'JWT_SECRET',
  'JWT_PRIVATE_KEY',
  'DATABASE_URL',
  'REDIS_URL',
  'RESEND_API_KEY',
  'SMTP_URL',
  'DEV_OTP',
  'OAUTH_GOOGLE_CLIENT_SECRET',
  'OAUTH_GITHUB_CLIENT_SECRET',
  'OAUTH_FACEBOOK_CLIENT_SECRET',
  'OAUTH_APPLE_PRIVATE_KEY',
  'OAUTH_OIDC_CLIENT_SECRET',
  'S3_SECRET_ACCESS_KEY',
]);

const MIN_SECRET_ENTROPY_BITS = 128;

/**
 * An upper estimate of a secret's entropy: its length times the Shannon entropy of its
 * characters. Repeated or few distinct characters ("aaaa…", "abab…") score near zero; 48
 * random bytes in base64 score well over 256.
 */
function estimatedEntropyBits(secret: string): number {
  const counts = new Map<string, number>();
  const characters = [...secret];
  for (const character of characters) counts.set(character, (counts.get(character) ?? 0) + 1);
  let perCharacter = 0;
  for (const count of counts.values()) {
    const p = count / characters.length;
    perCharacter -= p * Math.log2(p);
  }
  return perCharacter * characters.length;
}

const OAUTH_PROVIDERS = ['GOOGLE', 'GITHUB', 'FACEBOOK', 'APPLE', 'OIDC'] as const;
/** Where the providers are: https, except on this machine. */
const OAUTH_URLS = [
  'OAUTH_GOOGLE_ISSUER',
  'OAUTH_GITHUB_URL',
  'OAUTH_GITHUB_API_URL',
  'OAUTH_FACEBOOK_URL',
  'OAUTH_FACEBOOK_GRAPH_URL',
  'OAUTH_APPLE_ISSUER',
  'OAUTH_OIDC_ISSUER',
] as const;
/** Each provider's client secret (Apple's is a JWT signed with its private key). */
const OAUTH_SECRETS = [
  ['GOOGLE', 'OAUTH_GOOGLE_CLIENT_SECRET'],
  ['GITHUB', 'OAUTH_GITHUB_CLIENT_SECRET'],
  ['FACEBOOK', 'OAUTH_FACEBOOK_CLIENT_SECRET'],
  ['APPLE', 'OAUTH_APPLE_PRIVATE_KEY'],
  ['OIDC', 'OAUTH_OIDC_CLIENT_SECRET'],
] as const;

/**
 * Rules across variables and for production. They run even when a variable failed its own
 * parse, so that the report lists every problem at once; such a variable then holds what its
 * parse left (its string, a number out of range, or z.NEVER). So a rule asks of a variable
 * that can fail only whether it is set, or compares it with `===` or as a number.
 */
function checkAcrossVariables(e: Variables, ctx: z.RefinementCtx<Variables>): void {
  const refuse = (variable: keyof Variables, message: string) =>
    ctx.addIssue({ code: 'custom', path: [variable], message, params: { acrossVariables: true } });
  const workers = e.WORKERS === 'auto' ? availableParallelism() : Number(e.WORKERS);
  if (workers > 1 && e.REDIS_URL === undefined) {
    refuse('WORKERS', 'more than one worker needs REDIS_URL: the in-memory store is per process');
  }
  for (const origin of e.CORS_ORIGINS) {
    // Compared exactly with the browser's Origin header: a path, or capitals, would never match.
    if (origin !== '*' && (!URL.canParse(origin) || new URL(origin).origin !== origin))
      refuse('CORS_ORIGINS', `"${origin}" is not an origin (https://host[:port], in lower case)`);
  }
  // Apple's client secret is signed with it at the first sign-in: a key of another kind would
  // start cleanly and fail every Apple sign-in.
  if (e.OAUTH_APPLE_PRIVATE_KEY !== undefined && !isP256Pkcs8(e.OAUTH_APPLE_PRIVATE_KEY)) {
    refuse(
      'OAUTH_APPLE_PRIVATE_KEY',
      "must be the .p8 key from Apple's developer account (an EC P-256 key, PKCS#8 PEM)",
    );
  }
  const keyPair = e.JWT_PRIVATE_KEY !== undefined || e.JWT_PUBLIC_KEY !== undefined;
  if (keyPair && (e.JWT_PRIVATE_KEY === undefined || e.JWT_PUBLIC_KEY === undefined)) {
    refuse('JWT_PRIVATE_KEY', 'and JWT_PUBLIC_KEY must be set together (an Ed25519 key pair, PEM)');
  } else if (e.JWT_PRIVATE_KEY !== undefined && e.JWT_PUBLIC_KEY !== undefined) {
    if (!isEd25519(e.JWT_PRIVATE_KEY)) {
      refuse(
        'JWT_PRIVATE_KEY',
        'must be an Ed25519 key (`openssl genpkey -algorithm ed25519`): tokens are signed with EdDSA',
      );
    } else if (!isKeyPair(e.JWT_PRIVATE_KEY, e.JWT_PUBLIC_KEY)) {
      refuse('JWT_PUBLIC_KEY', 'is not the public half of JWT_PRIVATE_KEY: no token signed could be verified');
    }
  }
  if (e.NODE_ENV === undefined && !isLoopback(e.HOST)) {
    refuse(
      'NODE_ENV',
      `is unset while HOST=${e.HOST} accepts connections from other machines: set NODE_ENV=production ` +
        '(or NODE_ENV=development to serve the development defaults on a network on purpose)',
    );
  }
  const resend = e.RESEND_API_KEY !== undefined;
  const smtp = e.SMTP_URL !== undefined;
  if (e.MAIL_TRANSPORT === 'resend' && !resend) {
    refuse('RESEND_API_KEY', 'is required with MAIL_TRANSPORT=resend (an API key from resend.com)');
  } else if (e.MAIL_TRANSPORT === 'smtp' && !smtp) {
    refuse('SMTP_URL', 'is required with MAIL_TRANSPORT=smtp, e.g. smtp://user:password@smtp.example.com:587');
  } else if (e.MAIL_TRANSPORT === undefined && resend && smtp) {
    refuse('MAIL_TRANSPORT', 'RESEND_API_KEY and SMTP_URL are both set: choose one with MAIL_TRANSPORT=resend or smtp');
  } else if (e.MAIL_TRANSPORT === undefined && !resend && !smtp && e.NODE_ENV === 'production') {
    refuse(
      'MAIL_TRANSPORT',
      'is required in production (emails must be delivered): ' +
        'smtp with SMTP_URL (SES, Postmark, Mailgun, a relay), or resend with RESEND_API_KEY',
    );
  }
  if (e.OAUTH_OIDC_CLIENT_ID !== undefined && e.OAUTH_OIDC_ISSUER === undefined) {
    refuse('OAUTH_OIDC_ISSUER', "is required with OAUTH_OIDC_CLIENT_ID (the provider's issuer URL, for discovery)");
  }
  for (const variable of OAUTH_URLS) {
    const url = e[variable];
    if (typeof url === 'string' && url.startsWith('http:') && URL.canParse(url) && !isLoopbackUrl(url)) {
      refuse(variable, 'must be https (plain http only for a provider on this machine)');
    }
  }
  if (e.STORAGE_DRIVER === 's3' && e.S3_BUCKET === undefined) {
    refuse('S3_BUCKET', 'is required with STORAGE_DRIVER=s3');
  }
  if ((e.S3_ACCESS_KEY_ID === undefined) !== (e.S3_SECRET_ACCESS_KEY === undefined)) {
    refuse('S3_ACCESS_KEY_ID', 'and S3_SECRET_ACCESS_KEY must be set together (or neither: the AWS default chain)');
  }
  if (e.FILES_DOWNLOAD_REDIRECT === true && e.STORAGE_DRIVER !== 's3') {
    refuse('FILES_DOWNLOAD_REDIRECT', 'needs STORAGE_DRIVER=s3 (downloads redirect to a presigned URL of the store)');
  }
  if (e.PUBLIC_URL !== undefined && URL.canParse(e.PUBLIC_URL)) {
    const url = new URL(e.PUBLIC_URL);
    if (url.pathname !== '/' || url.search || url.hash) {
      refuse('PUBLIC_URL', `must be an origin (https://host[:port]), not ${e.PUBLIC_URL}`);
    }
  }
  for (const origin of e.OAUTH_REDIRECT_ORIGINS ?? []) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin.replace(/\/+$/, '')) {
      refuse('OAUTH_REDIRECT_ORIGINS', `"${origin}" is not an origin (https://host[:port])`);
    }
  }
  if (e.NODE_ENV !== 'production') return;
  for (const [provider, secretVariable] of OAUTH_SECRETS) {
    if (e[`OAUTH_${provider}_CLIENT_ID`] !== undefined && e[secretVariable] === undefined) {
      refuse(secretVariable, `is required in production when OAUTH_${provider}_CLIENT_ID is set`);
    }
  }
  if (e.OAUTH_APPLE_CLIENT_ID !== undefined) {
    for (const variable of ['OAUTH_APPLE_TEAM_ID', 'OAUTH_APPLE_KEY_ID'] as const) {
      if (e[variable] === undefined) refuse(variable, 'is required in production when OAUTH_APPLE_CLIENT_ID is set');
    }
  }
  const providerOn = OAUTH_PROVIDERS.some((provider) => e[`OAUTH_${provider}_CLIENT_ID`] !== undefined);
  if (providerOn) {
    // The development defaults (http://localhost pages) must not receive production sign-in
    // codes: the origins a sign-in may return to, as oauthConfig makes them.
    // An APP_URL (or PUBLIC_URL) that is no URL is reported by its own check.
    const appUrl = appUrlOf(e);
    const appOrigins = URL.canParse(appUrl) ? [new URL(appUrl).origin] : [];
    const origins = e.OAUTH_REDIRECT_ORIGINS ?? [...e.CORS_ORIGINS.filter((o) => o !== '*'), ...appOrigins];
    for (const origin of origins) {
      if (!origin.startsWith('http:')) continue;
      const variable = e.OAUTH_REDIRECT_ORIGINS
        ? 'OAUTH_REDIRECT_ORIGINS'
        : e.CORS_ORIGINS.includes(origin)
          ? 'CORS_ORIGINS'
          : 'APP_URL';
      refuse(variable, `"${origin}" is plain http: in production a sign-in returns its code to https pages only`);
    }
  }
  if (e.PUBLIC_URL === undefined) {
    if (providerOn) {
      refuse('PUBLIC_URL', 'is required in production with a sign-in provider (the callback URLs are built on it)');
    }
  } else if (e.PUBLIC_URL.startsWith('http:') && URL.canParse(e.PUBLIC_URL)) {
    // Plain http only on this machine (`docker compose up` on localhost) and without a provider.
    if (providerOn) refuse('PUBLIC_URL', 'must be https in production (providers send sign-in codes to it)');
    else if (!isLoopbackUrl(e.PUBLIC_URL)) {
      refuse(
        'PUBLIC_URL',
        'must be https in production, or http on localhost (profile-picture and email links are built on it)',
      );
    }
  }
  const secret = e.JWT_SECRET;
  if (keyPair) {
    // Tokens are signed with the key pair; a JWT_SECRET, if given, must still be real.
    if (secret && (secret === DEVELOPMENT_JWT_SECRET || Buffer.byteLength(secret) < 32)) {
      refuse('JWT_SECRET', 'must be at least 32 bytes and not the development secret');
    }
  } else if (!secret) refuse('JWT_SECRET', 'is required in production (or JWT_PRIVATE_KEY and JWT_PUBLIC_KEY)');
  else if (secret === DEVELOPMENT_JWT_SECRET) refuse('JWT_SECRET', 'is the development secret; generate one');
  else if (Buffer.byteLength(secret) < 32) refuse('JWT_SECRET', 'must be at least 32 bytes in production');
  else if (estimatedEntropyBits(secret) < MIN_SECRET_ENTROPY_BITS) {
    refuse(
      'JWT_SECRET',
      `looks guessable (about ${Math.round(estimatedEntropyBits(secret))} bits of entropy, ` +
        `${MIN_SECRET_ENTROPY_BITS} needed): generate one with \`openssl rand -base64 48\``,
    );
  }
  if (e.DATABASE_URL === undefined) {
    refuse('DATABASE_URL', 'is required in production (the embedded database is for development)');
  }
  if (e.REDIS_URL === undefined)
    refuse('REDIS_URL', 'is required in production (the in-memory store is for development)');
  if (e.CORS_ORIGINS.includes('*')) refuse('CORS_ORIGINS', 'must list origins in production, not "*"');
  if (e.EMAIL_FROM === undefined) refuse('EMAIL_FROM', 'is required in production (e.g. "Acme <no-reply@acme.com>")');
  if (e.DEV_OTP !== undefined) refuse('DEV_OTP', 'is refused in production');
  if (e.DATABASE_STATEMENT_TIMEOUT_MS === 0) {
    refuse(
      'DATABASE_STATEMENT_TIMEOUT_MS',
      'is 0 (no limit), refused in production: a query on a frozen database would hold its request until TCP gives up (minutes); set the longest a query may take',
    );
  }
}

export type LogFormat = 'pretty' | 'json';

/** Pretty for people (development, even when turbo pipes the output, or a terminal), JSON for machines. */
function autoLogFormat(nodeEnv: string, isTTY: boolean | undefined): LogFormat {
  if (nodeEnv === 'development') return 'pretty';
  return isTTY && nodeEnv !== 'production' ? 'pretty' : 'json';
}

/** Where emails go; the development outbox never in production. */
export type MailDelivery =
  | { transport: 'resend'; apiKey: string; baseUrl: string | undefined }
  | { transport: 'smtp'; server: SmtpServer }
  | { transport: 'outbox' };

/** MAIL_TRANSPORT, or the one provider configured (the rules refuse two without a choice). */
function mailDelivery(e: Variables): MailDelivery {
  const transport = e.MAIL_TRANSPORT ?? (e.RESEND_API_KEY ? 'resend' : e.SMTP_URL ? 'smtp' : undefined);
  if (transport === 'resend' && e.RESEND_API_KEY) {
    return { transport, apiKey: e.RESEND_API_KEY, baseUrl: e.RESEND_BASE_URL };
  }
  if (transport === 'smtp' && e.SMTP_URL) return { transport, server: e.SMTP_URL };
  return { transport: 'outbox' };
}

/**
 * In development a browser may open the frontend as http://localhost:5173 or as
 * http://127.0.0.1:5173: each loopback origin listed is allowed under both names.
 */
function withLoopbackTwins(origins: string[]): string[] {
  const twins = origins.flatMap((origin) => {
    const match = /^(https?):\/\/(localhost|127\.0\.0\.1)(:\d+)?$/.exec(origin);
    if (!match) return [];
    return [`${match[1]}://${match[2] === 'localhost' ? '127.0.0.1' : 'localhost'}${match[3] ?? ''}`];
  });
  return [...new Set([...origins, ...twins])];
}

function publicUrlOf(e: Variables): string {
  return (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
}

/** Where the web app is (email links point there): APP_URL, else this server when it serves the app, else `pnpm dev`'s. */
function appUrlOf(e: Variables): string {
  return (e.APP_URL ?? (e.WEB_DIR ? publicUrlOf(e) : DEV_WEB_APP_URL)).replace(/\/+$/, '');
}

/** Sign-in with outside providers: each one is on when its client id is set. */
function oauthConfig(e: Variables, isProduction: boolean) {
  const appOrigin = new URL(appUrlOf(e)).origin;
  const redirectOrigins = e.OAUTH_REDIRECT_ORIGINS ?? [...e.CORS_ORIGINS.filter((o) => o !== '*'), appOrigin];
  const normalized = redirectOrigins.map((origin) => origin.replace(/\/+$/, ''));
  const secret = (value: string | undefined) => value ?? '';
  return {
    /** Origins a sign-in may return the browser to. */
    redirectOrigins: isProduction ? normalized : withLoopbackTwins(normalized),
    /** Each call to a provider (discovery, token, user info, keys) gives up after this long. */
    timeoutMs: e.OAUTH_TIMEOUT_MS,
    google: e.OAUTH_GOOGLE_CLIENT_ID
      ? {
          clientId: e.OAUTH_GOOGLE_CLIENT_ID,
          clientSecret: secret(e.OAUTH_GOOGLE_CLIENT_SECRET),
          issuer: e.OAUTH_GOOGLE_ISSUER,
          /** Client ids whose ID tokens native apps may present (the web client id is always one). */
          audiences: [e.OAUTH_GOOGLE_CLIENT_ID, ...e.OAUTH_GOOGLE_AUDIENCES],
        }
      : undefined,
    github: e.OAUTH_GITHUB_CLIENT_ID
      ? {
          clientId: e.OAUTH_GITHUB_CLIENT_ID,
          clientSecret: secret(e.OAUTH_GITHUB_CLIENT_SECRET),
          url: e.OAUTH_GITHUB_URL.replace(/\/+$/, ''),
          apiUrl: e.OAUTH_GITHUB_API_URL.replace(/\/+$/, ''),
        }
      : undefined,
    facebook: e.OAUTH_FACEBOOK_CLIENT_ID
      ? {
          clientId: e.OAUTH_FACEBOOK_CLIENT_ID,
          clientSecret: secret(e.OAUTH_FACEBOOK_CLIENT_SECRET),
          url: e.OAUTH_FACEBOOK_URL.replace(/\/+$/, ''),
          graphUrl: e.OAUTH_FACEBOOK_GRAPH_URL.replace(/\/+$/, ''),
        }
      : undefined,
    apple: e.OAUTH_APPLE_CLIENT_ID
      ? {
          clientId: e.OAUTH_APPLE_CLIENT_ID,
          teamId: e.OAUTH_APPLE_TEAM_ID,
          keyId: e.OAUTH_APPLE_KEY_ID,
          privateKey: e.OAUTH_APPLE_PRIVATE_KEY,
          issuer: e.OAUTH_APPLE_ISSUER,
          audiences: [e.OAUTH_APPLE_CLIENT_ID, ...e.OAUTH_APPLE_AUDIENCES],
        }
      : undefined,
    oidc:
      e.OAUTH_OIDC_CLIENT_ID && e.OAUTH_OIDC_ISSUER
        ? {
            clientId: e.OAUTH_OIDC_CLIENT_ID,
            clientSecret: secret(e.OAUTH_OIDC_CLIENT_SECRET),
            issuer: e.OAUTH_OIDC_ISSUER,
            name: e.OAUTH_OIDC_NAME,
            audiences: [e.OAUTH_OIDC_CLIENT_ID],
          }
        : undefined,
  };
}

export type OAuthConfig = ReturnType<typeof oauthConfig>;

/** The environment -> Config. `isTTY` chooses the log format when LOG_FORMAT is auto. */
function configSchema({ isTTY }: { isTTY?: boolean }) {
  // `when`: the rules run even after a variable failed, so the report lists every problem.
  return variables.superRefine(checkAcrossVariables, { when: () => true }).transform((e) => {
    const nodeEnv = e.NODE_ENV ?? 'development';
    const isProduction = nodeEnv === 'production';
    return {
      nodeEnv,
      isProduction,
      version: packageJson.version,
      host: e.HOST,
      port: e.PORT,
      logLevel: e.LOG_LEVEL,
      /** LOG_FORMAT, or with 'auto': pretty in development or a terminal, JSON in production and tests. */
      logFormat: e.LOG_FORMAT === 'auto' ? autoLogFormat(nodeEnv, isTTY) : e.LOG_FORMAT,
      database: {
        /** Unset: use the embedded cluster in `embeddedDataDir`. */
        url: e.DATABASE_URL,
        poolMax: e.DATABASE_POOL_MAX,
        connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
        statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
        /** Queries with parameters parsed and planned once per connection; off behind a pooler that cannot carry them. */
        preparedStatements: e.DATABASE_PREPARED_STATEMENTS,
        embeddedDataDir: e.EMBEDDED_POSTGRES_DIR,
      },
      redis: {
        /** Unset: use the in-process memory store. */
        url: e.REDIS_URL,
        keyPrefix: e.REDIS_KEY_PREFIX,
        /** A command without an answer within this long fails: a 503, not a hang. */
        commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
      },
      jwt: {
        /** HS256 key, used unless a key pair is configured. */
        secret: e.JWT_SECRET ?? DEVELOPMENT_JWT_SECRET,
        /** EdDSA (Ed25519) key pair, PEM: the public key is served at /.well-known/jwks.json. */
        keyPair:
          e.JWT_PRIVATE_KEY && e.JWT_PUBLIC_KEY
            ? { privateKey: e.JWT_PRIVATE_KEY, publicKey: e.JWT_PUBLIC_KEY, keyId: e.JWT_KEY_ID }
            : undefined,
        issuer: e.JWT_ISSUER,
        audience: e.JWT_AUDIENCE,
        accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL,
        refreshTokenTtlSeconds: e.REFRESH_TOKEN_TTL,
        /** A rotated refresh token presented again within this long gets the same successor (concurrent tabs). */
        refreshReuseGraceSeconds: e.REFRESH_REUSE_GRACE_SECONDS,
        /** Active sessions an account may hold: a sign-in beyond them ends the least recently used. */
        maxSessionsPerUser: e.MAX_SESSIONS_PER_USER,
      },
      email: {
        /** MAIL_TRANSPORT (or the one provider configured); without one, the development outbox. */
        delivery: mailDelivery(e),
        from: e.EMAIL_FROM ?? 'App <no-reply@example.com>',
        sendTimeoutMs: e.EMAIL_SEND_TIMEOUT_MS,
        outboxDir: e.EMAIL_OUTBOX_DIR,
        productName: e.PRODUCT_NAME,
        footer: e.EMAIL_FOOTER,
      },
      /** The frontend's base URL: links in emails point there (/verify-email, /reset-password). */
      appUrl: appUrlOf(e),
      /** The built web app (apps/web/dist) this server serves at `/`, if any. */
      webDir: e.WEB_DIR,
      otp: {
        /** A fixed code that signs in existing users, outside production only. */
        devCode: e.DEV_OTP,
        appleReviewEmail: e.APPLE_REVIEW_EMAIL,
        appleReviewDays: e.APPLE_REVIEW_OTP_DAYS,
      },
      rateLimits: {
        /** auth.login, auth.register and the other credential endpoints, per IP and per email. */
        authPerMinute: e.RATE_LIMIT_AUTH_PER_MINUTE,
        /** Every other procedure, per IP. */
        defaultPerMinute: e.RATE_LIMIT_DEFAULT_PER_MINUTE,
        /** Failed credential checks per account (email or signed-in user), from every address together. */
        failuresPerMinute: e.RATE_LIMIT_EMAIL_FAILURES_PER_MINUTE,
      },
      corsOrigins: isProduction ? e.CORS_ORIGINS : withLoopbackTwins(e.CORS_ORIGINS),
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
      /** Fastify's trustProxy: false, a hop count, or proxy addresses/CIDRs. */
      trustProxy: e.TRUST_PROXY,
      /** A request must arrive whole (headers and body) within this long. */
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      /** Most procedure calls in one tRPC batch. */
      trpcMaxBatchSize: e.TRPC_MAX_BATCH_SIZE,
      workers: e.WORKERS === 'auto' ? availableParallelism() : e.WORKERS,
      /** What serves /trpc: the Fastify-native handler, or tRPC's own adapter (a fallback). */
      trpcTransport: e.TRPC_TRANSPORT,
      migrateOnStart: e.MIGRATE_ON_START ?? !isProduction,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
      healthCheckTimeoutMs: e.HEALTH_CHECK_TIMEOUT_MS,
      /** Stack traces and internal error messages in responses: development only. */
      exposeErrorDetails: nodeEnv === 'development',
      /** The server's public origin: provider callbacks and file links (`avatarUrl`) are built on it. */
      publicUrl: publicUrlOf(e),
      oauth: oauthConfig(e, isProduction),
      jobs: {
        /** Whether this server takes jobs itself (else only `pnpm worker` processes do). */
        embeddedWorker: e.JOBS_WORKER === 'embedded',
        /** pg-boss's own connections, beside the app's pool. */
        poolMax: e.JOBS_POOL_MAX,
        /** Jobs of each queue (email, storage-delete) this process runs at once. */
        concurrency: e.JOBS_CONCURRENCY,
        pollIntervalSeconds: e.JOBS_POLL_INTERVAL,
        /** How often tries of dead workers are looked for (missed heartbeats, expiry). */
        superviseIntervalSeconds: e.JOBS_SUPERVISE_INTERVAL,
        /** Purges and the file sweep: once per interval across every process. */
        maintenanceIntervalSeconds: e.MAINTENANCE_INTERVAL,
        /** `pnpm worker`: a file it writes once it takes jobs, and removes as it stops (a readiness probe's). */
        readyFile: e.JOBS_READY_FILE,
      },
      files: {
        driver: e.STORAGE_DRIVER,
        /** The local driver's directory. */
        dir: e.FILES_DIR,
        /** The local driver: how long one call on the disk may take (a hung network mount). */
        diskTimeoutMs: e.FILES_DISK_TIMEOUT_MS,
        maxBytes: e.FILES_MAX_BYTES,
        /** What one account's files may add up to. */
        quotaBytes: e.FILES_QUOTA_BYTES,
        /** Content types accepted, as sniffed from the bytes. */
        allowedTypes: e.FILES_ALLOWED_TYPES,
        /** A direct upload's URL lasts this long; an upload not completed an hour after (COMPLETION_GRACE_MS) is swept. */
        uploadUrlTtlSeconds: e.FILES_UPLOAD_URL_TTL,
        /** S3: downloads redirect to a presigned URL valid this long, instead of passing through. */
        downloadRedirect: e.FILES_DOWNLOAD_REDIRECT,
        downloadUrlTtlSeconds: e.FILES_DOWNLOAD_URL_TTL,
        s3: {
          bucket: e.S3_BUCKET ?? '',
          region: e.S3_REGION,
          endpoint: e.S3_ENDPOINT,
          accessKeyId: e.S3_ACCESS_KEY_ID,
          secretAccessKey: e.S3_SECRET_ACCESS_KEY,
          forcePathStyle: e.S3_FORCE_PATH_STYLE,
          timeoutMs: e.S3_TIMEOUT_MS,
          bodyIdleMs: e.REQUEST_TIMEOUT_MS,
        },
      },
    };
  });
}

export type Config = z.output<ReturnType<typeof configSchema>>;

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

export function loadConfig(env: NodeJS.ProcessEnv, options: { isTTY?: boolean } = {}): ConfigResult {
  // An empty variable (`PORT=`) means "use the default", as most tools treat it.
  const present = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''),
  );
  // Parsed once: zod's compiled fast path for objects costs more to build (~8 ms of a start)
  // than it saves on a single parse.
  const parsed = configSchema(options).safeParse(present, { jitless: true });
  const placeholders = present.NODE_ENV === 'production' ? placeholdersIn(present) : [];
  if (parsed.success && placeholders.length === 0) return { ok: true, config: parsed.data };
  const issues = parsed.success ? [] : parsed.error.issues;
  const problems = issues.map((issue) => {
    const name = String(issue.path[0] ?? '(config)');
    // A rule across variables names them in its message and quotes no value.
    if (issue.code === 'custom' && issue.params?.acrossVariables) return `${name}: ${issue.message}`;
    const value = present[name];
    const shown = value === undefined ? '' : SECRET_VARIABLES.has(name) ? '' : ` (got "${value}")`;
    const message = issue.code === 'invalid_value' ? `must be one of: ${issue.values.join(', ')}` : issue.message;
    return `${name}: ${message}${shown}`;
  });
  return { ok: false, problems: [...problems, ...placeholders] };
}

/**
 * deploy/kubernetes ships placeholders (`REPLACE-ME`, `replace-with-…`): one forgotten must not
 * go live, where an email transport or a bucket that does not exist would fail every email
 * and upload rather than the start. Read from the values as given (a parsed URL hides them).
 */
function placeholdersIn(present: Record<string, string>): string[] {
  return Object.keys(variables.shape)
    .filter((name) => /REPLACE-ME|replace-with-/i.test(present[name] ?? ''))
    .map((name) => `${name}: still holds a placeholder of the deployment templates: set the real value`);
}

/** The process's own configuration: the environment, and whether stdout is a terminal. */
export function loadProcessConfig(): ConfigResult {
  return loadConfig(process.env, { isTTY: process.stdout.isTTY });
}

/**
 * A process's configuration (the server's, a worker's): the repository's env file, then the
 * environment; a problem is reported on stderr and the process exits 1.
 */
export function configOrExit(): Config {
  try {
    loadRepoEnvFile();
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  const result = loadProcessConfig();
  if (!result.ok) {
    process.stderr.write(formatConfigReport(result.problems));
    process.exit(1);
  }
  return result.config;
}

export function formatConfigReport(problems: string[]): string {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return `Invalid configuration (${count}):\n${problems.map((p) => `  - ${p}`).join('\n')}\nEvery variable is described in .env.example.\n`;
}
