// Who is calling, and what they may do. A caller is authenticated by a bearer JWT (checked against
// the identity provider's JWKS: signature, issuer, audience, expiry, pinned algorithms) or by a
// static API key (X-Api-Key; only its SHA-256 is configured). Three roles:
//   customer  (a JWT without a role): orders as itself (its customer id is the token's `sub`),
//             reads and cancels its own orders only;
//   service   (an API key or a JWT with the role): a trusted backend, e.g. the storefront, that
//             orders for any customer and reads and cancels any order;
//   operator  (an API key or a JWT with the role): all of that, and approves orders.
// With authentication off (a local stack only) every caller is an operator named "anonymous".
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../lib/config.js';

export type Role = 'customer' | 'service' | 'operator';

export interface Caller {
  /** The name that goes into audit events: the token's subject, `api-key:<name>`, or `anonymous`. */
  id: string;
  role: Role;
  /** A customer's own id (the token's subject); undefined for services and operators. */
  customerId?: string;
  /** How the caller proved who it is. */
  via: 'jwt' | 'api-key' | 'open';
}

/** No usable credentials: 401 with a WWW-Authenticate challenge. */
export class Unauthenticated extends Error {
  constructor(
    message: string,
    /** True when credentials were sent and refused (RFC 6750 `invalid_token`), false when none were sent. */
    readonly credentialsRefused: boolean,
  ) {
    super(message);
    this.name = 'Unauthenticated';
  }
}

/** The identity provider could not be asked (JWKS unreachable or too slow): 503, the token may be fine. */
export class IdentityProviderUnavailable extends Error {
  constructor(cause: unknown) {
    super('the identity provider did not answer; the token could not be checked', { cause });
    this.name = 'IdentityProviderUnavailable';
  }
}

export const API_KEY_HEADER = 'x-api-key';

/** The JOSE errors that mean "this token is not acceptable", as opposed to "the keys could not be fetched". */
const REFUSED_TOKEN_ERRORS = [
  joseErrors.JWTExpired,
  joseErrors.JWTClaimValidationFailed,
  joseErrors.JWTInvalid,
  joseErrors.JWSInvalid,
  joseErrors.JWSSignatureVerificationFailed,
  joseErrors.JOSEAlgNotAllowed,
  joseErrors.JOSENotSupported,
  joseErrors.JWKSNoMatchingKey,
  joseErrors.JWKSMultipleMatchingKeys,
];

export class Authenticator {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private readonly keys: { name: string; role: Role; digest: Buffer }[];

  constructor(private readonly auth: Config['auth']) {
    this.jwks = auth.jwt
      ? createRemoteJWKSet(new URL(auth.jwt.jwksUrl), { timeoutDuration: 3_000, cooldownDuration: 30_000 })
      : undefined;
    this.keys = auth.apiKeys.map(({ name, role, sha256 }) => ({ name, role, digest: Buffer.from(sha256, 'hex') }));
  }

  get open(): boolean {
    return this.auth.disabled;
  }

  /** The WWW-Authenticate value of a 401: the accepted schemes, and whether a token was refused (RFC 6750). */
  challenge(tokenRefused: boolean): string {
    const schemes = [];
    if (this.jwks) schemes.push(`Bearer realm="order-saga"${tokenRefused ? ', error="invalid_token"' : ''}`);
    if (this.keys.length > 0) schemes.push('ApiKey realm="order-saga", header="X-Api-Key"');
    return schemes.join(', ');
  }

  /** The caller behind a request's headers; throws Unauthenticated or IdentityProviderUnavailable. */
  async authenticate(header: (name: string) => string | undefined): Promise<Caller> {
    if (this.auth.disabled) return { id: 'anonymous', role: 'operator', via: 'open' };
    const apiKey = header(API_KEY_HEADER);
    if (apiKey !== undefined) return this.byApiKey(apiKey);
    const authorization = header('authorization');
    if (authorization === undefined) {
      throw new Unauthenticated(`this API needs credentials: ${this.howToAuthenticate()}`, false);
    }
    const bearer = /^Bearer +([\w.~+/-]+=*)$/i.exec(authorization.trim());
    if (!bearer || !this.jwks) {
      throw new Unauthenticated(`the Authorization header is not accepted here: ${this.howToAuthenticate()}`, true);
    }
    return this.byToken(bearer[1]!);
  }

  private howToAuthenticate(): string {
    const ways = [];
    if (this.jwks) ways.push('send "Authorization: Bearer <token>" with a token from your identity provider');
    if (this.keys.length > 0) ways.push('send "X-Api-Key: <key>" with the key you were issued');
    return ways.join(', or ');
  }

  private byApiKey(key: string): Caller {
    const digest = createHash('sha256').update(key, 'utf8').digest();
    // Every configured key is compared, in constant time, so timing tells nothing about which one matched.
    let found: { name: string; role: Role } | undefined;
    for (const candidate of this.keys) if (timingSafeEqual(candidate.digest, digest)) found = candidate;
    if (!found) throw new Unauthenticated('the X-Api-Key is not a valid key; check it, or ask for a new one', true);
    return { id: `api-key:${found.name}`, role: found.role, via: 'api-key' };
  }

  private async byToken(token: string): Promise<Caller> {
    const jwt = this.auth.jwt!;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.jwks!, {
        issuer: jwt.issuer,
        audience: jwt.audience,
        algorithms: jwt.algorithms,
        requiredClaims: ['sub', 'exp'],
        clockTolerance: 30,
      }));
    } catch (error) {
      if (REFUSED_TOKEN_ERRORS.some((type) => error instanceof type)) {
        throw new Unauthenticated(`the bearer token was refused: ${(error as Error).message}`, true);
      }
      throw new IdentityProviderUnavailable(error);
    }
    const subject = claims.sub!;
    const roles = rolesOf(claims[jwt.rolesClaim]);
    if (roles.includes('operator')) return { id: subject, role: 'operator', via: 'jwt' };
    if (roles.includes('service')) return { id: subject, role: 'service', via: 'jwt' };
    return { id: subject, role: 'customer', customerId: subject, via: 'jwt' };
  }
}

/** A roles claim as an array of strings or a space-separated string (OAuth `scope` style). */
function rolesOf(claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(' ').filter(Boolean);
  if (Array.isArray(claim)) return claim.filter((role): role is string => typeof role === 'string');
  return [];
}
