/**
 * Every email of the account flows, as a durable job (queue `email`): queued in the
 * transaction that causes it (an account and its verification email, both or neither),
 * retried with backoff while the provider is down. The job's id is the provider's
 * idempotency key (Resend sends a retried try once; SMTP has no such key, so a try whose
 * answer was lost may be delivered twice), and whatever the email carries (a link's token, a
 * sign-in code) is derived from that id with the server's key, so a retried try sends the
 * very same email and nothing secret is stored in the job.
 */
import type { Db } from '@app/db';
import { type Locale, preferredLocale } from '../../i18n/locale.ts';
import type { QueueDefinition } from '../../infra/jobs.ts';
import { hashOpaqueToken } from '../../infra/tokens.ts';
import type { Services } from '../../services.ts';
import { findUserRow, findUserRowByEmail, maySignIn } from '../users/users.service.ts';
import { composeEmail, greeting } from './emails.ts';
import { codeKey, readCode } from './otp-codes.ts';
import { ensureUserToken, type LinkPurpose, retireOlderLinks } from './user-tokens.ts';

export const EMAIL_QUEUE: QueueDefinition = {
  name: 'email',
  // About an hour of tries (5 s doubling up to 10 min): an outage of the provider is waited out.
  retryLimit: 10,
  retryDelaySeconds: 5,
  retryDelayMaxSeconds: 600,
  expireInSeconds: 120,
  // A worker killed mid-send: its email is tried again (by the same key) within about 10 s plus
  // JOBS_SUPERVISE_INTERVAL, not only after the 120 s expiry.
  heartbeatSeconds: 10,
};

export const VERIFY_EMAIL_TTL_MS = 24 * 60 * 60 * 1000;
export const RESET_PASSWORD_TTL_MS = 60 * 60 * 1000;
export const OTP_TTL_MS = 10 * 60 * 1000;

/** What to send: the worker reads what it needs when it runs (the account may have changed). */
export type EmailJob =
  | { kind: 'verify-email'; userId: string; locale?: Locale | undefined; requestId?: string | undefined }
  | {
      kind: 'reset-password';
      email: string;
      /** When it was asked for (ms since the epoch): a password set since makes the link moot. */
      requestedAt?: number | undefined;
      locale?: Locale | undefined;
      requestId?: string | undefined;
    }
  | { kind: 'one-time-code'; email: string; locale?: Locale | undefined; requestId?: string | undefined }
  | { kind: 'welcome'; email: string; locale?: Locale | undefined; requestId?: string | undefined };

type Deps = Pick<Services, 'db' | 'kv' | 'config' | 'tokens' | 'mailer' | 'clock' | 'log' | 'jobs'>;

/** Queues an email; with `db` (a transaction), it is queued only if that transaction commits. */
export async function enqueueEmail(
  deps: Pick<Services, 'jobs'>,
  job: EmailJob,
  options: { db?: Db; id?: string } = {},
): Promise<void> {
  await deps.jobs.send(EMAIL_QUEUE.name, job, options);
}

/** The token of an email link, derived from its job (the same on every try). */
export const linkTokenOf = (deps: Pick<Services, 'tokens'>, jobId: string) =>
  deps.tokens.keyedHash(`email-link:${jobId}`);

/** The sign-in code an email job carries, derived from its id (the request stored its hash). */
export function codeOf(deps: Pick<Services, 'tokens'>, jobId: string): string {
  const digest = Buffer.from(deps.tokens.keyedHash(`email-code:${jobId}`), 'base64url');
  return String(digest.readUInt32BE(0) % 1_000_000).padStart(6, '0');
}

/**
 * Runs one email job: sends it, or nothing when there is nothing (left) to send. A send still
 * going when the job's `signal` aborts (it expired, or another worker took it back, or the
 * worker's shutdown ran out of time) stops: the job's next try sends it.
 */
export async function runEmailJob(
  deps: Deps,
  job: { id: string; data: EmailJob; signal?: AbortSignal | undefined },
): Promise<void> {
  const message = await prepare(deps, job.id, job.data);
  if (!message) return;
  const { id } = await deps.mailer.send({ ...message, idempotencyKey: job.id }, { signal: job.signal });
  deps.log.info({ requestId: job.data.requestId, jobId: job.id, template: message.template, id }, 'email sent');
  // A link, once sent, is the one that works: the unused ones of its kind sent before it stop.
  if (job.data.kind === 'verify-email' || job.data.kind === 'reset-password') {
    await retireOlderLinks(deps, hashOpaqueToken(linkTokenOf(deps, job.id)));
  }
}

async function prepare(deps: Deps, jobId: string, job: EmailJob) {
  switch (job.kind) {
    case 'verify-email': {
      const user = await findUserRow(deps, job.userId);
      if (!user || user.email_verified_at) return undefined;
      return linkEmail(deps, jobId, { user, purpose: 'verify-email', ttlMs: VERIFY_EMAIL_TTL_MS, locale: job.locale });
    }
    case 'reset-password': {
      const user = await findUserRowByEmail(deps, job.email);
      if (!user || !maySignIn(user)) return undefined;
      // A password set or removed after the request (a change, a reset, a reclaim) voided the
      // links asked for before it: a try still retrying then must not make its link again.
      const changedAt = user.password_changed_at?.getTime();
      if (changedAt !== undefined && job.requestedAt !== undefined && changedAt >= job.requestedAt) return undefined;
      return linkEmail(deps, jobId, {
        user,
        purpose: 'reset-password',
        ttlMs: RESET_PASSWORD_TTL_MS,
        vars: { minutes: String(RESET_PASSWORD_TTL_MS / 60_000) },
        locale: job.locale,
        // Checked again as the link is made: a change committing between the two voids it too.
        unlessPasswordSetSince: job.requestedAt,
      });
    }
    case 'one-time-code': {
      // Only while it is the email's live code: tries of this job go on for an hour, and a
      // code that expired or was replaced meanwhile would only cost its reader a try. (The
      // in-process store of development is another process's in `pnpm worker`: not asked.)
      const code = codeOf(deps, jobId);
      if (deps.kv.kind === 'redis') {
        const live = await readCode(deps, codeKey(job.email));
        if (live?.hash !== deps.tokens.keyedHash(`${job.email}:${code}`)) return undefined;
      }
      const user = await findUserRowByEmail(deps, job.email);
      return composeEmail(deps, {
        template: 'one-time-code',
        to: job.email,
        vars: { code, minutes: String(OTP_TTL_MS / 60_000) },
        locale: preferredLocale(user?.locale, job.locale),
      });
    }
    case 'welcome': {
      // Only to an account that still holds the address and may sign in: tries go on for an
      // hour, and it may have been deleted, disabled or moved to another address meanwhile.
      const user = await findUserRowByEmail(deps, job.email);
      if (!user || !maySignIn(user)) return undefined;
      return composeEmail(deps, {
        template: 'welcome',
        to: user.email,
        vars: { email: user.email, link: deps.config.appUrl },
        locale: preferredLocale(user.locale, job.locale),
      });
    }
  }
}

async function linkEmail(
  deps: Deps,
  jobId: string,
  input: {
    user: NonNullable<Awaited<ReturnType<typeof findUserRow>>>;
    purpose: LinkPurpose;
    ttlMs: number;
    vars?: Record<string, string>;
    locale: Locale | undefined;
    unlessPasswordSetSince?: number | undefined;
  },
) {
  const token = linkTokenOf(deps, jobId);
  const made = await ensureUserToken(deps, {
    userId: input.user.id,
    purpose: input.purpose,
    tokenHash: hashOpaqueToken(token),
    ttlMs: input.ttlMs,
    ...(input.unlessPasswordSetSince !== undefined && { unlessPasswordSetSince: input.unlessPasswordSetSince }),
  });
  if (!made) return undefined;
  return composeEmail(deps, {
    template: input.purpose,
    to: input.user.email,
    locale: preferredLocale(input.user.locale, input.locale),
    vars: {
      greeting: greeting(input.user.name),
      link: `${deps.config.appUrl}/${input.purpose}?token=${token}`,
      ...input.vars,
    },
  });
}
