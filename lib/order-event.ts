// The OrderCreated event: what the ingress publishes on orders.created and the starter
// turns into a saga. Its data is the saga's Order; this schema is checked on both sides.
import { z } from 'zod';
import { isKnownCurrency } from '../domain/money.js';
import type { Order } from '../domain/order.js';

export const MAX_ITEMS = 100;
export const MAX_QUANTITY = 10_000;
export const MAX_UNIT_PRICE = 100_000_000; // one million in a two-digit currency
const identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\w.:@-]+$/, 'letters, digits and . _ : @ - only');

export const orderItemSchema = z.strictObject({
  sku: identifier,
  quantity: z.number().int('must be a whole number').min(1).max(MAX_QUANTITY),
  unitPrice: z.number().int('must be a whole number of minor units (cents)').min(0).max(MAX_UNIT_PRICE),
});

/** Data of an OrderCreated event. */
export const orderSchema = z.strictObject({
  orderId: z.uuid(),
  customerId: identifier,
  items: z.array(orderItemSchema).min(1).max(MAX_ITEMS),
  currency: z.string().refine(isKnownCurrency, 'must be an ISO 4217 currency code such as EUR or USD'),
  total: z.number().int().min(1), // an order with nothing to charge can only fail
  /** Sealed (lib/encryption.ts) when the ingress has encryption keys: longer than the token itself. */
  paymentToken: z.string().min(1).max(1024),
  email: z.email().max(254).optional(),
  createdAt: z.iso.datetime(),
  traceId: z.string().regex(/^[\da-f]{32}$/),
}) satisfies z.ZodType<Order>;
