// The starter: a durable pull consumer on ORDERS that starts one orderSaga per OrderCreated.
// It acks only after Temporal accepted the start ("already started" counts as success), so
// an order is never dropped; the workflow id reuse policy makes a second saga impossible.
//
// Only an event that can never start a saga goes to ORDERS_DLQ: a malformed one at once, one
// older than the namespace's retention at once (its earlier saga may be deleted, so the reuse
// policy no longer protects), one Temporal refuses permanently (bad namespace, invalid
// request) at the delivery limit. While Temporal is unreachable or slow, the starter holds
// its events, extending their ack deadline, and retries until Temporal answers: the consumer
// stops delivering once every slot is held, and resumes by itself. The consumer itself never
// gives up on an event (unlimited deliveries), so a worker killed while holding one loses
// nothing. In-flight work is bounded: a surge waits in JetStream, not in memory.
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers as natsHeaders, nanos } from '@nats-io/transport-node';
import {
  isGrpcServiceError,
  NamespaceNotFoundError,
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  type Client,
} from '@temporalio/client';
import type { ConsumerBacklog, StarterMetrics } from '../lib/metrics.js';
import { decodeEnvelope, MalformedEnvelopeError } from '../lib/envelope.js';
import { contextFromHeaders, inSpan, SpanKind } from '../lib/telemetry.js';
import type { Logger } from '../lib/logger.js';
import { STREAMS, SUBJECTS } from '../lib/nats.js';
import { ORDER_CREATED } from '../domain/events.js';
import { orderSchema } from '../lib/order-event.js';
import {
  CustomerIdKey,
  ORDER_SAGA_WORKFLOW_TYPE,
  orderWorkflowId,
  OrderStatusKey,
  OrderTotalKey,
  type OrderSagaInput,
  TRACE_ID_MEMO_KEY,
} from '../workflows/contract.js';
import type { Order } from '../domain/order.js';
import { toMajorUnits } from '../domain/money.js';
import type { SagaSettings } from '../domain/saga-settings.js';
import { DLQ_HEADERS } from '../lib/event-schemas.js';

/** Durable consumer name on ORDERS (operators see it in `nats consumer ls ORDERS`). */
export const STARTER_CONSUMER = 'order-saga-starter';

/** Headers set on a dead-lettered message. */
export { DLQ_HEADERS };

/** The shared consumer's backlog (lib/metrics.ts consumerBacklogMetrics): the oldest unacknowledged event is the one above the ack floor. */
export async function readConsumerBacklog(jsm: JetStreamManager): Promise<ConsumerBacklog> {
  const info = await jsm.consumers.info(STREAMS.orders.name, STARTER_CONSUMER);
  let oldestUnackedAgeSeconds = 0;
  if (info.num_ack_pending > 0) {
    const oldest = await jsm.streams.getMessage(STREAMS.orders.name, { seq: info.ack_floor.stream_seq + 1 });
    if (oldest) oldestUnackedAgeSeconds = Math.max(0, (Date.now() - oldest.time.getTime()) / 1_000);
  }
  return { pending: info.num_pending, ackPending: info.num_ack_pending, oldestUnackedAgeSeconds };
}

export interface StarterOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  client: Client;
  /**
   * Start sagas eagerly: `client` is on this process's worker's NativeConnection, and the server
   * hands each new saga's first workflow task to that worker in the start call's answer.
   */
  eagerStart?: boolean;
  taskQueue: string;
  settings: SagaSettings;
  limits: { maxInFlight: number; maxDeliver: number; ackWaitMs: number; maxAckPending: number };
  /** The namespace's workflow retention: an older event may have had a saga whose history is gone. */
  retentionMs: number;
  logger: Logger;
  metrics?: StarterMetrics;
}

export interface RunningStarter {
  /** Stops pulling, waits for the messages in hand, then returns. */
  stop(): Promise<void>;
  inFlight(): number;
}

/** An event that can never start a saga, whatever is retried. */
class PoisonEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoisonEventError';
  }
}

/** gRPC codes with which Temporal refuses a start for good: retrying the same request cannot help. */
const PERMANENT_REFUSALS = new Set([
  3, // INVALID_ARGUMENT
  5, // NOT_FOUND (the namespace)
  7, // PERMISSION_DENIED
  9, // FAILED_PRECONDITION
  12, // UNIMPLEMENTED
]);

/**
 * What one start call came to: `started`, `already_started` (a redelivery: fine), `refused` (for good:
 * retrying the same request cannot help) or `unavailable` (unreachable, slow, overloaded: worth waiting out).
 */
type StartOutcome = 'started' | 'already_started' | 'refused' | 'unavailable';

function startOutcome(error: unknown): StartOutcome {
  if (error === undefined) return 'started';
  if (error instanceof WorkflowExecutionAlreadyStartedError) return 'already_started';
  if (error instanceof NamespaceNotFoundError) return 'refused';
  const grpc = error instanceof ServiceError ? error.cause : error;
  return isGrpcServiceError(grpc) && PERMANENT_REFUSALS.has(grpc.code) ? 'refused' : 'unavailable';
}

/** Wait before the n-th in-process retry of a start while Temporal is unavailable: 0.5 s doubling to 15 s. */
function holdDelayMs(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 15_000);
}

/** Creates or updates the durable consumer with the configured limits. */
export async function ensureStarterConsumer(jsm: JetStreamManager, limits: StarterOptions['limits']): Promise<void> {
  const config = {
    durable_name: STARTER_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: SUBJECTS.orderCreated,
    // The consumer never drops an event by itself: the starter decides what is dead-lettered.
    max_deliver: -1,
    ack_wait: nanos(limits.ackWaitMs),
    // Consumer-wide, so it must cover every worker's share (STARTER_MAX_ACK_PENDING).
    max_ack_pending: limits.maxAckPending,
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
  const { js, jsm, client, taskQueue, settings, limits, retentionMs, logger, metrics } = options;
  let stopping = false;
  let temporalAvailable = true;
  await ensureStarterConsumer(jsm, limits);
  const consumer = await js.consumers.get(STREAMS.orders.name, STARTER_CONSUMER);
  const messages = await consumer.consume({ max_messages: limits.maxInFlight });
  const inHand = new InFlightLimit(limits.maxInFlight, (size) => metrics?.inFlight.set(size));

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

  async function deadLetter(
    message: JsMsg,
    kind: 'poison' | 'stale' | 'delivery_limit',
    reason: string,
  ): Promise<void> {
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
    metrics?.deadLettered.inc({ reason: kind });
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
    if (message.info.deliveryCount > 1) metrics?.redeliveries.inc();
    let order: Order;
    try {
      order = parseOrder(message);
    } catch (error) {
      if (!(error instanceof PoisonEventError)) throw error;
      await deadLetter(message, 'poison', error.message);
      message.term(error.message);
      return;
    }
    const ageMs = Date.now() - Date.parse(order.createdAt);
    if (ageMs > retentionMs) {
      const reason =
        `stale: the order is ${Math.round(ageMs / 3_600_000)} h old, older than the namespace's retention ` +
        `(${Math.round(retentionMs / 3_600_000)} h), so an earlier saga of it may be deleted and a start could run it twice; ` +
        'check the order (gateway ledger, AUDIT) before replaying it';
      await deadLetter(message, 'stale', reason);
      message.term(reason.slice(0, 100));
      return;
    }
    const workflowId = orderWorkflowId(order.orderId);
    const log = logger.child({ orderId: order.orderId, workflowId });
    // While Temporal is unavailable, hold the event (its ack deadline extended) and try again.
    let error = await attemptStart(order, workflowId, message);
    for (let attempt = 0; startOutcome(error) === 'unavailable'; attempt += 1) {
      if (stopping) {
        message.nak();
        return;
      }
      if (temporalAvailable) log.warn({ err: error }, 'Temporal unavailable: holding events until it answers');
      temporalAvailable = false;
      await holdFor(message, holdDelayMs(attempt));
      error = await attemptStart(order, workflowId, message);
    }
    if (!temporalAvailable) logger.info('Temporal answers again: starting sagas');
    temporalAvailable = true;
    const outcome = startOutcome(error);
    if (outcome === 'started') {
      metrics?.started.inc({ result: 'started' });
      log.info('saga started');
    } else if (outcome === 'already_started') {
      metrics?.started.inc({ result: 'already_started' });
      log.info('saga already started for this order; event acknowledged');
    } else if (message.info.deliveryCount >= limits.maxDeliver) {
      await deadLetter(
        message,
        'delivery_limit',
        `Temporal refused the start ${limits.maxDeliver} times: ${error instanceof Error ? error.message : JSON.stringify(error)}`,
      );
      message.term('delivery limit reached');
      return;
    } else {
      const delay = redeliveryDelayMs(message.info.deliveryCount);
      log.warn(
        { err: error, delivery: message.info.deliveryCount, retryInMs: delay },
        'Temporal refused the start; will retry',
      );
      message.nak(delay);
      return;
    }
    await message
      .ackAck()
      .catch((ackError: unknown) =>
        log.warn({ err: ackError }, 'ack not confirmed; the event may be redelivered (harmless)'),
      );
  }

  /** Extends the event's ack deadline while waiting `ms`, so JetStream does not hand it to another starter. */
  async function holdFor(message: JsMsg, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!stopping && Date.now() < deadline) {
      message.working();
      await new Promise((resolve) => setTimeout(resolve, Math.min(deadline - Date.now(), limits.ackWaitMs / 3)));
    }
  }

  /** One start call, its ack deadline extended while it runs; resolves with the error, or undefined when started. */
  async function attemptStart(order: Order, workflowId: string, message: JsMsg): Promise<unknown> {
    const keepAlive = setInterval(() => message.working(), limits.ackWaitMs / 3);
    try {
      const input: OrderSagaInput = { order, settings };
      await client.workflow.start(ORDER_SAGA_WORKFLOW_TYPE, {
        workflowId,
        taskQueue,
        args: [input],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        // The server may still start it the usual way (eager start switched off, no slot free on the worker).
        ...(options.eagerStart && { requestEagerStart: true }),
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
      return undefined;
    } catch (error) {
      return error;
    } finally {
      clearInterval(keepAlive);
    }
  }

  // A surge waits in JetStream, not in memory: the next event is taken once a slot is free.
  const loop = (async () => {
    for await (const message of messages) {
      await inHand.start(() =>
        handle(message).catch((error: unknown) => {
          logger.error(
            { err: error, seq: message.seq },
            'unexpected error handling an order event; it will be redelivered',
          );
          message.nak(redeliveryDelayMs(message.info.deliveryCount));
        }),
      );
    }
  })();

  return {
    inFlight: () => inHand.size,
    async stop() {
      stopping = true;
      await messages.close();
      await loop;
      await inHand.drained();
    },
  };
}

/** At most `limit` tasks at once: start() waits for a free slot, then starts the task without waiting for it. */
class InFlightLimit {
  private readonly running = new Set<Promise<void>>();
  private slotFreed: (() => void) | undefined;

  constructor(
    private readonly limit: number,
    private readonly onChange: (size: number) => void,
  ) {}

  get size(): number {
    return this.running.size;
  }

  async start(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await new Promise<void>((resolve) => (this.slotFreed = resolve));
    const running = task().finally(() => {
      this.running.delete(running);
      this.onChange(this.running.size);
      this.slotFreed?.();
      this.slotFreed = undefined;
    });
    this.running.add(running);
    this.onChange(this.running.size);
  }

  /** Resolves once every task started so far has finished. */
  async drained(): Promise<void> {
    await Promise.all(this.running);
  }
}
