// Accepting an order: derive its id, honour the Idempotency-Key, publish OrderCreated to
// ORDERS and resolve only once JetStream has stored it. Nothing else is written, so a
// failure leaves no partial order: the client may simply retry with the same key.
import { createHash, randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { Histogram } from 'prom-client';
import { newTraceId, publishEnvelope } from '../lib/envelope.js';
import { SUBJECTS } from '../lib/nats.js';
import { ORDER_CREATED, orderTotal } from '../lib/order-event.js';
import { orderWorkflowId, type Order } from '../workflows/contract.js';
import { canonicalRequest, type OrderRequest } from './order-request.js';

/** KV bucket of idempotency keys (JetStream); entries expire after IDEMPOTENCY_TTL_MS. */
export const IDEMPOTENCY_BUCKET = 'ORDER_IDEMPOTENCY';
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** The key was used before with a different body. */
export class IdempotencyConflictError extends Error {
  constructor() {
    super('this Idempotency-Key was already used with a different request body');
    this.name = 'IdempotencyConflictError';
  }
}

/** JetStream did not confirm that it stored the order. */
export class OrderNotStoredError extends Error {
  constructor(options: { cause: unknown }) {
    super('the order could not be stored; nothing was accepted', options);
    this.name = 'OrderNotStoredError';
  }
}

export interface AcceptedOrder {
  orderId: string;
  workflowId: string;
  traceId: string;
  /** True when this answer repeats an earlier request with the same key. */
  replayed: boolean;
}

interface IdempotencyRecord {
  fingerprint: string;
  orderId: string;
  traceId: string;
  createdAt: string;
}

const ORDER_ID_NAMESPACE = Buffer.from('5f1b0c52a8e64f5e9c3a7d2e41b6f089', 'hex');

/** A UUID (version 5 layout) derived from the idempotency key: the same key always names the same order. */
export function orderIdFromKey(key: string): string {
  const hash = createHash('sha1').update(ORDER_ID_NAMESPACE).update(key, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface OrderIntakeDeps {
  js: JetStreamClient;
  idempotency: KV;
  /** Whether the NATS connection is up; when it is not, fail fast instead of buffering. */
  connected: () => boolean;
  publishDuration?: Histogram<'outcome'>;
}

export class OrderIntake {
  constructor(private readonly deps: OrderIntakeDeps) {}

  /** Stores the order as an OrderCreated event; throws IdempotencyConflictError or OrderNotStoredError. */
  async accept(
    request: OrderRequest,
    idempotencyKey: string | undefined,
    traceId = newTraceId(),
  ): Promise<AcceptedOrder> {
    if (!this.deps.connected()) throw new OrderNotStoredError({ cause: new Error('NATS is disconnected') });
    let identity: { orderId: string; traceId: string; createdAt: string; replayed: boolean };
    try {
      identity = idempotencyKey
        ? await this.claimKey(idempotencyKey, request, traceId)
        : { orderId: randomUUID(), traceId, createdAt: new Date().toISOString(), replayed: false };
    } catch (error) {
      if (error instanceof IdempotencyConflictError) throw error;
      throw new OrderNotStoredError({ cause: error });
    }
    const order: Order = {
      orderId: identity.orderId,
      customerId: request.customerId,
      items: request.items,
      currency: request.currency,
      total: orderTotal(request.items),
      paymentToken: request.paymentToken,
      ...(request.email && { email: request.email }),
      createdAt: identity.createdAt,
      traceId: identity.traceId,
    };
    const stopTimer = this.deps.publishDuration?.startTimer();
    try {
      await publishEnvelope(this.deps.js, SUBJECTS.orderCreated, {
        id: `order-created:${order.orderId}`,
        type: ORDER_CREATED,
        aggregate_id: order.orderId,
        data: order,
        timestamp: identity.createdAt,
        trace_id: order.traceId,
      });
      stopTimer?.({ outcome: 'stored' });
    } catch (error) {
      stopTimer?.({ outcome: 'failed' });
      throw new OrderNotStoredError({ cause: error });
    }
    return {
      orderId: order.orderId,
      workflowId: orderWorkflowId(order.orderId),
      traceId: order.traceId,
      replayed: identity.replayed,
    };
  }

  /** Records the key with the body's fingerprint, or finds the earlier record; concurrent claims agree. */
  private async claimKey(key: string, request: OrderRequest, traceId: string) {
    const fingerprint = createHash('sha256').update(canonicalRequest(request)).digest('hex');
    const kvKey = `key.${createHash('sha256').update(key, 'utf8').digest('hex')}`;
    const fresh: IdempotencyRecord = {
      fingerprint,
      orderId: orderIdFromKey(key),
      traceId,
      createdAt: new Date().toISOString(),
    };
    try {
      await this.deps.idempotency.create(kvKey, JSON.stringify(fresh));
      return { ...fresh, replayed: false };
    } catch (createError) {
      const entry = await this.deps.idempotency.get(kvKey);
      if (!entry || entry.operation !== 'PUT') throw createError;
      const earlier = entry.json<IdempotencyRecord>();
      if (earlier.fingerprint !== fingerprint) throw new IdempotencyConflictError();
      return { ...earlier, replayed: true };
    }
  }
}
