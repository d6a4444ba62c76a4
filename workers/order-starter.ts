// The starter: a durable pull consumer on ORDERS that starts one orderSaga per OrderCreated.
// It acks only after Temporal accepted the start ("already started" counts as success), so
// an order is never dropped; the workflow id reuse policy makes a second saga impossible.
// Malformed events go to ORDERS_DLQ at once; events that keep failing go there at the
// delivery limit. In-flight work is bounded: a surge waits in JetStream, not in memory.
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers as natsHeaders, nanos } from '@nats-io/transport-node';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { Counter, Gauge } from 'prom-client';
import { decodeEnvelope, MalformedEnvelopeError } from '../lib/envelope.js';
import { contextFromHeaders, inSpan, SpanKind } from '../lib/telemetry.js';
import type { Logger } from '../lib/logger.js';
import { STREAMS, SUBJECTS } from '../lib/nats.js';
import { ORDER_CREATED, orderSchema } from '../lib/order-event.js';
import {
  CustomerIdKey,
  ORDER_SAGA_WORKFLOW_TYPE,
  orderWorkflowId,
  OrderStatusKey,
  OrderTotalKey,
  type Order,
  type OrderSagaInput,
  toMajorUnits,
  type SagaSettings,
  TRACE_ID_MEMO_KEY,
} from '../workflows/contract.js';

/** Durable consumer name on ORDERS (operators see it in `nats consumer ls ORDERS`). */
export const STARTER_CONSUMER = 'order-saga-starter';

/** Headers set on a dead-lettered message. */
export const DLQ_HEADERS = {
  reason: 'Dlq-Reason',
  stream: 'Dlq-Original-Stream',
  sequence: 'Dlq-Original-Sequence',
  subject: 'Dlq-Original-Subject',
  deliveries: 'Dlq-Deliveries',
} as const;

export interface StarterOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  client: Client;
  taskQueue: string;
  settings: SagaSettings;
  limits: { maxInFlight: number; maxDeliver: number; ackWaitMs: number };
  logger: Logger;
  metrics?: { inFlight?: Gauge; redeliveries?: Counter; deadLettered?: Counter<'reason'>; started?: Counter<'result'> };
}

export interface RunningStarter {
  /** Stops pulling, waits for the messages in hand, then returns. */
  stop(): Promise<void>;
  inFlight(): number;
}

/** An event that can never start a saga, whatever is retried. */
class PoisonEventError extends Error {}

/** Creates or updates the durable consumer with the configured limits. */
export async function ensureStarterConsumer(jsm: JetStreamManager, limits: StarterOptions['limits']): Promise<void> {
  const config = {
    durable_name: STARTER_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: SUBJECTS.orderCreated,
    max_deliver: limits.maxDeliver,
    ack_wait: nanos(limits.ackWaitMs),
    max_ack_pending: limits.maxInFlight * 2,
  };
  try {
    await jsm.consumers.info(STREAMS.orders.name, STARTER_CONSUMER);
    await jsm.consumers.update(STREAMS.orders.name, STARTER_CONSUMER, config);
  } catch (error) {
    if (!(error instanceof JetStreamApiError) || error.status !== 404) throw error;
    await jsm.consumers.add(STREAMS.orders.name, config);
  }
}

/** Delay before the n-th redelivery: 0.5 s, 1 s, 2 s … capped at 30 s. */
function redeliveryDelayMs(deliveryCount: number): number {
  return Math.min(500 * 2 ** (deliveryCount - 1), 30_000);
}

export async function startOrderStarter(options: StarterOptions): Promise<RunningStarter> {
  const { js, jsm, client, taskQueue, settings, limits, logger, metrics } = options;
  await ensureStarterConsumer(jsm, limits);
  const consumer = await js.consumers.get(STREAMS.orders.name, STARTER_CONSUMER);
  const messages = await consumer.consume({ max_messages: limits.maxInFlight });
  const inHand = new Set<Promise<void>>();
  let freeSlot: (() => void) | undefined;

  function parseOrder(message: JsMsg): Order {
    try {
      const envelope = decodeEnvelope(message.data);
      if (envelope.type !== ORDER_CREATED)
        throw new PoisonEventError(`unexpected event type "${envelope.type}" on ${message.subject}`);
      const parsed = orderSchema.safeParse(envelope.data);
      if (!parsed.success)
        throw new PoisonEventError(
          `invalid OrderCreated data: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      if (envelope.aggregate_id !== parsed.data.orderId)
        throw new PoisonEventError('aggregate_id does not match data.orderId');
      return parsed.data;
    } catch (error) {
      if (error instanceof MalformedEnvelopeError) throw new PoisonEventError(error.message);
      throw error;
    }
  }

  async function deadLetter(message: JsMsg, kind: 'poison' | 'delivery_limit', reason: string): Promise<void> {
    const headers = natsHeaders();
    headers.set(DLQ_HEADERS.reason, reason.slice(0, 1000));
    headers.set(DLQ_HEADERS.stream, STREAMS.orders.name);
    headers.set(DLQ_HEADERS.sequence, String(message.seq));
    headers.set(DLQ_HEADERS.subject, message.subject);
    headers.set(DLQ_HEADERS.deliveries, String(message.info.deliveryCount));
    const traceparent = message.headers?.get('traceparent');
    if (traceparent) headers.set('traceparent', traceparent);
    // The original bytes, untouched, so the event can be inspected and moved back later.
    await js.publish(SUBJECTS.deadLetter(message.subject), message.data, {
      msgID: `dlq:${STREAMS.orders.name}:${message.seq}`,
      headers,
    });
    metrics?.deadLettered?.inc({ reason: kind });
    logger.warn({ seq: message.seq, reason }, 'event moved to ORDERS_DLQ');
  }

  /** Handles one delivery inside a consumer span that continues the publisher's trace. */
  function handle(message: JsMsg): Promise<void> {
    const parent = contextFromHeaders((name) => message.headers?.get(name) || undefined);
    const attributes = {
      'messaging.system': 'nats',
      'messaging.operation.type': 'process',
      'messaging.destination.name': message.subject,
      'messaging.consumer.group.name': STARTER_CONSUMER,
      'messaging.nats.stream.sequence': message.seq,
      'messaging.nats.delivery_count': message.info.deliveryCount,
    };
    return inSpan(`process ${message.subject}`, { kind: SpanKind.CONSUMER, parent, attributes }, () =>
      startSaga(message),
    );
  }

  async function startSaga(message: JsMsg): Promise<void> {
    if (message.info.deliveryCount > 1) metrics?.redeliveries?.inc();
    let order: Order;
    try {
      order = parseOrder(message);
    } catch (error) {
      if (!(error instanceof PoisonEventError)) throw error;
      await deadLetter(message, 'poison', error.message);
      message.term(error.message);
      return;
    }
    const workflowId = orderWorkflowId(order.orderId);
    const log = logger.child({ orderId: order.orderId, workflowId });
    try {
      const input: OrderSagaInput = { order, settings };
      await client.workflow.start(ORDER_SAGA_WORKFLOW_TYPE, {
        workflowId,
        taskQueue,
        args: [input],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [
          { key: OrderStatusKey, value: 'RECEIVED' },
          { key: CustomerIdKey, value: order.customerId },
          { key: OrderTotalKey, value: toMajorUnits(order.total, order.currency) },
        ],
        memo: {
          summary: `${order.items.length} line(s), ${toMajorUnits(order.total, order.currency)} ${order.currency}, customer ${order.customerId}`,
          [TRACE_ID_MEMO_KEY]: order.traceId,
        },
        staticSummary: `Order ${order.orderId} for ${order.customerId}`,
      });
      metrics?.started?.inc({ result: 'started' });
      log.info('saga started');
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        metrics?.started?.inc({ result: 'already_started' });
        log.info('saga already started for this order; event acknowledged');
      } else if (message.info.deliveryCount >= limits.maxDeliver) {
        await deadLetter(
          message,
          'delivery_limit',
          `delivery limit (${limits.maxDeliver}) reached: ${error instanceof Error ? error.message : String(error)}`,
        );
        message.term('delivery limit reached');
        return;
      } else {
        const delay = redeliveryDelayMs(message.info.deliveryCount);
        log.warn(
          { err: error, delivery: message.info.deliveryCount, retryInMs: delay },
          'could not start the saga; will retry',
        );
        message.nak(delay);
        return;
      }
    }
    await message
      .ackAck()
      .catch((error: unknown) =>
        log.warn({ err: error }, 'ack not confirmed; the event may be redelivered (harmless)'),
      );
  }

  const loop = (async () => {
    for await (const message of messages) {
      while (inHand.size >= limits.maxInFlight) await new Promise<void>((resolve) => (freeSlot = resolve));
      const work = handle(message)
        .catch((error: unknown) => {
          logger.error(
            { err: error, seq: message.seq },
            'unexpected error handling an order event; it will be redelivered',
          );
          message.nak(redeliveryDelayMs(message.info.deliveryCount));
        })
        .finally(() => {
          inHand.delete(work);
          metrics?.inFlight?.set(inHand.size);
          freeSlot?.();
          freeSlot = undefined;
        });
      inHand.add(work);
      metrics?.inFlight?.set(inHand.size);
    }
  })();

  return {
    inFlight: () => inHand.size,
    async stop() {
      await messages.close();
      await loop;
      await Promise.all(inHand);
    },
  };
}
