// What a request carries besides an order body: path parameters, headers and small bodies,
// each checked once here, with a 400/415 problem naming what is wrong.
import type { NextFunction, Request, Response } from 'express';
import { DECISION_TEXT_LIMITS } from '../workflows/contract.js';
import { skuSchema, unitsSchema } from '../lib/inventory-admin.js';
import { HttpProblem } from './problems.js';

/** 1 to 255 visible ASCII characters: a UUID fits, a header injection does not. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
export const ORDER_ID = /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/i;
/** The id of a reservation: any id the inventory may hold (a stray one need not be a UUID). */
export const RESERVATION_ORDER_ID = /^[\w.:@-]{1,128}$/;

/** The Idempotency-Key header when sent; 400 when malformed. */
export function idempotencyKeyHeader(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key))
    throw new HttpProblem(
      400,
      'Invalid Idempotency-Key',
      'the Idempotency-Key header must be 1 to 255 visible ASCII characters, e.g. a UUID',
    );
  return key;
}

export function orderIdParam(req: Request): string {
  const orderId = String(req.params.orderId);
  if (!ORDER_ID.test(orderId))
    throw new HttpProblem(400, 'Invalid order id', 'an order id is a UUID, as returned by POST /orders');
  return orderId.toLowerCase();
}

export function reservationOrderIdParam(req: Request): string {
  const orderId = String(req.params.orderId);
  if (!RESERVATION_ORDER_ID.test(orderId))
    throw new HttpProblem(400, 'Invalid order id', 'an order id is 1 to 128 letters, digits and . _ : @ - characters');
  return orderId;
}

export function skuParam(req: Request): string {
  const parsed = skuSchema.safeParse(req.params.sku);
  if (!parsed.success) {
    throw new HttpProblem(400, 'Invalid SKU', 'a SKU is 1 to 128 letters, digits and . _ : @ - characters');
  }
  return parsed.data;
}

/** The whole-number field of a stock body, e.g. {"available": 40}; 400 naming the field otherwise. */
export function unitsField(body: unknown, field: string, minimum: 0 | 1): number {
  const value =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)[field]
      : undefined;
  const parsed = unitsSchema(minimum).safeParse(value);
  if (!parsed.success) {
    const message = value === undefined ? 'is required' : parsed.error.issues[0]!.message;
    throw new HttpProblem(
      400,
      'Invalid stock change',
      `"${field}" ${message}; send e.g. {"${field}": ${minimum === 0 ? 40 : 10}}`,
      { errors: [{ field, message }] },
    );
  }
  return parsed.data;
}

/** An optional string field of a decision's body (a reason, a claimed approver), within the saga's bound. */
export function optionalText(body: unknown, field: string): string | undefined {
  if (body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body) && !(field in body)))
    return undefined;
  const value = typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[field] : undefined;
  // The saga's own bound for a reason; a claimed approver stays within its actor bound with its prefix.
  const limit = DECISION_TEXT_LIMITS.reason;
  if (typeof value !== 'string' || value.length > limit) {
    throw new HttpProblem(
      400,
      'Invalid request body',
      `expected a JSON object with an optional "${field}" string of at most ${limit} characters`,
      { errors: [{ field, message: `must be a string of at most ${limit} characters` }] },
    );
  }
  return value;
}

function hasBody(req: Request): boolean {
  return Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
}

/** A JSON body is required (POST /orders, stock changes). */
export function requireJson(req: Request, _res: Response, next: NextFunction): void {
  if (!hasBody(req)) {
    throw new HttpProblem(400, 'Empty body', 'the request has no body; send the order as a JSON object');
  }
  if (!req.is('application/json')) {
    throw new HttpProblem(
      415,
      'Unsupported Media Type',
      `send the order as JSON with "Content-Type: application/json" (got ${req.get('content-type') ?? 'no content type'})`,
    );
  }
  next();
}

/** A body is optional (decisions); when sent, it is JSON. */
export function requireJsonIfBody(req: Request, _res: Response, next: NextFunction): void {
  if (hasBody(req) && !req.is('application/json')) {
    throw new HttpProblem(
      415,
      'Unsupported Media Type',
      'send a JSON body with "Content-Type: application/json", or no body at all',
    );
  }
  next();
}
