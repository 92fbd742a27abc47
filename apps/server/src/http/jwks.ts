import type { FastifyInstance } from 'fastify';
import type { TokenService } from '../infra/tokens.ts';

/** Public keys for verifying access tokens elsewhere (empty with HS256: a shared secret is never published). */
export async function jwksRoute(app: FastifyInstance, { tokens }: { tokens: TokenService }) {
  const body = tokens.jwks();
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return body;
  });
}
