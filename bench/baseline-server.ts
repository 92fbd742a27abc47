/**
 * The baselines: plain Fastify routes with no tRPC, doing the same work as the procedures
 * they are compared with.
 *   GET /health  the JSON of health.live
 *   GET /notes   what notes.list does, by hand: verify the JWT (jose, same key and claims;
 *                a token verified before is remembered by its text, as the app does),
 *                check the session's revocation marker (Redis, or memory), one indexed
 *                query (Kysely), the same JSON out
 *   POST /notes  what notes.create does, by hand: the same sign-in check, the title and body
 *                checked as its input schema does, one INSERT ... RETURNING, the same JSON out
 * Configured by the environment the benchmark gives it: PORT, DATABASE_URL, REDIS_URL,
 * JWT_SECRET.
 */
import { createDb } from '@app/db';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import { type JWTPayload, jwtVerify } from 'jose';

const env = process.env;
const db = createDb({ url: env.DATABASE_URL as string, poolMax: 10 });
const redis = env.REDIS_URL ? new Redis(env.REDIS_URL, { keyPrefix: env.REDIS_KEY_PREFIX ?? 'app:' }) : undefined;
const revoked = new Set<string>(); // the memory-store equivalent
const key = new TextEncoder().encode(env.JWT_SECRET as string);
const startedAt = Date.now();
/**
 * Tokens verified before, by their exact text, as the app keeps them (infra/tokens.ts): a
 * careful hand-written route does not check the same signature again on every call (jose's
 * HMAC is an asynchronous WebCrypto job on libuv's thread pool). The expiry is checked on
 * every call.
 */
const verifiedTokens = new Map<string, JWTPayload>();

const app = Fastify({ logger: false });

app.get('/health', async () => ({
  status: 'ok',
  version: '0.1.0',
  uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
}));

type NoteRow = { id: string; title: string; body: string; owner_id: string; created_at: Date; updated_at: Date };
const toDto = (row: NoteRow) => ({
  id: row.id,
  title: row.title,
  body: row.body,
  ownerId: row.owner_id,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

/** The signed-in user's id, or undefined once a 401 has been sent. */
async function signedIn(request: FastifyRequest, reply: FastifyReply): Promise<string | undefined> {
  const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  if (!token) {
    reply.code(401).send({ message: 'unauthorized' });
    return undefined;
  }
  let userId: string;
  let sessionId: string;
  try {
    let payload = verifiedTokens.get(token);
    if (payload === undefined) {
      ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'], issuer: 'app', audience: 'app' }));
      if (verifiedTokens.size >= 10_000) verifiedTokens.delete(verifiedTokens.keys().next().value as string);
      verifiedTokens.set(token, payload);
    } else if ((payload.exp ?? 0) * 1000 <= Date.now()) {
      throw new Error('expired');
    }
    userId = payload.sub as string;
    sessionId = payload.sid as string;
  } catch {
    reply.code(401).send({ message: 'unauthorized' });
    return undefined;
  }
  const isRevoked = redis ? (await redis.get(`revoked-session:${sessionId}`)) !== null : revoked.has(sessionId);
  if (isRevoked) {
    reply.code(401).send({ message: 'revoked' });
    return undefined;
  }
  return userId;
}

app.get<{ Querystring: { limit?: string } }>('/notes', async (request, reply) => {
  const userId = await signedIn(request, reply);
  if (userId === undefined) return reply;
  const limit = Math.min(100, Math.max(1, Number(request.query.limit ?? 20)));
  const rows = await db
    .selectFrom('notes')
    .selectAll()
    .where('owner_id', '=', userId)
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute();
  const page = rows.slice(0, limit);
  return {
    items: page.map(toDto),
    nextCursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null,
  };
});

app.post<{ Body: { title?: unknown; body?: unknown } }>('/notes', async (request, reply) => {
  const userId = await signedIn(request, reply);
  if (userId === undefined) return reply;
  const { title, body } = request.body ?? {};
  const trimmed = typeof title === 'string' ? title.trim() : '';
  if (
    trimmed.length < 1 ||
    trimmed.length > 200 ||
    (body !== undefined && (typeof body !== 'string' || body.length > 20_000))
  ) {
    return reply.code(400).send({ message: 'bad input' });
  }
  const row = await db
    .insertInto('notes')
    .values({ owner_id: userId, title: trimmed, body: (body as string | undefined) ?? '' })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toDto(row);
});

const address = await app.listen({ host: '127.0.0.1', port: Number(env.PORT ?? 0) });
console.log(`baseline listening at ${address}`);
process.on('SIGTERM', async () => {
  await app.close();
  await db.destroy();
  redis?.disconnect();
  process.exit(0);
});
