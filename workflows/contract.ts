// The saga's Temporal surface: workflow type and id, input, statuses, signals, updates, query
// and search attributes. Deterministic definitions only, so workflow code, the starter, the
// ingress and operators' tools all share this one file. The order's own definitions (order,
// money, failure and event names) live in domain/.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CompensationStep } from '../domain/events.js';
import type { Order, OrderItem } from '../domain/order.js';
import type { SagaSettings } from '../domain/saga-settings.js';
import { ORDER_STATUSES, type OrderStatus } from '../domain/order-status.js';

/** Workflow type name registered by the worker (contract). */
export const ORDER_SAGA_WORKFLOW_TYPE = 'orderSaga';

/** Prefix of every saga's workflow id (contract). */
export const ORDER_WORKFLOW_ID_PREFIX = 'order-';

/** Memo field holding the order's trace id, so operators can go from the Web UI to the trace. */
export const TRACE_ID_MEMO_KEY = 'traceId';

/** Workflow id of an order's saga (contract): one per order, ever. */
export function orderWorkflowId(orderId: string): string {
  return `${ORDER_WORKFLOW_ID_PREFIX}${orderId}`;
}

export { ORDER_STATUSES, type OrderStatus };

/** Statuses in which the workflow has ended. */
export const TERMINAL_STATUSES: readonly OrderStatus[] = ['COMPLETED', 'COMPENSATED', 'CANCELLED', 'REJECTED'];

/**
 * Statuses in which cancelOrder still applies: until the confirmation is being sent. Once the saga
 * is NOTIFYING the order stands (a cancel then is refused with the status); sagas started before
 * this rule still take a cancel while NOTIFYING (DECISIONS_HOLD in order-saga/activities.ts).
 */
export const CANCELLABLE_STATUSES: readonly OrderStatus[] = [
  'RECEIVED',
  'AWAITING_APPROVAL',
  'RESERVING_INVENTORY',
  'CHARGING_PAYMENT',
];

/** Input of orderSaga. */
export interface OrderSagaInput {
  order: Order;
  settings: SagaSettings;
}

/** One compensation as the status document shows it. */
export interface CompensationRecord {
  step: CompensationStep;
  status: 'PENDING' | 'DONE' | 'FAILED' | 'RESOLVED_MANUALLY';
  error?: string;
}

/** What getStatus and GET /orders/:orderId return (contract). The payment token is never included. */
export interface OrderStatusDocument {
  orderId: string;
  workflowId: string;
  status: OrderStatus;
  customerId: string;
  currency: string;
  total: number;
  items: OrderItem[];
  approval: { required: boolean; approvedBy?: string };
  reservationId?: string;
  chargeId?: string;
  failure?: { type: string; message: string; step?: string };
  /** `by`: who cancelled, as the ingress authenticated them (absent for a signal sent without it). */
  cancellation?: { reason: string; by?: string };
  compensations: CompensationRecord[];
  /** The operator's note when a failed compensation was resolved by hand. */
  resolution?: { note: string; step: CompensationStep };
  history: { status: OrderStatus; at: string }[];
  updatedAt: string;
}

/**
 * The longest text each decision field takes (characters). Longer input is refused where it
 * arrives: the text is carried by the status document, every later audit event and the notice.
 * `actor`: approvedBy and cancelledBy.
 */
export const DECISION_TEXT_LIMITS = { reason: 500, note: 2_000, actor: 512 } as const;

/**
 * Signal inputs are plain JSON objects so `temporal` and `tctl` can send them. Fields may be
 * missing; a field of the wrong type or over its limit (DECISION_TEXT_LIMITS) makes the saga drop
 * the signal (logged, counted in `saga_signals_dropped`) or refuse the update.
 */
export interface CancelOrderInput {
  reason?: string;
  /** Who asks: the ingress sets the authenticated caller; an operator's signal may name itself. */
  cancelledBy?: string;
}
export interface ApproveOrderInput {
  approvedBy?: string;
}
export interface ResolveManuallyInput {
  note?: string;
}

export const cancelOrderSignal = defineSignal<[CancelOrderInput?]>('cancelOrder');
export const approveOrderSignal = defineSignal<[ApproveOrderInput?]>('approveOrder');

/** What a cancelOrder or approveOrder update answers when the saga took it. */
export interface DecisionAccepted {
  accepted: true;
  status: OrderStatus;
}

/**
 * Updates with the signals' names and inputs, for callers that need the saga's answer (the HTTP
 * routes): accepted, or refused by the validator with an `UpdateRefused` failure naming the status.
 */
export const cancelOrderUpdate = defineUpdate<DecisionAccepted, [CancelOrderInput]>('cancelOrder');
export const approveOrderUpdate = defineUpdate<DecisionAccepted, [ApproveOrderInput]>('approveOrder');
/**
 * The update id of a decision on an order: one per order and decision, so a caller's retry (an
 * HTTP client, the ingress resending after Temporal lost the update) is the same update, which
 * Temporal answers with the first one's outcome instead of deciding again.
 */
export function decisionUpdateId(update: 'cancelOrder' | 'approveOrder', orderId: string): string {
  return `${update}:${orderId}`;
}

export const retryCompensationSignal = defineSignal<[Record<string, never>?]>('retryCompensation');
export const resolveManuallySignal = defineSignal<[ResolveManuallyInput?]>('resolveManually');
export const getStatusQuery = defineQuery<OrderStatusDocument>('getStatus');

/** Search attributes (contract), registered by the local stack and the deployment. */
export const OrderStatusKey = defineSearchAttributeKey('OrderStatus', SearchAttributeType.KEYWORD);
export const CustomerIdKey = defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD);
export const OrderTotalKey = defineSearchAttributeKey('OrderTotal', SearchAttributeType.DOUBLE);
/** When the order's status last changed (set at start to when it was placed): listing by "stuck since". */
export const OrderUpdatedAtKey = defineSearchAttributeKey('OrderUpdatedAt', SearchAttributeType.DATETIME);

/** The memo key under which the starter records what listings show of an order and visibility does not hold. */
export const ORDER_SUMMARY_MEMO_KEY = 'order';
export interface OrderSummaryMemo {
  /** Minor units, as in the order. */
  total: number;
  currency: string;
  /** When the ingress accepted the order (its saga may start later, when orders wait in ORDERS). */
  createdAt: string;
}

/**
 * The id of a saga's n-th audit event (its Nats-Msg-Id): `<workflowId>:<runId>:<n>`. Deterministic
 * within a run, so a retried publish is stored once; the run id keeps a run started by
 * `temporal workflow reset` from reusing the ids of the run it was reset from.
 */
export function auditEventId(workflowId: string, runId: string, sequence: number): string {
  return `${workflowId}:${runId}:${sequence}`;
}
