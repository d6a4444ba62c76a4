// The body of POST /orders as clients send it, validated strictly: unknown fields, totals
// and statuses are rejected, never trusted; the server computes the total.
import { z } from 'zod';
import { isKnownCurrency } from '../domain/money.js';
import { MAX_ITEMS, orderItemSchema } from '../lib/order-event.js';
import { orderTotal } from '../domain/order.js';

const SERVER_OWNED = new Set(['total', 'status', 'orderId', 'workflowId', 'createdAt', 'traceId']);

export const orderRequestSchema = z
  .strictObject({
    customerId: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\w.:@-]+$/, 'letters, digits and . _ : @ - only'),
    items: z
      .array(orderItemSchema)
      .min(1, 'at least one item is required')
      .max(MAX_ITEMS, `at most ${MAX_ITEMS} items per order`),
    currency: z.string().refine(isKnownCurrency, 'must be an ISO 4217 currency code such as EUR or USD'),
    paymentToken: z.string().min(1).max(256),
    email: z.email('must be an email address').max(254).optional(),
  })
  // Free lines are fine, a free order is not: the gateway cannot charge 0, so it could only fail.
  .refine((order) => orderTotal(order.items) > 0, {
    path: ['items'],
    message: 'the order total is 0; an order may have free lines, but at least one must have a price above 0',
  });

export type OrderRequest = z.infer<typeof orderRequestSchema>;

/** One field-level problem: `field` is a path such as items[0].quantity. */
export interface FieldProblem {
  field: string;
  message: string;
}

function pathOf(path: PropertyKey[]): string {
  return path.reduce<string>(
    (text, part) => (typeof part === 'number' ? `${text}[${part}]` : text ? `${text}.${String(part)}` : String(part)),
    '',
  );
}

/** Validates a parsed JSON body; returns the request, or every problem with its field. */
export function parseOrderRequest(
  body: unknown,
): { ok: true; value: OrderRequest } | { ok: false; problems: FieldProblem[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, problems: [{ field: '(body)', message: 'must be a JSON object' }] };
  }
  const result = orderRequestSchema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  const problems: FieldProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const field = pathOf([...issue.path, key]);
        problems.push({
          field,
          message:
            SERVER_OWNED.has(key) && issue.path.length === 0
              ? `${key} is set by the server; do not send it`
              : 'unknown field; remove it',
        });
      }
    } else {
      problems.push({ field: pathOf(issue.path) || '(body)', message: issue.message });
    }
  }
  return { ok: false, problems };
}

/** The request in a canonical form (fixed key order), for fingerprinting. */
export function canonicalRequest(request: OrderRequest): string {
  return JSON.stringify({
    customerId: request.customerId,
    items: request.items.map(({ sku, quantity, unitPrice }) => ({ sku, quantity, unitPrice })),
    currency: request.currency,
    paymentToken: request.paymentToken,
    email: request.email ?? null,
  });
}
