import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { repoRoot } from '@app/db';
import { describe, expect, it } from 'vitest';
import { DEVELOPMENT_JWT_SECRET, formatConfigReport, loadConfig } from '../src/config.ts';
import { spawnServer } from './helpers/index.ts';

const productionBase = {
  NODE_ENV: 'production',
  JWT_SECRET: 'rVY8m2Qk7tLx0pZcN4wE9sHf1uJb6gDaK3oTy5iBnXvMqCe', // 48 random characters
  DATABASE_URL: 'postgres://app@db:5432/app',
  REDIS_URL: 'redis://redis:6379',
  CORS_ORIGINS: 'https://app.example.com',
  RESEND_API_KEY: 're_live_key',
  EMAIL_FROM: 'Acme <no-reply@acme.example>',
};

function problems(env: Record<string, string>): string[] {
  const result = loadConfig(env);
  return result.ok ? [] : result.problems;
}

describe('config', () => {
  it('starts on development defaults with nothing set', () => {
    const result = loadConfig({});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      nodeEnv: 'development',
      port: 3000,
      workers: 1,
      migrateOnStart: true,
      jwt: {
        secret: DEVELOPMENT_JWT_SECRET,
        keyPair: undefined,
        accessTokenTtlSeconds: 900,
        refreshTokenTtlSeconds: 2_592_000,
      },
      database: { url: undefined },
      redis: { url: undefined },
      exposeErrorDetails: true,
    });
  });

  it('treats empty variables as unset and parses lists and flags', () => {
    const result = loadConfig({ PORT: '', CORS_ORIGINS: 'https://a.example, https://b.example', TRUST_PROXY: '1' });
    expect(result.ok && result.config.port).toBe(3000);
    expect(result.ok && result.config.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(result.ok && result.config.trustProxy).toBe(1);
  });

  it('reads a relative folder from the repository root, whichever folder the server runs in', () => {
    const result = loadConfig({
      EMBEDDED_POSTGRES_DIR: '.data/pg',
      EMAIL_OUTBOX_DIR: '/var/mail/outbox',
      FILES_DIR: './uploads',
      WEB_DIR: 'apps/web/dist',
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.database.embeddedDataDir).toBe(path.join(repoRoot, '.data', 'pg'));
    expect(result.config.email.outboxDir).toBe('/var/mail/outbox');
    expect(result.config.files.dir).toBe(path.join(repoRoot, 'uploads'));
    expect(result.config.webDir).toBe(path.join(repoRoot, 'apps', 'web', 'dist'));
    const defaults = loadConfig({});
    expect(defaults.ok && defaults.config.files.dir).toBe(path.join(repoRoot, '.data', 'files'));
  });

  it('prepares database statements unless DATABASE_PREPARED_STATEMENTS says false, and refuses any other word', () => {
    const on = loadConfig({});
    const off = loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' });
    expect(on.ok && on.config.database.preparedStatements).toBe(true);
    expect(off.ok && off.config.database.preparedStatements).toBe(false);
    expect(problems({ DATABASE_PREPARED_STATEMENTS: 'maybe' }).join('\n')).toMatch(/DATABASE_PREPARED_STATEMENTS: /);
  });

  it('allows each loopback development origin under both names, but only outside production', () => {
    const origins = (env: Record<string, string>) => {
      const result = loadConfig(env);
      return result.ok ? result.config.corsOrigins : result;
    };
    expect(origins({ CORS_ORIGINS: 'http://localhost:5173,http://127.0.0.1:8080,https://a.example' })).toEqual([
      'http://localhost:5173',
      'http://127.0.0.1:8080',
      'https://a.example',
      'http://127.0.0.1:5173',
      'http://localhost:8080',
    ]);
    expect(origins({ ...productionBase, CORS_ORIGINS: 'http://localhost:5173' })).toEqual(['http://localhost:5173']);
    // A trailing slash is no part of the origin a browser sends.
    expect(origins({ ...productionBase, CORS_ORIGINS: 'https://app.example.com/' })).toEqual([
      'https://app.example.com',
    ]);
  });

  it('trusts a number of proxy hops or a list of proxy addresses, never "everyone"', () => {
    const trust = (value: string) => {
      const result = loadConfig({ TRUST_PROXY: value });
      return result.ok ? result.config.trustProxy : result.problems.join('\n');
    };
    expect(trust('false')).toBe(false);
    expect(trust('0')).toBe(false);
    expect(trust('2')).toBe(2);
    expect(trust('10.0.0.0/8, 127.0.0.1,::1')).toEqual(['10.0.0.0/8', '127.0.0.1', '::1']);
    expect(trust('true')).toMatch(/TRUST_PROXY: must say which proxies to trust: .*number .*\(usually 1\)/);
    expect(trust('10.0.0.0/8,proxy.local')).toMatch(/TRUST_PROXY: "proxy\.local" is not an IP address or CIDR range/);
  });

  it('refuses to listen beyond loopback when NODE_ENV is unset', () => {
    expect(problems({ HOST: '0.0.0.0' })).toEqual([
      expect.stringMatching(/^NODE_ENV: is unset while HOST=0\.0\.0\.0 accepts connections from other machines/),
    ]);
    expect(problems({ HOST: '127.0.0.1' })).toEqual([]);
    expect(problems({ HOST: 'localhost' })).toEqual([]);
    expect(problems({ HOST: '::1' })).toEqual([]);
    expect(problems({ HOST: '127.0.0.1.nip.io' })).toHaveLength(1); // a name, not this machine
    expect(problems({ HOST: '0.0.0.0', NODE_ENV: 'development' })).toEqual([]);
  });

  it('lists every bad variable at once', () => {
    const found = problems({
      PORT: 'abc',
      LOG_LEVEL: 'loud',
      DATABASE_URL: 'mysql://x',
      WORKERS: 'many',
      TRUST_PROXY: 'yes',
    });
    expect(found).toHaveLength(5);
    expect(found.join('\n')).toMatch(/PORT: .*\(got "abc"\)/);
    expect(found.join('\n')).toMatch(/LOG_LEVEL: must be one of: fatal, error/);
    expect(found.join('\n')).toMatch(/DATABASE_URL: must be a postgres:\/\/ URL/);
    expect(found.join('\n')).toMatch(/WORKERS: must be a whole number from 1 to 256, or "auto"/);
  });

  it('checks the rules across variables even when a variable failed its own check', () => {
    expect(problems({ PORT: '2.5', TRUST_PROXY: 'true', WORKERS: '2', HOST: '0.0.0.0' })).toEqual([
      'PORT: must be a whole number from 0 to 65535 (got "2.5")',
      expect.stringMatching(/^TRUST_PROXY: must say which proxies to trust/),
      'WORKERS: more than one worker needs REDIS_URL: the in-memory store is per process',
      expect.stringMatching(/^NODE_ENV: is unset while HOST=0\.0\.0\.0/),
    ]);
  });

  it('never echoes secret values', () => {
    // Each secret with a form of its own, given a value that fails it (others are any text).
    const invalid: Record<string, string> = {
      DATABASE_URL: 'mysql://user:hunter2@host/db',
      REDIS_URL: 'hunter2://host',
      SMTP_URL: 'http://user:hunter2@host',
      JWT_PRIVATE_KEY: 'hunter2',
      OAUTH_APPLE_PRIVATE_KEY: 'hunter2',
      DEV_OTP: 'hunter2',
    };
    for (const [name, value] of Object.entries(invalid)) {
      const found = problems({ [name]: value }).join('\n');
      expect(found, name).toMatch(new RegExp(`^${name}: `, 'm'));
      expect(found, name).not.toContain('hunter2');
    }
    // In production too, where the secret's own rules speak.
    const production = problems({ ...productionBase, JWT_SECRET: 'hunter2' }).join('\n');
    expect(production).toMatch(/^JWT_SECRET: /m);
    expect(production).not.toContain('hunter2');
    // Where a variable is not secret, its value is shown: the check above would see it.
    expect(problems({ PORT: 'hunter2' }).join('\n')).toContain('hunter2');
  });

  it('refuses more than one worker without Redis', () => {
    expect(problems({ WORKERS: '2' })).toEqual([
      expect.stringMatching(/^WORKERS: more than one worker needs REDIS_URL/),
    ]);
    expect(problems({ WORKERS: '2', REDIS_URL: 'redis://localhost:6379' })).toEqual([]);
  });

  it('accepts a complete production configuration', () => {
    const result = loadConfig(productionBase);
    expect(result.ok).toBe(true);
    // A bare sender address, and the address family chosen in REDIS_URL (Railway's `?family=0`).
    expect(
      loadConfig({ ...productionBase, EMAIL_FROM: 'no-reply@acme.example', REDIS_URL: 'redis://redis:6379?family=0' })
        .ok,
    ).toBe(true);
    expect(result.ok && result.config).toMatchObject({
      isProduction: true,
      migrateOnStart: false,
      exposeErrorDetails: false,
    });
  });

  it('accepts an http PUBLIC_URL on localhost in production without a provider (docker compose on this machine)', () => {
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:3000']) {
      const result = loadConfig({ ...productionBase, PUBLIC_URL: origin });
      expect(result.ok && result.config.publicUrl, origin).toBe(origin);
    }
  });

  it.each([
    ['a missing JWT_SECRET', { JWT_SECRET: undefined }, /JWT_SECRET: is required in production/],
    ['half a key pair', { JWT_PRIVATE_KEY: 'x' }, /JWT_PRIVATE_KEY: and JWT_PUBLIC_KEY must be set together/],
    [
      // Blank keys and no JWT_SECRET once meant: sign with the public development secret.
      'a blank key pair',
      { JWT_SECRET: undefined, JWT_PRIVATE_KEY: '\\n', JWT_PUBLIC_KEY: '  ' },
      /JWT_PRIVATE_KEY: must be a PEM key/,
    ],
    ['a short JWT_SECRET', { JWT_SECRET: 'short-secret' }, /JWT_SECRET: must be at least 32 bytes/],
    [
      'a JWT_SECRET of one repeated character',
      { JWT_SECRET: 'a'.repeat(32) },
      /JWT_SECRET: looks guessable \(about 0 bits/,
    ],
    ['a JWT_SECRET of a repeated phrase', { JWT_SECRET: 'password1'.repeat(4) }, /JWT_SECRET: looks guessable/],
    ['the development JWT_SECRET', { JWT_SECRET: DEVELOPMENT_JWT_SECRET }, /JWT_SECRET: is the development secret/],
    ['the embedded database', { DATABASE_URL: undefined }, /DATABASE_URL: is required in production/],
    ['the memory store', { REDIS_URL: undefined }, /REDIS_URL: is required in production/],
    ['wildcard CORS', { CORS_ORIGINS: '*' }, /CORS_ORIGINS: must list origins in production/],
    ['no email provider', { RESEND_API_KEY: undefined }, /MAIL_TRANSPORT: is required in production/],
    ['the default sender', { EMAIL_FROM: undefined }, /EMAIL_FROM: is required in production/],
    ['a development one-time code', { DEV_OTP: '123456' }, /DEV_OTP: is refused in production/],
    [
      'a provider without its secret',
      { PUBLIC_URL: 'https://api.example.com', OAUTH_GITHUB_CLIENT_ID: 'gh' },
      /OAUTH_GITHUB_CLIENT_SECRET: is required in production when OAUTH_GITHUB_CLIENT_ID is set/,
    ],
    [
      'Apple without its key',
      { PUBLIC_URL: 'https://api.example.com', OAUTH_APPLE_CLIENT_ID: 'com.example.web', OAUTH_APPLE_TEAM_ID: 'T' },
      /OAUTH_APPLE_PRIVATE_KEY: is required in production[\s\S]*OAUTH_APPLE_KEY_ID: is required in production/,
    ],
    [
      'a provider without PUBLIC_URL',
      { OAUTH_GOOGLE_CLIENT_ID: 'g', OAUTH_GOOGLE_CLIENT_SECRET: 's' },
      /PUBLIC_URL: is required in production with a sign-in provider/,
    ],
    [
      'a provider returning its codes to a plain http page',
      {
        PUBLIC_URL: 'https://api.example.com',
        OAUTH_GOOGLE_CLIENT_ID: 'g',
        OAUTH_GOOGLE_CLIENT_SECRET: 's',
        CORS_ORIGINS: 'https://app.example.com,http://localhost:3000',
      },
      /CORS_ORIGINS: "http:\/\/localhost:3000" is plain http: in production a sign-in returns its code to https pages only/,
    ],
    [
      'a provider returning its codes to the development web app (no APP_URL)',
      { PUBLIC_URL: 'https://api.example.com', OAUTH_GOOGLE_CLIENT_ID: 'g', OAUTH_GOOGLE_CLIENT_SECRET: 's' },
      /APP_URL: "http:\/\/localhost:5173" is plain http/,
    ],
    [
      'an http PUBLIC_URL',
      { PUBLIC_URL: 'http://api.example.com', OAUTH_GOOGLE_CLIENT_ID: 'g', OAUTH_GOOGLE_CLIENT_SECRET: 's' },
      /PUBLIC_URL: must be https in production \(providers send sign-in codes to it\)/,
    ],
    [
      'an http PUBLIC_URL on another machine',
      { PUBLIC_URL: 'http://api.example.com' },
      /PUBLIC_URL: must be https in production, or http on localhost/,
    ],
    [
      'an http PUBLIC_URL on localhost with a provider',
      { PUBLIC_URL: 'http://localhost:3000', OAUTH_GITHUB_CLIENT_ID: 'gh', OAUTH_GITHUB_CLIENT_SECRET: 's' },
      /PUBLIC_URL: must be https in production \(providers send sign-in codes to it\)/,
    ],
    [
      "deploy/kubernetes' placeholders left in",
      {
        RESEND_API_KEY: undefined,
        MAIL_TRANSPORT: 'smtp',
        SMTP_URL: 'smtp://REPLACE-ME:REPLACE-ME@smtp.example.com:587',
        STORAGE_DRIVER: 's3',
        S3_BUCKET: 'replace-with-your-bucket',
      },
      /SMTP_URL: still holds a placeholder[\s\S]*S3_BUCKET: still holds a placeholder/,
    ],
    [
      // Before: a TypeError thrown out of the rules, with a stack trace, and no report.
      'an APP_URL without its scheme, with a provider',
      {
        PUBLIC_URL: 'https://api.example.com',
        OAUTH_GITHUB_CLIENT_ID: 'gh',
        OAUTH_GITHUB_CLIENT_SECRET: 's',
        APP_URL: 'app.example.com',
      },
      /APP_URL: must be an http\(s\) URL/,
    ],
    // Before: accepted, and every email then refused by the provider.
    ['a sender that is no address', { EMAIL_FROM: 'noreply' }, /EMAIL_FROM: must be an address/],
    ['a sender without its domain', { EMAIL_FROM: 'Acme <no-reply@>' }, /EMAIL_FROM: must be an address/],
    // Before: accepted, and ioredis let the URL's options override the app's timeout and queue.
    [
      'Redis options in REDIS_URL',
      { REDIS_URL: 'redis://redis:6379?commandTimeout=0&enableOfflineQueue=true' },
      /REDIS_URL: takes no \?commandTimeout, \?enableOfflineQueue/,
    ],
    ['a REDIS_URL without a host', { REDIS_URL: 'redis://' }, /REDIS_URL: needs a host/],
    [
      'a REDIS_URL without its scheme',
      { REDIS_URL: '127.0.0.1:6379' },
      /REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/,
    ],
    [
      // Before: accepted, and the start failed on "Invalid key type", naming no variable.
      'a JWT key pair that is not Ed25519',
      (() => {
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
        return {
          JWT_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          JWT_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        };
      })(),
      /JWT_PRIVATE_KEY: must be an Ed25519 key/,
    ],
    [
      'no limit on a query',
      { DATABASE_STATEMENT_TIMEOUT_MS: '0' },
      /DATABASE_STATEMENT_TIMEOUT_MS: is 0 \(no limit\), refused in production/,
    ],
    ['no time to drain', { SHUTDOWN_TIMEOUT_MS: '0' }, /SHUTDOWN_TIMEOUT_MS: must be a whole number from 1000/],
  ])('refuses production with %s', (_, change, expected) => {
    const env = Object.fromEntries(
      Object.entries({ ...productionBase, ...change }).filter(
        (entry): entry is [string, string] => entry[1] !== undefined,
      ),
    );
    expect(problems(env).join('\n')).toMatch(expected);
  });

  it('turns a provider on by its client id, with callbacks on PUBLIC_URL and redirects to the app origins', () => {
    const result = loadConfig({
      PORT: '4000',
      APP_URL: 'http://localhost:5173/app',
      CORS_ORIGINS: 'https://admin.example.com',
      OAUTH_GITHUB_CLIENT_ID: 'gh',
      OAUTH_GITHUB_CLIENT_SECRET: 'secret',
    });
    expect(result.ok && result.config.publicUrl).toBe('http://localhost:4000');
    expect(result.ok && result.config.oauth).toMatchObject({
      redirectOrigins: ['https://admin.example.com', 'http://localhost:5173', 'http://127.0.0.1:5173'],
      github: { clientId: 'gh', url: 'https://github.com', apiUrl: 'https://api.github.com' },
      google: undefined,
      apple: undefined,
      oidc: undefined,
    });
  });

  it.each([
    ['an OIDC client without an issuer', { OAUTH_OIDC_CLIENT_ID: 'c' }, /OAUTH_OIDC_ISSUER: is required with/],
    [
      'a provider over plain http on another machine',
      { OAUTH_OIDC_ISSUER: 'http://idp.example.com' },
      /OAUTH_OIDC_ISSUER: must be https \(plain http only for a provider on this machine\)/,
    ],
    [
      'an Apple key that is not a P-256 .p8 (Ed25519)',
      {
        OAUTH_APPLE_CLIENT_ID: 'com.example.app',
        OAUTH_APPLE_PRIVATE_KEY: generateKeyPairSync('ed25519')
          .privateKey.export({ format: 'pem', type: 'pkcs8' })
          .toString(),
      },
      /OAUTH_APPLE_PRIVATE_KEY: must be the \.p8 key/,
    ],
    [
      'an Apple key in SEC1 rather than PKCS#8',
      {
        OAUTH_APPLE_CLIENT_ID: 'com.example.app',
        OAUTH_APPLE_PRIVATE_KEY: generateKeyPairSync('ec', { namedCurve: 'P-256' })
          .privateKey.export({ format: 'pem', type: 'sec1' })
          .toString(),
      },
      /OAUTH_APPLE_PRIVATE_KEY: must be the \.p8 key/,
    ],
    ['a redirect origin with a path', { OAUTH_REDIRECT_ORIGINS: 'https://app.example.com/x' }, /is not an origin/],
    // Compared exactly with a browser's Origin: neither could ever match.
    [
      'a CORS origin with a path',
      { CORS_ORIGINS: 'https://app.example.com/app' },
      /CORS_ORIGINS: ".*" is not an origin/,
    ],
    ['a CORS origin in capitals', { CORS_ORIGINS: 'https://App.example.com' }, /CORS_ORIGINS: ".*" is not an origin/],
    ['a PUBLIC_URL with a path', { PUBLIC_URL: 'https://api.example.com/v1' }, /PUBLIC_URL: must be an origin/],
    ['the S3 driver without a bucket', { STORAGE_DRIVER: 's3' }, /S3_BUCKET: is required with STORAGE_DRIVER=s3/],
    [
      'a type sniffing never answers',
      { FILES_ALLOWED_TYPES: 'image/png,text/html' },
      /"text\/html" can never be recognised/,
    ],
    [
      'a sweep interval no timer can wait',
      { MAINTENANCE_INTERVAL: '30s' },
      /MAINTENANCE_INTERVAL: must be from 1m to 24h/,
    ],
    [
      'a presigned URL longer than S3 allows',
      { FILES_UPLOAD_URL_TTL: '8d' },
      /FILES_UPLOAD_URL_TTL: must be at most 7d/,
    ],
    ['half an S3 key', { S3_ACCESS_KEY_ID: 'AKIA' }, /S3_ACCESS_KEY_ID: and S3_SECRET_ACCESS_KEY must be set together/],
    [
      'download redirects on local storage',
      { FILES_DOWNLOAD_REDIRECT: 'true' },
      /FILES_DOWNLOAD_REDIRECT: needs STORAGE_DRIVER=s3/,
    ],
  ])('refuses %s in any environment', (_, env, expected) => {
    expect(problems(env).join('\n')).toMatch(expected);
  });

  it('accepts a provider on this machine over http (a local Keycloak)', () => {
    expect(problems({ OAUTH_OIDC_ISSUER: 'http://127.0.0.1:8080/realms/dev', OAUTH_OIDC_CLIENT_ID: 'c' })).toEqual([]);
  });

  it('formats one readable report', () => {
    expect(formatConfigReport(['PORT: bad', 'HOST: bad'])).toBe(
      'Invalid configuration (2 problems):\n  - PORT: bad\n  - HOST: bad\nEvery variable is described in .env.example.\n',
    );
  });

  it('makes the real process print the report and exit 1, without a stack trace', async () => {
    const server = spawnServer({ NODE_ENV: 'production', PORT: 'not-a-port', JWT_SECRET: 'short' });
    const code = await server.exited;
    expect(code).toBe(1);
    const output = server.output();
    expect(output).toMatch(/^Invalid configuration \(\d+ problems\):/m);
    expect(output).toMatch(/- PORT: .*not-a-port/);
    expect(output).toMatch(/- JWT_SECRET: must be at least 32 bytes/);
    expect(output).toMatch(/- DATABASE_URL: is required in production/);
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('never suggests development stand-ins to a production deploy', async () => {
    const server = spawnServer({
      ...productionBase,
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
      HOST: '127.0.0.1',
    });
    expect(await server.exited).toBe(1);
    expect(server.output()).toMatch(/Cannot reach the database at 127\.0\.0\.1:1\/nowhere: .*Check DATABASE_URL\./);
    expect(server.output()).not.toMatch(/embedded/);
  });
});
