// The saga's activities, built by a factory that takes their clients: the worker passes
// real ones, tests may pass their own. Domain errors become Temporal failures here:
// business outcomes are non-retryable, infrastructure trouble is retried by the workflow.
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { JetStreamClient } from '@nats-io/jetstream';
import { publishEnvelope, type EventEnvelope } from '../lib/envelope.js';
import { SUBJECTS } from '../lib/nats.js';
import { Keyring, PAYMENT_TOKEN_PURPOSE } from '../lib/encryption.js';
import type { NotificationData } from '../lib/event-schemas.js';
import type { SagaMetrics } from '../lib/metrics.js';
import { auditEventTypeFor, notificationEventType, type NotificationKind } from '../domain/events.js';
import { BusinessFailure, FailureType } from '../domain/failures.js';
import type { OrderItem } from '../domain/order.js';
import { OutOfStockError, ReservationReleasedError, type InventoryStore } from './inventory/inventory-store.js';
import {
  CircuitOpenError,
  GatewayRequestError,
  PaymentDeclinedError,
  PaymentInProgressError,
  type PaymentGatewayClient,
} from './payment/gateway-client.js';

export interface ActivityClients {
  inventory: InventoryStore;
  payments: PaymentGatewayClient;
  js: JetStreamClient;
  metrics?: SagaMetrics;
  /** Opens the sealed payment token of an order (see lib/encryption.ts); none: tokens must be in clear. */
  keyring?: Keyring;
}

/** Audit event types that close a saga (or park it for an operator), for saga_outcomes_total. */
const OUTCOME_EVENTS = new Map(
  (['COMPLETED', 'COMPENSATED', 'CANCELLED', 'REJECTED', 'COMPENSATION_FAILED'] as const).map((status) => [
    auditEventTypeFor(status),
    status,
  ]),
);

export interface AuditEventInput {
  /** workflowId:sequence, so a retried publish is stored once. */
  eventId: string;
  type: string;
  orderId: string;
  traceId: string;
  data: Record<string, unknown>;
}

/**
 * The audit events a forward step carries: the saga entered these statuses (committed in its
 * history before the step was scheduled), and the step stores them on AUDIT before it acts, so one
 * activity does both. `audited` in the step's result says whether they were all stored; when not
 * (NATS unreachable for a moment), the saga stores them through publishAuditEvents before going on.
 */
export type WithAudit<T> = T & { audited?: boolean };

export interface NotificationInput {
  orderId: string;
  kind: NotificationKind;
  customerId: string;
  email?: string;
  total: number;
  currency: string;
  traceId: string;
}

export function createActivities({ inventory, payments, js, metrics, keyring = new Keyring([]) }: ActivityClients) {
  /** Times one step attempt into saga_step_duration_seconds. */
  async function timed<T>(step: string, work: () => Promise<T>): Promise<T> {
    const stop = metrics?.stepDuration.startTimer({ step });
    try {
      const result = await work();
      stop?.({ outcome: 'success' });
      return result;
    } catch (error) {
      stop?.({ outcome: error instanceof ApplicationFailure && error.nonRetryable ? 'business_failure' : 'error' });
      throw error;
    }
  }

  /** Stores one audit event; the message id makes repeats harmless. */
  async function publishAuditEvent(event: AuditEventInput, timeoutMs?: number): Promise<void> {
    const envelope = {
      id: event.eventId,
      type: event.type,
      aggregate_id: event.orderId,
      data: event.data,
      timestamp: new Date().toISOString(),
      trace_id: event.traceId,
    };
    const ack = await publishEnvelope(js, SUBJECTS.audit(event.type), envelope, undefined, timeoutMs);
    const outcome = OUTCOME_EVENTS.get(event.type);
    if (outcome && !ack.duplicate) metrics?.outcomes.inc({ status: outcome });
  }

  /**
   * Stores a step's audit events, in order, before the step acts; false when one could not be
   * stored within a quarter of the step's time (the saga then stores them itself, see WithAudit),
   * so an unreachable NATS neither fails the step nor makes it time out.
   */
  async function auditFirst(audit: AuditEventInput[] | undefined): Promise<{ audited?: boolean }> {
    if (!audit || audit.length === 0) return {};
    const timeoutMs = Math.max(200, Math.floor(Context.current().info.startToCloseTimeoutMs / 4));
    try {
      for (const event of audit) await publishAuditEvent(event, timeoutMs);
      return { audited: true };
    } catch (error) {
      Context.current().log.warn('audit events not stored with the step; the saga stores them next', {
        error: error instanceof Error ? error.message : String(error),
      });
      return { audited: false };
    }
  }

  return {
    /** Reserves every item of the order or none; idempotent per order. */
    async reserveInventory(
      {
        orderId,
        items,
      }: {
        orderId: string;
        items: OrderItem[];
      },
      audit?: AuditEventInput[],
    ): Promise<WithAudit<{ reservationId: string }>> {
      const audited = await auditFirst(audit);
      return timed('reserveInventory', async () => {
        try {
          const { reservationId } = await inventory.reserve(orderId, items);
          return { reservationId, ...audited };
        } catch (error) {
          if (error instanceof OutOfStockError) {
            throw ApplicationFailure.create({
              type: BusinessFailure.outOfStock,
              message: error.message,
              nonRetryable: true,
              details: [{ sku: error.sku }],
            });
          }
          if (error instanceof ReservationReleasedError) {
            throw ApplicationFailure.create({
              type: BusinessFailure.invalidOrder,
              message: error.message,
              nonRetryable: true,
            });
          }
          throw error;
        }
      });
    },

    /** Returns the order's reserved stock; safe to repeat. */
    async releaseInventory({ orderId }: { orderId: string }): Promise<{ released: boolean }> {
      return timed('releaseInventory', async () => ({ released: await inventory.release(orderId) }));
    },

    /** Charges the order at most once (idempotency key from the order id); the only place the token is opened. */
    async chargePayment(
      request: {
        orderId: string;
        amount: number;
        currency: string;
        paymentToken: string;
      },
      audit?: AuditEventInput[],
    ): Promise<WithAudit<{ chargeId: string }>> {
      const audited = await auditFirst(audit);
      return timed('chargePayment', async () => {
        try {
          const { chargeId } = await payments.charge({
            ...request,
            paymentToken: keyring.open(request.paymentToken, PAYMENT_TOKEN_PURPOSE),
          });
          return { chargeId, ...audited };
        } catch (error) {
          if (error instanceof PaymentDeclinedError) {
            throw ApplicationFailure.create({
              type: BusinessFailure.paymentDeclined,
              message: `${error.code}: ${error.message}`,
              nonRetryable: true,
            });
          }
          throw asRetryableGatewayFailure(error);
        }
      });
    },

    /** Refunds what the order was charged; a no-op when nothing was. */
    async refundPayment({
      orderId,
      amount,
      currency,
    }: {
      orderId: string;
      amount: number;
      currency: string;
    }): Promise<{ refunded: boolean }> {
      return timed('refundPayment', async () => {
        try {
          const { refunded } = await payments.refund(orderId, amount, currency);
          return { refunded };
        } catch (error) {
          throw asRetryableGatewayFailure(error);
        }
      });
    },

    /** Publishes a customer notice on notifications.<kind>, once per order and kind. */
    async sendNotification(
      input: NotificationInput,
      audit?: AuditEventInput[],
    ): Promise<WithAudit<{ notificationId: string }>> {
      const audited = await auditFirst(audit);
      return timed('sendNotification', async () => ({ ...(await notify(input)), ...audited }));
    },

    /** Publishes one audit event (sagas started before audit events went in batches and with the steps). */
    async publishAudit(event: AuditEventInput): Promise<void> {
      await publishAuditEvent(event);
    },

    /** Publishes audit events in order; the message ids make repeats harmless. */
    async publishAuditEvents(events: AuditEventInput[]): Promise<void> {
      for (const event of events) await publishAuditEvent(event);
    },
  };

  async function notify(input: NotificationInput): Promise<{ notificationId: string }> {
    const id = `${input.orderId}:notification:${input.kind}`;
    const envelope: EventEnvelope = {
      id,
      type: notificationEventType(input.kind),
      aggregate_id: input.orderId,
      data: {
        kind: input.kind,
        customerId: input.customerId,
        ...(input.email && { email: input.email }),
        total: input.total,
        currency: input.currency,
      } satisfies NotificationData,
      timestamp: new Date().toISOString(),
      trace_id: input.traceId,
    };
    await publishEnvelope(js, SUBJECTS.notification(input.kind), envelope);
    return { notificationId: id };
  }
}

/** The activities as the workflow sees them (imported there as a type only). */
export type OrderActivities = ReturnType<typeof createActivities>;

function asRetryableGatewayFailure(error: unknown): unknown {
  if (error instanceof CircuitOpenError) {
    // Fail fast while the breaker is open, and tell Temporal when the next try makes sense.
    // The attempt number lets a compensation count the attempts that really failed before this one.
    return ApplicationFailure.create({
      type: FailureType.circuitOpen,
      message: error.message,
      nextRetryDelay: error.retryAfterMs,
      details: [{ retryAfterMs: error.retryAfterMs, attempt: Context.current().info.attempt }],
    });
  }
  if (error instanceof PaymentInProgressError) {
    return ApplicationFailure.create({ type: FailureType.paymentInProgress, message: error.message });
  }
  if (error instanceof GatewayRequestError) {
    return ApplicationFailure.create({
      type: FailureType.gatewayRequestRejected,
      message: error.message,
      nonRetryable: true,
    });
  }
  return error;
}
