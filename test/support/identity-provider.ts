// A test identity provider (outside the product, like the payment sandbox): a real HTTP server
// publishing a JWKS, and the tokens it would issue, signed with its RS256 key. It also makes the
// tokens an attacker would try: expired, for another audience or issuer, signed with a key it never
// published, or with an algorithm the ingress does not accept.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';

export const TEST_AUDIENCE = 'order-saga-api';

export interface TokenOptions {
  /** Seconds until expiry (negative: already expired). Default 300. */
  expiresIn?: number;
  audience?: string;
  issuer?: string;
  /** Signed by a key the provider never published. */
  foreignKey?: boolean;
  /** `HS256`: signed with a shared secret, an algorithm the ingress must refuse. */
  algorithm?: 'RS256' | 'HS256';
  claims?: JWTPayload;
}

export interface IdentityProvider {
  issuer: string;
  jwksUrl: string;
  /** The environment that makes the ingress trust this provider. */
  env: Record<string, string>;
  token(subject: string, roles?: string[], options?: TokenOptions): Promise<string>;
  close(): Promise<void>;
}

export async function startIdentityProvider(): Promise<IdentityProvider> {
  const signing = await generateKeyPair('RS256');
  const foreign = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(signing.publicKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
  const server: Server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const jwksUrl = `${issuer}/.well-known/jwks.json`;
  return {
    issuer,
    jwksUrl,
    env: { AUTH_JWKS_URL: jwksUrl, AUTH_JWT_ISSUER: issuer, AUTH_JWT_AUDIENCE: TEST_AUDIENCE },
    async token(subject, roles = [], options = {}) {
      const algorithm = options.algorithm ?? 'RS256';
      const key: CryptoKey | Uint8Array =
        algorithm === 'HS256'
          ? new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!')
          : options.foreignKey
            ? foreign.privateKey
            : signing.privateKey;
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ roles, ...options.claims })
        .setProtectedHeader({ alg: algorithm, kid: 'test-key-1' })
        .setSubject(subject)
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience ?? TEST_AUDIENCE)
        .setIssuedAt(now - 60)
        .setExpirationTime(now + (options.expiresIn ?? 300))
        .sign(key);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
