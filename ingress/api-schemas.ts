// What the HTTP API answers, as zod schemas: the one description of every response body. The
// routes type what they send with these (z.infer), docs/openapi.json is made from them
// (openapi.ts), and the tests check every answer they receive against that document. The request
// schemas stay where requests are parsed (order-request.ts, order-list.ts, request-params.ts).
import { z } from 'zod';
import { MAX_ITEMS, orderItemSchema } from '../lib/order-event.js';
import { skuSchema, unitsSchema } from '../lib/inventory-admin.js';
import type { StockLevelView } from '../lib/inventory-admin.js';
import {
  DECISION_TEXT_LIMITS,
  ORDER_STATUSES,
  type DecisionAccepted,
  type OrderStatusDocument,
} from '../workflows/contract.js';
import type { OrderPage, OrderSummary } from './order-list.js';
import type { OrderView } from './order-sagas.js';

const time = z.iso.datetime();
const path = (what: string) => z.string().describe(`${what}, a path on this API`);

export const orderStatusSchema = z.enum(ORDER_STATUSES).describe("The order's status (its saga's)");

/** 202 to POST /orders: the order is stored and its saga will start. */
export const orderAcceptedSchema = z.object({
  orderId: z.uuid(),
  workflowId: z.string().describe("The id of the order's saga in Temporal"),
  status: z.literal('RECEIVED'),
  links: z.object({ self: path('The order'), cancel: path('Cancel it'), approve: path('Approve it') }),
});

const compensationSchema = z.object({
  step: z.enum(['refund', 'release', 'notify']),
  status: z.enum(['PENDING', 'DONE', 'FAILED', 'RESOLVED_MANUALLY']),
  error: z.string().optional(),
});

/** The saga's status document (workflows/contract.ts: what getStatus answers); the payment token is never in it. */
export const orderStatusDocumentSchema = z.object({
  orderId: z.string(),
  workflowId: z.string(),
  status: orderStatusSchema,
  customerId: z.string(),
  currency: z.string(),
  total: z.number().int().describe('In minor units (cents)'),
  items: z.array(orderItemSchema).max(MAX_ITEMS),
  approval: z.object({ required: z.boolean(), approvedBy: z.string().optional() }),
  reservationId: z.string().optional(),
  chargeId: z.string().optional(),
  failure: z.object({ type: z.string(), message: z.string(), step: z.string().optional() }).optional(),
  cancellation: z
    .object({
      reason: z.string(),
      by: z.string().optional().describe('Who cancelled, as the ingress authenticated them'),
    })
    .optional(),
  compensations: z.array(compensationSchema),
  resolution: z
    .object({ note: z.string(), step: compensationSchema.shape.step })
    .optional()
    .describe("The operator's note when a failed compensation was resolved by hand"),
  history: z.array(z.object({ status: orderStatusSchema, at: time })),
  updatedAt: time,
});

/**
 * 200 to GET /orders/{orderId}. `source`: `saga` (the running saga answered), `result` (the closed
 * saga's stored result), or `recorded` (the saga could not answer in time, or ended without a
 * result: the status and customer Temporal recorded at its last change).
 */
export const orderViewSchema = z.discriminatedUnion('source', [
  orderStatusDocumentSchema.extend({ source: z.enum(['saga', 'result']) }),
  z.object({
    source: z.literal('recorded'),
    orderId: z.string(),
    workflowId: z.string(),
    status: z.string().optional().describe('The OrderStatus search attribute as Temporal recorded it'),
    customerId: z.string().optional(),
    workflowStatus: z.string().describe("The saga's state in Temporal, e.g. RUNNING"),
    detail: z.string(),
  }),
]);

/** 202 to a cancel or an approval: the saga took the decision. */
export const decisionAcceptedSchema = z.object({
  orderId: z.string(),
  update: z.enum(['cancelOrder', 'approveOrder']),
  accepted: z.literal(true),
  status: orderStatusSchema.describe("The order's status once the saga took the decision"),
  links: z.object({ self: path('The order') }),
});

export const orderSummarySchema = z.object({
  orderId: z.string(),
  status: orderStatusSchema.optional(),
  customerId: z.string().optional(),
  total: z.number().describe('In minor units (cents); absent for an order placed before listings existed').optional(),
  currency: z.string().optional(),
  createdAt: time,
  updatedAt: time.describe('When the status last changed'),
  sagaStatus: z.string().describe("The saga's own state in Temporal: RUNNING until it ends"),
  links: z.object({ self: path('The order') }),
});

/** 200 to GET /orders: one page, newest first. */
export const orderPageSchema = z.object({
  orders: z.array(orderSummarySchema),
  nextCursor: z
    .string()
    .optional()
    .describe('Present when there may be more: send it as `cursor` with the same filters'),
  source: z.literal('search-index'),
  consistency: z.string(),
  links: z.object({ next: path('The next page, with the same filters') }).optional(),
});

export const stockLevelSchema = z.object({
  sku: skuSchema,
  available: z.number().int(),
  reserved: z.number().int(),
});

/** 200 to PUT /inventory/{sku} and POST /inventory/{sku}/restock. */
export const stockChangeSchema = z.object({
  level: stockLevelSchema.describe('The level right after the change'),
  before: stockLevelSchema.optional().describe('The level before it; absent for a new SKU'),
  applied: z.union([z.object({ set: z.number().int() }), z.object({ add: z.number().int() })]),
  replayed: z.boolean().describe('True: an earlier request with the same Idempotency-Key made this change'),
});

/** 200 to POST /inventory/reservations/{orderId}/release. */
export const reservationReleaseSchema = z.object({
  orderId: z.string(),
  released: z.boolean(),
  detail: z.string().optional(),
});

export const healthSchema = z.object({ status: z.literal('ok') });

/** GET /ready: 200 when NATS and Temporal answer, 503 otherwise. */
export const readinessSchema = z.object({
  ready: z.boolean(),
  warning: z.string().optional().describe('Present when authentication is off'),
});

export const fieldProblemSchema = z.object({
  field: z.string().describe('A path such as items[0].quantity, or a query parameter'),
  message: z.string(),
});

/** Every error: application/problem+json (RFC 9457). */
export const problemSchema = z.object({
  type: z.literal('about:blank'),
  title: z.string(),
  status: z.number().int().min(400).max(599),
  detail: z.string(),
  instance: z.string().optional().describe("The request's path and query (absent while the ingress starts)"),
  errors: z.array(fieldProblemSchema).optional().describe('Each invalid field or parameter'),
  orderStatus: orderStatusSchema.optional().describe("A refused decision or release: the order's status"),
});

/** The bodies of a cancel and an approval: optional, and each field optional (request-params.ts checks them). */
const decisionText = (what: string) => z.string().max(DECISION_TEXT_LIMITS.reason).optional().describe(what);
export const cancelBodySchema = z.looseObject({ reason: decisionText('Why; kept in the audit trail') });
export const approveBodySchema = z.looseObject({
  approvedBy: decisionText('Ignored when the caller is authenticated: the approver is who the credentials name'),
});

/** The bodies of stock changes (request-params.ts's unitsField checks them with the same units schema). */
export const setStockBodySchema = z.looseObject({
  available: unitsSchema(0).describe('The units available from now on (reserved units are not changed)'),
});
export const restockBodySchema = z.looseObject({ units: unitsSchema(1).describe('Units to add to those available') });

export type OrderAccepted = z.infer<typeof orderAcceptedSchema>;
export type OrderViewBody = z.infer<typeof orderViewSchema>;
export type DecisionAcceptedBody = z.infer<typeof decisionAcceptedSchema>;
export type OrderPageBody = z.infer<typeof orderPageSchema>;
export type StockLevel = z.infer<typeof stockLevelSchema>;
export type StockChange = z.infer<typeof stockChangeSchema>;
export type ReservationRelease = z.infer<typeof reservationReleaseSchema>;
export type Health = z.infer<typeof healthSchema>;
export type Readiness = z.infer<typeof readinessSchema>;
export type Problem = z.infer<typeof problemSchema>;

// The types other modules declare for what becomes a body must be these schemas' types exactly
// (as JSON has them: a key whose value may be undefined may be absent): a field added to either
// side without the other fails the typecheck here.
type Json<T> = T extends (infer U)[]
  ? Json<U>[]
  : T extends object
    ? Flat<
        { [K in keyof T as undefined extends T[K] ? never : K]: Json<T[K]> } & {
          [K in keyof T as undefined extends T[K] ? K : never]?: Json<Exclude<T[K], undefined>>;
        }
      >
    : T;
type Flat<T> = { [K in keyof T]: T[K] };
type Same<A, B> = (<T>() => T extends Json<A> ? 1 : 2) extends <T>() => T extends Json<B> ? 1 : 2 ? true : false;
const same = <A, B>(check: Same<A, B>) => check;
same<z.infer<typeof orderStatusDocumentSchema>, OrderStatusDocument>(true);
same<z.infer<typeof orderSummarySchema>, OrderSummary>(true);
same<Omit<OrderPageBody, 'links'>, OrderPage>(true);
same<StockLevel, StockLevelView>(true);
same<OrderViewBody, OrderView>(true);
same<Omit<DecisionAcceptedBody, 'orderId' | 'update' | 'links'>, DecisionAccepted>(true);
