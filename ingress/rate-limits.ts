// Request rate limits of the public API, per client address (before authentication, so guessing
// keys or tokens is slowed too) and per authenticated identity. Fixed one-minute windows, counted
// in each ingress process: with N replicas a client may reach N × the limit in the worst case
// (the load balancer spreads it), which the documented defaults allow for.
import type { Request, RequestHandler } from 'express';
import { rateLimit, type Options } from 'express-rate-limit';
import type { Caller } from './callers.js';

const WINDOW_MS = 60_000;

/** What a limiter throws when a client is over its limit: the app turns it into a 429 problem. */
export class RateLimited extends Error {
  constructor(
    readonly scope: 'address' | 'identity',
    readonly limit: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      `more than ${limit} requests in a minute from this ${scope === 'address' ? 'address' : 'caller'}; ` +
        `retry after ${retryAfterSeconds} seconds`,
    );
    this.name = 'RateLimited';
  }
}

function limiter(
  scope: RateLimited['scope'],
  limit: number,
  options: Partial<Options> = {},
): RequestHandler | undefined {
  if (limit === 0) return undefined;
  return rateLimit({
    windowMs: WINDOW_MS,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    requestPropertyName: `rateLimit_${scope}`,
    handler: (req, _res, next) => {
      const info = (req as unknown as Record<string, { resetTime?: Date }>)[`rateLimit_${scope}`];
      const untilReset = info?.resetTime ? info.resetTime.getTime() - Date.now() : WINDOW_MS;
      next(new RateLimited(scope, limit, Math.max(1, Math.ceil(untilReset / 1_000))));
    },
    ...options,
  });
}

/** Per client address (X-Forwarded-For only through the number of proxies TRUST_PROXY names). */
export function perAddressLimit(limit: number): RequestHandler | undefined {
  return limiter('address', limit);
}

/** Per authenticated caller; open mode has no identities, so it is limited per address only. */
export function perIdentityLimit(limit: number, callerOf: (req: Request) => Caller): RequestHandler | undefined {
  return limiter('identity', limit, {
    keyGenerator: (req) => callerOf(req).id,
    skip: (req) => callerOf(req).via === 'open',
  });
}
