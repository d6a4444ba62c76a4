// Errors as the API answers them: application/problem+json (RFC 9457) saying what is wrong and
// what to do. Routes throw an HttpProblem; anything else thrown is mapped here, once.
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../lib/logger.js';
import { IdentityProviderUnavailable, Unauthenticated } from './callers.js';
import type { FieldProblem } from './order-request.js';
import { InvalidListFilter, SearchIndexRefused, SearchIndexUnavailable } from './order-list.js';
import { RateLimited } from './rate-limits.js';

/** An error that carries its HTTP status and problem details (RFC 9457). */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

/** 503 with Retry-After: a dependency did not answer; nothing was decided. */
export function serviceUnavailable(detail: string, retryAfterSeconds: string): HttpProblem {
  return new HttpProblem(503, 'Service Unavailable', detail, {}, { 'Retry-After': retryAfterSeconds });
}

export function orderNotFound(orderId: string): HttpProblem {
  return new HttpProblem(
    404,
    'Order not found',
    `no order ${orderId}; an order accepted moments ago may take a second to appear, so retry shortly`,
  );
}

export function invalidOrder(problems: FieldProblem[]): HttpProblem {
  return new HttpProblem(
    400,
    'Invalid order',
    `the order has ${problems.length} invalid field(s): ${problems.map((p) => p.field).join(', ')}; fix them and send it again`,
    { errors: problems },
  );
}

/** The last route: a path or method the API does not have. */
export function routeNotFound(): never {
  throw new HttpProblem(
    404,
    'Not Found',
    'no such route; the API has POST /orders, GET /orders, GET /orders/:orderId, POST /orders/:orderId/cancel, ' +
      'POST /orders/:orderId/approve, and for operators GET and PUT /inventory/:sku, POST /inventory/:sku/restock and ' +
      'POST /inventory/reservations/:orderId/release; the whole contract is at GET /openapi.json',
  );
}

/**
 * 405 for a path the API has, asked with a method it does not have (OPTIONS too: Express would
 * otherwise answer it 200 by itself, an answer the contract does not have). `methodsOf` names
 * the path's methods, from the route table of the contract (openapi.ts).
 */
export function methodNotAllowed(methodsOf: (path: string) => string[] | undefined) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const methods = methodsOf(req.path);
    if (!methods || methods.includes(req.method)) return next();
    throw new HttpProblem(
      405,
      'Method Not Allowed',
      `${req.path.slice(0, 200)} takes ${methods.join(', ')}, not ${req.method.slice(0, 20)}; the contract is at GET /openapi.json`,
      {},
      { Allow: methods.join(', ') },
    );
  };
}

/** The error handler: every error leaves as a problem document; unexpected ones are logged. */
export function problemResponder(logger: Logger, challenge: (tokenRefused: boolean) => string) {
  return (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return void res.end();
    const problem = toProblem(error, challenge);
    if (error instanceof IdentityProviderUnavailable) logger.warn({ err: error.cause }, 'JWKS unavailable');
    if (problem.status >= 500 && !(error instanceof HttpProblem))
      logger.error({ err: error, path: req.path }, 'request failed');
    res
      .status(problem.status)
      .set(problem.headers)
      .type('application/problem+json')
      .json({
        type: 'about:blank',
        title: problem.title,
        status: problem.status,
        detail: problem.detail,
        instance: req.originalUrl.slice(0, 200),
        ...problem.extra,
      });
  };
}

/** Maps any error to a problem; body-parser errors carry a status and a type. */
export function toProblem(error: unknown, challenge: (tokenRefused: boolean) => string): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof Unauthenticated) {
    return new HttpProblem(
      401,
      'Unauthorized',
      error.message,
      {},
      { 'WWW-Authenticate': challenge(error.credentialsRefused) },
    );
  }
  if (error instanceof IdentityProviderUnavailable) {
    return serviceUnavailable(`${error.message}; retry after 5 seconds`, '5');
  }
  if (error instanceof RateLimited) {
    return new HttpProblem(
      429,
      'Too Many Requests',
      error.message,
      {},
      { 'Retry-After': String(error.retryAfterSeconds) },
    );
  }
  if (error instanceof InvalidListFilter) {
    return new HttpProblem(
      400,
      'Invalid list filter',
      `${error.problems.map((p) => `${p.field} ${p.message}`).join('; ')}`,
      { errors: error.problems },
    );
  }
  if (error instanceof SearchIndexRefused) {
    return new HttpProblem(500, 'Listing refused', error.message);
  }
  if (error instanceof SearchIndexUnavailable) {
    return serviceUnavailable(`${error.message}; retry after 5 seconds`, '5');
  }
  const parserError = error as { status?: number; type?: string; message?: string; length?: number; limit?: number };
  switch (parserError.type) {
    case 'entity.too.large':
      return new HttpProblem(
        413,
        'Payload Too Large',
        `the request body is ${parserError.length ?? 'more than'} bytes, over the ${parserError.limit ?? 'configured'}-byte limit; ` +
          'a valid order is far smaller (at most 100 items, short text fields), so look for an oversized field',
      );
    case 'entity.parse.failed':
      return new HttpProblem(
        400,
        'Malformed JSON',
        'the request body is not valid JSON; check quotes, commas and brackets',
      );
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new HttpProblem(415, 'Unsupported encoding', 'send the body as UTF-8 JSON without content encoding');
    case 'request.aborted':
      return new HttpProblem(400, 'Request aborted', 'the client closed the connection before the body was complete');
  }
  if (parserError.status && parserError.status >= 400 && parserError.status < 500) {
    return new HttpProblem(parserError.status, 'Bad Request', parserError.message ?? 'the request could not be read');
  }
  return new HttpProblem(
    500,
    'Internal Server Error',
    'something went wrong on our side; the order may be retried with the same Idempotency-Key',
  );
}
