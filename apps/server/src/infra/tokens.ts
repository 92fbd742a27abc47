/**
 * Access tokens (JWT, jose) and opaque tokens (random strings, stored hashed: refresh
 * tokens, email links). HS256 with JWT_SECRET by default; EdDSA when a key pair is
 * configured, in which case the public key is published as a JWKS for other services.
 * Issuing and expiry follow the injected clock.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
// jose's own entry points for each part: its index would load all of jose (JWE, JWKS…) at start-up.
import type { JWK, JWTPayload } from 'jose';
import * as errors from 'jose/errors';
import { calculateJwkThumbprint } from 'jose/jwk/thumbprint';
import { SignJWT } from 'jose/jwt/sign';
import { jwtVerify } from 'jose/jwt/verify';
import { exportJWK } from 'jose/key/export';
import { importPKCS8, importSPKI } from 'jose/key/import';
import type { Config } from '../config.ts';
import type { Clock } from './clock.ts';

export interface AccessTokenClaims {
  /** User id. */
  sub: string;
  /** Session id. */
  sid: string;
  jti: string;
  iat: number;
  exp: number;
}

export class AccessTokenError extends Error {
  readonly reason: 'expired' | 'invalid';
  constructor(reason: 'expired' | 'invalid', message: string) {
    super(message);
    this.name = 'AccessTokenError';
    this.reason = reason;
  }
}

export interface TokenService {
  readonly algorithm: 'HS256' | 'EdDSA';
  issueAccessToken(subject: { userId: string; sessionId: string }): Promise<{ token: string; expiresAt: Date }>;
  /** The verified claims; throws AccessTokenError for anything else (expired, forged, wrong alg/iss/aud). */
  verifyAccessToken(token: string): Promise<AccessTokenClaims>;
  /** Public keys for `/.well-known/jwks.json` (none with HS256: a shared secret is never published). */
  jwks(): { keys: JWK[] };
  /**
   * HMAC-SHA256 with a server-side key: for short secrets (one-time codes) that a plain
   * hash would not protect if the store leaked.
   */
  keyedHash(value: string): string;
}

type SigningKey = Awaited<ReturnType<typeof importPKCS8>>;

/** How many verified access tokens a process remembers (most recently verified first). */
const VERIFIED_TOKENS_KEPT = 10_000;

/**
 * Access tokens whose signature and claims were verified, by their exact text: a client
 * sends the same token with every call for its 15 minutes, and checking its signature again
 * (an asynchronous WebCrypto job) was a tenth of a signed-in read's CPU. Only a token
 * verified here before is found here, so nothing unsigned gets in; its expiry is checked
 * again on every call, and revocation is not this cache's business (authenticate asks).
 */
class VerifiedTokens {
  readonly #entries = new Map<string, AccessTokenClaims>();

  get(token: string): AccessTokenClaims | undefined {
    return this.#entries.get(token);
  }

  remember(token: string, claims: AccessTokenClaims): void {
    if (this.#entries.size >= VERIFIED_TOKENS_KEPT) {
      // The oldest entry goes (a Map iterates in insertion order).
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(token, claims);
  }
}

export async function createTokenService(jwt: Config['jwt'], clock: Clock): Promise<TokenService> {
  let algorithm: 'HS256' | 'EdDSA';
  let signingKey: SigningKey;
  let verifyingKey: SigningKey;
  let keyId: string | undefined;
  let publicJwks: JWK[] = [];

  // With a key pair, JWT_SECRET may be unset: the private key is the server's secret then.
  const hmacKey = jwt.keyPair ? createHash('sha256').update(jwt.keyPair.privateKey).digest() : jwt.secret;
  if (jwt.keyPair) {
    algorithm = 'EdDSA';
    signingKey = await importPKCS8(jwt.keyPair.privateKey, 'EdDSA', { extractable: false });
    verifyingKey = await importSPKI(jwt.keyPair.publicKey, 'EdDSA', { extractable: true });
    const publicJwk = await exportJWK(verifyingKey);
    keyId = jwt.keyPair.keyId ?? (await calculateJwkThumbprint(publicJwk));
    publicJwks = [{ ...publicJwk, kid: keyId, alg: 'EdDSA', use: 'sig' }];
  } else {
    algorithm = 'HS256';
    // Imported once: given the bytes, jose would import a key for every call.
    const secret = new TextEncoder().encode(jwt.secret);
    signingKey = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]);
    verifyingKey = signingKey;
  }
  const verified = new VerifiedTokens();

  return {
    algorithm,
    async issueAccessToken({ userId, sessionId }) {
      const issuedAt = Math.floor(clock.now() / 1000);
      const expiresAt = issuedAt + jwt.accessTokenTtlSeconds;
      const token = await new SignJWT({ sid: sessionId })
        .setProtectedHeader({ alg: algorithm, typ: 'JWT', ...(keyId && { kid: keyId }) })
        .setSubject(userId)
        .setJti(randomUUID())
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt)
        .setIssuer(jwt.issuer)
        .setAudience(jwt.audience)
        .sign(signingKey);
      return { token, expiresAt: new Date(expiresAt * 1000) };
    },
    async verifyAccessToken(token) {
      const known = verified.get(token);
      if (known) {
        // As jose decides it: expired once `exp` is not after the current second.
        if (known.exp <= Math.floor(clock.now() / 1000)) {
          throw new AccessTokenError('expired', 'The access token has expired');
        }
        return known;
      }
      let payload: JWTPayload;
      try {
        // Only our algorithm: no "none", no HS/EdDSA confusion.
        ({ payload } = await jwtVerify(token, verifyingKey, {
          algorithms: [algorithm],
          issuer: jwt.issuer,
          audience: jwt.audience,
          requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
          currentDate: new Date(clock.now()),
        }));
      } catch (error) {
        if (error instanceof errors.JWTExpired) throw new AccessTokenError('expired', 'The access token has expired');
        throw new AccessTokenError('invalid', 'The access token is not valid');
      }
      const { sub, sid, jti, iat, exp } = payload;
      if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string' || !iat || !exp) {
        throw new AccessTokenError('invalid', 'The access token is not valid');
      }
      const claims = { sub, sid, jti, iat, exp };
      verified.remember(token, claims);
      return claims;
    },
    jwks() {
      return { keys: publicJwks };
    },
    keyedHash(value) {
      return createHmac('sha256', hmacKey).update(value).digest('base64url');
    },
  };
}

/** A new opaque token (refresh token, email link): 256 random bits, URL-safe. */
export function newOpaqueToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Opaque tokens are high-entropy, so a plain SHA-256 is a safe lookup key for them. */
export function hashOpaqueToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
