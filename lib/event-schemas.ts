// The published event contracts: the schema of every event on ORDERS, AUDIT, NOTIFICATIONS and
// ORDERS_DLQ, for the teams that consume them (shipping, analytics, support). Written in zod, the
// same schemas the code checks (OrderCreated) or derives its types from (the audit and notice
// data); `npm run event-contracts` turns them into the JSON Schemas and the AsyncAPI document in
// docs/events/, and a test checks those files are current and that a real run's events match them.
import { z } from 'zod';
import { ORDER_STATUSES } from '../domain/order-status.js';
import { auditEventTypeFor, COMPENSATION_EVENT_TYPES, notificationEventType, ORDER_CREATED } from '../domain/events.js';
import { RESERVATION_RELEASED_EVENT_TYPE, STOCK_EVENT_TYPES, skuSchema } from './inventory-admin.js';
import { orderSchema } from './order-event.js';

const NOTIFICATION_KINDS = ['confirmation', 'failure', 'cancellation', 'rejection'] as const;

/** The envelope every event uses (public contract); `type` and `data` vary by event. */
function envelope(type: z.ZodType<string>, data: z.ZodType, description: string) {
  return z
    .strictObject({
      id: z.string().min(1).describe('unique and deterministic for the fact it records; also the Nats-Msg-Id header'),
      type,
      aggregate_id: z.string().min(1).describe('the order id (a SKU for stock events)'),
      data,
      timestamp: z.iso.datetime().describe('when the event was made (ISO 8601, UTC)'),
      trace_id: z
        .string()
        .regex(/^[\da-f]{32}$/)
        .describe('W3C trace id of the order; the traceparent header continues it'),
    })
    .describe(description);
}

const failure = z.strictObject({
  type: z.string().describe('e.g. PaymentDeclined, OutOfStock, ActivityFailed'),
  message: z.string(),
  step: z.string().optional().describe('the forward step that failed'),
});

const stockLevel = z.strictObject({
  sku: skuSchema,
  available: z.number().int().min(0),
  reserved: z.number().int().min(0),
});

export const statusChangedData = z.strictObject({
  status: z.enum(ORDER_STATUSES),
  failure: failure.optional().describe('why the saga is compensating (set from COMPENSATING on)'),
  cancellation: z
    .strictObject({ reason: z.string(), by: z.string().optional().describe('who cancelled, as authenticated') })
    .optional(),
  approvedBy: z.string().optional().describe('the operator who approved, as authenticated (once approved)'),
  resolution: z
    .strictObject({ note: z.string(), step: z.enum(['refund', 'release', 'notify']) })
    .optional()
    .describe("an operator's note when a failed compensation was resolved by hand"),
});

export type StatusChangedData = z.infer<typeof statusChangedData>;

export const notificationData = z.strictObject({
  kind: z.enum(NOTIFICATION_KINDS),
  customerId: z.string(),
  email: z.email().optional(),
  total: z.number().int().describe('minor units'),
  currency: z.string().length(3),
});
export type NotificationData = z.infer<typeof notificationData>;

/** One published event: where it goes, its type(s) and its schema. */
export interface EventContract {
  /** File name in docs/events/ (without .schema.json) and the AsyncAPI message name. */
  name: string;
  stream: 'ORDERS' | 'AUDIT' | 'NOTIFICATIONS';
  /** The subject, with `{eventType}` or `{kind}` where it varies. */
  subject: string;
  types: readonly string[];
  schema: z.ZodType;
  summary: string;
}

const orderStatusTypes = ORDER_STATUSES.map(auditEventTypeFor);
const notificationTypes = NOTIFICATION_KINDS.map(notificationEventType);
const oneOf = (types: readonly string[]) => z.enum(types as [string, ...string[]]);

export const EVENT_CONTRACTS: readonly EventContract[] = [
  {
    name: 'OrderCreated',
    stream: 'ORDERS',
    subject: 'orders.created',
    types: [ORDER_CREATED],
    summary: 'An order the ingress accepted (answered 202); the starter turns it into a saga.',
    schema: envelope(
      z.literal(ORDER_CREATED),
      orderSchema.describe('the order; paymentToken is sealed (sealed:v1:<key id>:…) when encryption keys are set'),
      'OrderCreated: the order as accepted; id order-created:<orderId>',
    ),
  },
  {
    name: 'OrderStatusChanged',
    stream: 'AUDIT',
    subject: 'audit.orders.{eventType}',
    types: orderStatusTypes,
    summary: 'The saga entered a status (one event per state change, exactly once); type Order<Status>.',
    schema: envelope(
      oneOf(orderStatusTypes),
      statusChangedData,
      'A saga state change; id <workflowId>:<runId>:<sequence>',
    ),
  },
  {
    name: 'CompensationDone',
    stream: 'AUDIT',
    subject: 'audit.orders.{eventType}',
    types: Object.values(COMPENSATION_EVENT_TYPES),
    summary: 'A compensation ran: the refund, the release of the stock, or the outcome notice.',
    schema: envelope(
      oneOf(Object.values(COMPENSATION_EVENT_TYPES)),
      z.union([
        z.strictObject({ step: z.literal('refund'), refunded: z.boolean(), refundId: z.string().optional() }),
        z.strictObject({ step: z.literal('release'), released: z.boolean() }),
        z.strictObject({ step: z.literal('notify'), notificationId: z.string(), notice: z.enum(NOTIFICATION_KINDS) }),
      ]),
      'A compensation that ran; id <workflowId>:<runId>:<sequence>',
    ),
  },
  {
    name: 'CompensationResolvedManually',
    stream: 'AUDIT',
    subject: 'audit.orders.CompensationResolvedManually',
    types: ['CompensationResolvedManually'],
    summary: 'An operator resolved a failed compensation by hand (resolveManually).',
    schema: envelope(
      z.literal('CompensationResolvedManually'),
      z.strictObject({ step: z.enum(['refund', 'release', 'notify']), note: z.string() }),
      'A compensation resolved by an operator; id <workflowId>:<runId>:<sequence>',
    ),
  },
  {
    name: 'StockChanged',
    stream: 'AUDIT',
    subject: 'audit.inventory.{eventType}',
    types: Object.values(STOCK_EVENT_TYPES),
    summary: "An operator set or added a SKU's available units.",
    schema: envelope(
      oneOf(Object.values(STOCK_EVENT_TYPES)),
      z.strictObject({
        sku: skuSchema,
        change: z.union([
          z.strictObject({ set: z.number().int().min(0) }),
          z.strictObject({ add: z.number().int().min(1) }),
        ]),
        before: stockLevel.nullable().describe('null for a new SKU'),
        after: stockLevel,
        by: z.string().describe('the operator, as authenticated'),
      }),
      'A stock change; id stock:<sku>:<uuid>; aggregate_id is the SKU',
    ),
  },
  {
    name: 'ReservationReleased',
    stream: 'AUDIT',
    subject: `audit.inventory.${RESERVATION_RELEASED_EVENT_TYPE}`,
    types: [RESERVATION_RELEASED_EVENT_TYPE],
    summary:
      "An operator gave back the stock reserved for an order whose saga no longer holds it (npm run reconcile's reserved-but-not-completed, reservation-without-order).",
    schema: envelope(
      z.literal(RESERVATION_RELEASED_EVENT_TYPE),
      z.strictObject({ orderId: z.string(), by: z.string().describe('the operator, as authenticated') }),
      'A reservation released by an operator; id reservation-released:<orderId>; aggregate_id is the order id',
    ),
  },
  {
    name: 'CustomerNotice',
    stream: 'NOTIFICATIONS',
    subject: 'notifications.{kind}',
    types: notificationTypes,
    summary: 'A notice to the customer about how the order ended (one per order and kind): for the email service.',
    schema: envelope(oneOf(notificationTypes), notificationData, 'A customer notice; id <orderId>:notification:<kind>'),
  },
];

/** The contract an event belongs to, by stream and type; undefined for an unknown type. */
export function contractOf(stream: string, type: string): EventContract | undefined {
  return EVENT_CONTRACTS.find((contract) => contract.stream === stream && contract.types.includes(type));
}

/** The headers of a dead-lettered event on ORDERS_DLQ (dlq.<original subject>); its body is the original message. */
export const DLQ_HEADERS = {
  reason: 'Dlq-Reason',
  stream: 'Dlq-Original-Stream',
  sequence: 'Dlq-Original-Sequence',
  subject: 'Dlq-Original-Subject',
  deliveries: 'Dlq-Deliveries',
} as const;

/** What each dead-letter header holds, for the published contract. */
export const DEAD_LETTER_HEADERS: Record<(typeof DLQ_HEADERS)[keyof typeof DLQ_HEADERS], string> = {
  [DLQ_HEADERS.reason]: 'why the event could not start a saga (poison, stale, or the delivery limit), with details',
  [DLQ_HEADERS.stream]: 'the stream it came from: ORDERS',
  [DLQ_HEADERS.sequence]: 'its sequence in that stream',
  [DLQ_HEADERS.subject]: 'its subject there: orders.created',
  [DLQ_HEADERS.deliveries]: 'how many times it was delivered before it was dead-lettered',
};
