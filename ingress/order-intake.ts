// Accepting an order: give it an id, honour the Idempotency-Key, publish OrderCreated to
// ORDERS and resolve only once JetStream has stored it. Nothing else is written, so a
// failure leaves no partial order: the client may simply retry with the same key.
//
// A key's record (KV bucket, expires after the configured TTL) holds the order id it was
// given, so the same key and body name the same order for as long as the record lives, and a
// key used again after it expired starts a new order. A claim whose publish JetStream
// definitely refused is withdrawn, so the client may correct the body and reuse the key.
import { createHash, randomUUID } from 'node:crypto';
import { JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { millis, nanos, NoRespondersError } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import type { Histogram } from 'prom-client';
import type { Logger } from '../lib/logger.js';
import { newTraceId, publishEnvelope } from '../lib/envelope.js';
import { SUBJECTS } from '../lib/nats.js';
import { PAYMENT_TOKEN_PURPOSE, type Keyring } from '../lib/encryption.js';
import { ORDER_CREATED } from '../domain/events.js';
import { orderTotal } from '../domain/order.js';
import { orderWorkflowId } from '../workflows/contract.js';
import type { Order } from '../domain/order.js';
import type { Caller } from './callers.js';
import { canonicalRequest, type OrderRequest } from './order-request.js';

/** KV bucket of idempotency keys (JetStream); entries expire after IDEMPOTENCY_TTL. */
export const IDEMPOTENCY_BUCKET = 'ORDER_IDEMPOTENCY';

/** JetStream's duplicate window when none is given: two minutes, or the max age of a stream that keeps messages less. */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

/**
 * Opens the idempotency bucket, creating it when missing, and brings an existing one to the settings, as a restarted
 * ingress must: its age to IDEMPOTENCY_TTL (a bucket left at the age it was created with would keep keys past the TTL
 * or forget them before it: a late retry after a raised TTL would become a second order), and its size limit, at which
 * new keys are refused (so an order is answered 503, never accepted without its key). JetStream applies a new age to the
 * keys already stored: a raised TTL keeps them longer, a lowered one drops at once those older than it.
 */
export async function openIdempotencyBucket(
  js: JetStreamClient,
  jsm: JetStreamManager,
  settings: { ttlMs: number; replicas: number; maxBytes: number },
  logger?: Pick<Logger, 'warn'>,
): Promise<KV> {
  const bucket = await new Kvm(js).create(IDEMPOTENCY_BUCKET, {
    ttl: settings.ttlMs,
    history: 1,
    replicas: settings.replicas,
    max_bytes: settings.maxBytes,
  });
  const stream = `KV_${IDEMPOTENCY_BUCKET}`;
  const { config } = await jsm.streams.info(stream);
  const wanted = {
    max_age: nanos(settings.ttlMs),
    // Set with the age: JetStream refuses a duplicate window longer than the max age (the window of a bucket
    // created with a long TTL is two minutes), and this is the window it gives a new bucket of this TTL.
    duplicate_window: nanos(
      settings.ttlMs > 0 ? Math.min(settings.ttlMs, DEFAULT_DUPLICATE_WINDOW_MS) : DEFAULT_DUPLICATE_WINDOW_MS,
    ),
    max_bytes: settings.maxBytes,
  };
  if (Object.entries(wanted).some(([name, value]) => config[name as keyof typeof wanted] !== value)) {
    await jsm.streams.update(stream, { ...config, ...wanted });
  }
  if (config.max_age !== wanted.max_age) {
    const was = millis(config.max_age);
    logger?.warn(
      { bucket: IDEMPOTENCY_BUCKET, ttlMs: settings.ttlMs, previousTtlMs: was },
      settings.ttlMs !== 0 && (was === 0 || settings.ttlMs < was)
        ? 'IDEMPOTENCY_TTL lowered: keys older than it were dropped, and a retry of their orders starts a new order'
        : 'IDEMPOTENCY_TTL raised: the keys stored are kept for the new TTL',
    );
  }
  return bucket;
}

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

/** An Idempotency-Key and who sent it: each caller's keys are its own. */
export interface IdempotencyKey {
  key: string;
  caller: Pick<Caller, 'id' | 'via'>;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The KV key of a caller's Idempotency-Key: a hash of who sent it and the key, so one caller's key never answers or
 * blocks another's (a 422 would tell that the key exists), and any key, of any characters, is a valid KV key. How the
 * caller proved who it is is part of it: a token's subject may read like an API key's name.
 */
function callerKvKey({ key, caller }: IdempotencyKey): string {
  return `caller-key.${sha256(JSON.stringify([caller.via, caller.id, key]))}`;
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

/** True when JetStream answered that it did not store the message (not a lost answer, which may hide a stored one). */
function definitelyNotStored(error: unknown): boolean {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (current instanceof JetStreamApiError || current instanceof NoRespondersError) return true;
  }
  return false;
}

export interface OrderIntakeDeps {
  js: JetStreamClient;
  idempotency: KV;
  /** Whether the NATS connection is up; when it is not, fail fast instead of buffering. */
  connected: () => boolean;
  /** Seals the payment token, so ORDERS and ORDERS_DLQ never hold it in clear. */
  keyring: Keyring;
  publishDuration?: Histogram<'outcome'>;
}

export class OrderIntake {
  constructor(private readonly deps: OrderIntakeDeps) {}

  /** Stores the order as an OrderCreated event; throws IdempotencyConflictError or OrderNotStoredError. */
  async accept(
    request: OrderRequest,
    idempotency: IdempotencyKey | undefined,
    traceId = newTraceId(),
  ): Promise<AcceptedOrder> {
    if (!this.deps.connected()) throw new OrderNotStoredError({ cause: new Error('NATS is disconnected') });
    let identity: {
      orderId: string;
      traceId: string;
      createdAt: string;
      replayed: boolean;
      withdraw?: () => Promise<void>;
    };
    try {
      identity = idempotency
        ? await this.claimKey(idempotency, request, traceId)
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
      paymentToken: this.deps.keyring.seal(request.paymentToken, PAYMENT_TOKEN_PURPOSE),
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
      if (definitelyNotStored(error)) await identity.withdraw?.().catch(() => undefined);
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
  private async claimKey(idempotency: IdempotencyKey, request: OrderRequest, traceId: string) {
    const fingerprint = sha256(canonicalRequest(request));
    const before = await this.acceptedBeforeKeysWerePerCaller(idempotency.key, fingerprint);
    if (before) return { ...before, replayed: true };
    const kvKey = callerKvKey(idempotency);
    const fresh: IdempotencyRecord = {
      fingerprint,
      orderId: randomUUID(),
      traceId,
      createdAt: new Date().toISOString(),
    };
    try {
      const revision = await this.deps.idempotency.create(kvKey, JSON.stringify(fresh));
      const withdraw = async () => void (await this.deps.idempotency.delete(kvKey, { previousSeq: revision }));
      return { ...fresh, replayed: false, withdraw };
    } catch (createError) {
      const entry = await this.deps.idempotency.get(kvKey);
      if (!entry || entry.operation !== 'PUT') throw createError;
      const earlier = entry.json<IdempotencyRecord>();
      if (earlier.fingerprint !== fingerprint) throw new IdempotencyConflictError();
      return { ...earlier, replayed: true };
    }
  }

  /**
   * The order that a version before per-caller keys accepted with this key and body, whose record it stored for every
   * caller under `key.<sha256 of the key>`: without this, a retry of it after the upgrade would be a second order. Only
   * the same body counts (the old record does not say who sent it; the body, with its customer and payment token, ties
   * a retry to it); under another body the key is the caller's own, as every key is now. Those records expire one
   * IDEMPOTENCY_TTL after the last such version stopped: then this lookup finds nothing and may go.
   */
  private async acceptedBeforeKeysWerePerCaller(key: string, fingerprint: string) {
    const entry = await this.deps.idempotency.get(`key.${sha256(key)}`);
    if (!entry || entry.operation !== 'PUT') return undefined;
    const earlier = entry.json<IdempotencyRecord>();
    return earlier.fingerprint === fingerprint ? earlier : undefined;
  }
}
