// The starter: a durable pull consumer on ORDERS that starts one orderSaga per OrderCreated.
// It acks only after Temporal accepted the start ("already started" counts as success), so
// an order is never dropped; the workflow id reuse policy makes a second saga impossible.
//
// What it does with an event is decided by one table, STARTER_RULES: what the event or its
// start came to → ack, dead-letter, hold, or retry later. Only an event that can never start a
// saga goes to ORDERS_DLQ, and that is known from the event alone: a malformed one, or one
// older than the namespace's retention (its earlier saga may be deleted, so the reuse policy no
// longer protects). An event that passes its schema is small enough for any namespace set up as
// docs/api.md says, so whatever Temporal refuses of it (a namespace missing or not active, its
// search attributes not registered, a permission refused) is the environment's to fix: the
// event is held, the refusal counted (alert OrderSagaStartsRefused) and logged with what to do,
// and the saga starts by itself once it is fixed. While Temporal is unreachable or silent the
// same holding waits it out; every start call has a deadline, so none waits forever.
//
// Every event in hand (being started, held, or waiting for a slot) is kept in progress, so
// JetStream hands it to no other starter meanwhile; the consumer itself never gives up on an
// event (unlimited deliveries), so a worker killed while holding one loses nothing. In-flight
// work is bounded: each worker takes no more events than it has slots for and as many waiting,
// and a surge waits in JetStream, not in memory.
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  type ConsumerMessages,
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
  OrderUpdatedAtKey,
  ORDER_SUMMARY_MEMO_KEY,
  type OrderSagaInput,
  type OrderSummaryMemo,
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

/** What an event came to: its own checks (poison, stale), then its start call. */
export type StartOutcome =
  | 'started'
  | 'already_started'
  | 'poison'
  | 'stale'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'search_attributes'
  | 'permission_denied'
  | 'namespace_unavailable'
  | 'invalid_request'
  | 'unknown';

/**
 * - `ack`: done.
 * - `dead_letter`: copied to ORDERS_DLQ with the reason, then terminated on ORDERS.
 * - `hold`: kept in hand, in progress, and started again after 0.5 s doubling to 15 s. The next
 *   event would meet the same fault, so the starter stops taking events once every slot holds one.
 * - `retry_later`: handed back to JetStream with a delay (0.5 s doubling to 30 s) without spending
 *   anything (the consumer's deliveries are unlimited), so it cannot take a slot for good if the
 *   fault is this event's own.
 */
export type StarterAction = 'ack' | 'dead_letter' | 'hold' | 'retry_later';

export interface StarterRule {
  action: StarterAction;
  /** Counted in starter_start_refused_total{outcome}, which alert OrderSagaStartsRefused watches: an operator must act. */
  alert: boolean;
  /** What it means and, for an operator, what to do: logged when the starter meets it. */
  says: string;
}

/** The starter's rules, one row per outcome: the only place where what happens to an event is decided. */
export const STARTER_RULES: Readonly<Record<StartOutcome, StarterRule>> = {
  started: { action: 'ack', alert: false, says: 'saga started' },
  already_started: {
    action: 'ack',
    alert: false,
    says: 'saga already started for this order (a redelivery); event acknowledged',
  },
  poison: {
    action: 'dead_letter',
    alert: false,
    says: 'not a valid OrderCreated event: no retry can make it start a saga',
  },
  stale: {
    action: 'dead_letter',
    alert: false,
    says: "older than the namespace's retention: an earlier saga of it may be deleted, so a start could run it twice",
  },
  unavailable: {
    action: 'hold',
    alert: false,
    says: 'Temporal unavailable (unreachable, overloaded or failing): holding events until it answers',
  },
  deadline_exceeded: {
    action: 'hold',
    alert: false,
    says: 'Temporal did not answer the start within its deadline: holding events until it does (a start it took meanwhile is acknowledged as already started)',
  },
  search_attributes: {
    action: 'hold',
    alert: true,
    says:
      "Temporal refuses the start: the namespace has not registered the saga's search attributes (OrderStatus, CustomerId: Keyword; OrderTotal: Double; OrderUpdatedAt: Datetime). " +
      'Register them (deploy/helm/order-saga/files/register-search-attributes.sh, or temporal operator search-attribute create); events are held until then',
  },
  permission_denied: {
    action: 'hold',
    alert: true,
    says: "Temporal refuses the start: permission denied. Check the worker's credentials (TEMPORAL_API_KEY, client certificate) and their role in the namespace; events are held until then",
  },
  namespace_unavailable: {
    action: 'hold',
    alert: true,
    says: 'Temporal refuses the start: the namespace is not found or not active. Create or activate it (temporal operator namespace describe/create), or correct TEMPORAL_NAMESPACE; events are held until then',
  },
  invalid_request: {
    action: 'retry_later',
    alert: true,
    says: 'Temporal refuses the start as invalid although the event passed its schema: a server limit or setting (the error says which) to correct; the event is retried later',
  },
  unknown: {
    action: 'retry_later',
    alert: true,
    says: 'the start failed with an error the starter cannot place (the error says what); the event is retried later',
  },
};

/** The gRPC status codes a start is classified by (grpc-js's `status`, which is not a dependency of ours). */
const GRPC = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  UNAUTHENTICATED: 16,
} as const;

/** Which outcome a start call came to; `error` is what it threw, undefined when it started the saga. */
export function classifyStart(error: unknown): StartOutcome {
  if (error === undefined) return 'started';
  if (error instanceof WorkflowExecutionAlreadyStartedError) return 'already_started';
  if (error instanceof NamespaceNotFoundError) return 'namespace_unavailable';
  const grpc = error instanceof ServiceError ? error.cause : error;
  if (!isGrpcServiceError(grpc)) return 'unknown';
  switch (Number(grpc.code)) {
    case GRPC.DEADLINE_EXCEEDED:
      return 'deadline_exceeded';
    case GRPC.INVALID_ARGUMENT:
      return /search attribute/i.test(`${grpc.details} ${grpc.message}`) ? 'search_attributes' : 'invalid_request';
    case GRPC.PERMISSION_DENIED:
    case GRPC.UNAUTHENTICATED:
      return 'permission_denied';
    case GRPC.NOT_FOUND: // for a start, the namespace
    case GRPC.FAILED_PRECONDITION: // the namespace is not active (another cluster's, deprecated, being deleted)
      return 'namespace_unavailable';
    case GRPC.UNIMPLEMENTED: // the server lacks what the request asks for
      return 'invalid_request';
    default: // UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN, CANCELLED…: the server's passing state
      return 'unavailable';
  }
}

/** The default deadline of one start call: far above a healthy answer (milliseconds), short enough not to stall a slot. */
export const START_TIMEOUT_MS = 10_000;

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
  limits: { maxInFlight: number; ackWaitMs: number; maxAckPending: number };
  /** Deadline of each start call (default START_TIMEOUT_MS). */
  startTimeoutMs?: number;
  /** The namespace's workflow retention: an older event may have had a saga whose history is gone. */
  retentionMs: number;
  logger: Logger;
  metrics?: StarterMetrics;
}

export interface RunningStarter {
  /** Stops taking events, hands back those waiting for a slot, waits for the ones being started, then returns. */
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

/** Wait before the n-th in-process retry of a held start: 0.5 s doubling to 15 s. */
function holdDelayMs(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 15_000);
}

/** Delay before the n-th redelivery: 0.5 s, 1 s, 2 s … capped at 30 s. */
function redeliveryDelayMs(deliveryCount: number): number {
  return Math.min(500 * 2 ** (deliveryCount - 1), 30_000);
}

/** How long one pull waits for events before it is renewed (its heartbeats notice a lost one sooner). */
const PULL_EXPIRES_MS = 10_000;

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

export async function startOrderStarter(options: StarterOptions): Promise<RunningStarter> {
  const { js, jsm, client, taskQueue, settings, limits, retentionMs, logger, metrics } = options;
  const startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
  let stopping = false;
  let signalStop!: () => void;
  const stopped = new Promise<void>((resolve) => (signalStop = resolve));
  await ensureStarterConsumer(jsm, limits);
  const consumer = await js.consumers.get(STREAMS.orders.name, STARTER_CONSUMER);

  // Every labelled series from 0, so increase() sees the first of each.
  for (const [outcome, rule] of Object.entries(STARTER_RULES) as [StartOutcome, StarterRule][]) {
    if (rule.action === 'dead_letter') metrics?.deadLettered.inc({ reason: outcome }, 0);
    if (rule.action === 'hold') metrics?.held.set({ outcome }, 0);
    if (rule.alert) metrics?.refused.inc({ outcome }, 0);
  }

  // Every event taken and not yet settled (being started, held, or waiting for a slot): all are
  // kept in progress, so none is handed to another starter while this one has it.
  const inHand = new Set<JsMsg>();
  const keepInProgress = setInterval(() => inHand.forEach((message) => message.working()), limits.ackWaitMs / 3);
  const waiting: JsMsg[] = [];
  const running = new Set<Promise<void>>();
  let roomFreed: (() => void) | undefined;
  // The fault the last start met, so that a run of events held for one cause is logged once.
  let condition: StartOutcome | undefined;

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

  async function deadLetter(message: JsMsg, outcome: StartOutcome, reason: string): Promise<void> {
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
    metrics?.deadLettered.inc({ reason: outcome });
    logger.warn({ seq: message.seq, reason }, 'event moved to ORDERS_DLQ');
    message.term(reason.slice(0, 100));
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
      return deadLetter(message, 'poison', error.message);
    }
    const ageMs = Date.now() - Date.parse(order.createdAt);
    if (ageMs > retentionMs) {
      const reason =
        `stale: the order is ${Math.round(ageMs / 3_600_000)} h old, older than the namespace's retention ` +
        `(${Math.round(retentionMs / 3_600_000)} h), so an earlier saga of it may be deleted and a start could run it twice; ` +
        'check the order (gateway ledger, AUDIT) before replaying it';
      return deadLetter(message, 'stale', reason);
    }
    const workflowId = orderWorkflowId(order.orderId);
    const log = logger.child({ orderId: order.orderId, workflowId });
    let heldAs: StartOutcome | undefined;
    const holdAs = (outcome: StartOutcome | undefined) => {
      if (heldAs) metrics?.held.dec({ outcome: heldAs });
      if (outcome) metrics?.held.inc({ outcome });
      heldAs = outcome;
    };
    try {
      for (let attempt = 0; ; attempt += 1) {
        const error = await attemptStart(order, workflowId);
        const outcome = classifyStart(error);
        const rule = STARTER_RULES[outcome];
        noteOutcome(outcome, rule, error, log, message);
        switch (rule.action) {
          case 'ack':
            metrics?.started.inc({ result: outcome });
            log.info(rule.says);
            await message
              .ackAck()
              .catch((ackError: unknown) =>
                log.warn({ err: ackError }, 'ack not confirmed; the event may be redelivered (harmless)'),
              );
            return;
          case 'dead_letter':
            return deadLetter(message, outcome, `${rule.says}: ${errorText(error)}`);
          case 'retry_later':
            message.nak(redeliveryDelayMs(message.info.deliveryCount));
            return;
          case 'hold':
            holdAs(outcome);
            if (!stopping) await pause(holdDelayMs(attempt));
            if (stopping) {
              message.nak(); // another starter takes it at once
              return;
            }
        }
      }
    } finally {
      holdAs(undefined);
    }
  }

  /** Counts and logs what a start came to: a fault once when it appears (and what to do), and once when starts succeed again. */
  function noteOutcome(outcome: StartOutcome, rule: StarterRule, error: unknown, log: Logger, message: JsMsg): void {
    if (rule.alert) metrics?.refused.inc({ outcome });
    if (rule.action === 'ack') {
      if (condition) logger.info({ after: condition }, 'Temporal takes saga starts again');
      condition = undefined;
      return;
    }
    const details = { err: error, outcome, action: rule.action, delivery: message.info.deliveryCount };
    // An event's own fault is logged each time; a fault every event meets, once until it changes.
    if (rule.action === 'retry_later' || (condition !== outcome && rule.alert)) log.error(details, rule.says);
    else if (condition !== outcome) log.warn(details, rule.says);
    condition = outcome;
  }

  /** Resolves after `ms`, or at once when the starter stops. */
  async function pause(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), stopped]);
    clearTimeout(timer);
  }

  /** One start call, within its deadline; resolves with the error, or undefined when started. */
  async function attemptStart(order: Order, workflowId: string): Promise<unknown> {
    try {
      const input: OrderSagaInput = { order, settings };
      await client.withDeadline(Date.now() + startTimeoutMs, () =>
        client.workflow.start(ORDER_SAGA_WORKFLOW_TYPE, {
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
            { key: OrderUpdatedAtKey, value: new Date(order.createdAt) },
          ],
          memo: {
            [ORDER_SUMMARY_MEMO_KEY]: {
              total: order.total,
              currency: order.currency,
              createdAt: order.createdAt,
            } satisfies OrderSummaryMemo,
            summary: `${order.items.length} line(s), ${toMajorUnits(order.total, order.currency)} ${order.currency}, customer ${order.customerId}`,
            [TRACE_ID_MEMO_KEY]: order.traceId,
          },
          staticSummary: `Order ${order.orderId} for ${order.customerId}`,
        }),
      );
      return undefined;
    } catch (error) {
      return error;
    }
  }

  /** Starts waiting events while slots are free; once stopping, hands them back instead. */
  function fillSlots(): void {
    while (waiting.length > 0 && (stopping || running.size < limits.maxInFlight)) {
      const message = waiting.shift()!;
      if (stopping) {
        message.nak();
        inHand.delete(message);
        continue;
      }
      const task: Promise<void> = handle(message)
        .catch((error: unknown) => {
          logger.error(
            { err: error, seq: message.seq },
            'unexpected error handling an order event; it will be redelivered',
          );
          message.nak(redeliveryDelayMs(message.info.deliveryCount));
        })
        .finally(() => {
          inHand.delete(message);
          running.delete(task);
          metrics?.inFlight.set(running.size);
          fillSlots();
          roomFreed?.();
          roomFreed = undefined;
        });
      running.add(task);
      metrics?.inFlight.set(running.size);
    }
  }

  // Pulls only what there is room for (the slots, and as many waiting), so every event taken is
  // in hand and kept in progress; a surge waits in JetStream, not in memory. Pulls wait for room
  // to reach a quarter of a worker's slots while events still wait, so pulls stay batched.
  const capacity = 2 * limits.maxInFlight;
  const batch = Math.max(1, Math.floor(limits.maxInFlight / 4));
  let pulling: ConsumerMessages | undefined;
  const puller = (async () => {
    for (let failures = 0; !stopping;) {
      const room = capacity - inHand.size;
      if (room <= 0 || (room < batch && waiting.length > 0)) {
        await Promise.race([new Promise<void>((resolve) => (roomFreed = resolve)), stopped]);
        continue;
      }
      try {
        pulling = await consumer.fetch({ max_messages: room, expires: PULL_EXPIRES_MS });
        if (stopping) await pulling.close();
        for await (const message of pulling) {
          inHand.add(message); // from now on kept in progress with the others in hand
          waiting.push(message);
          fillSlots();
        }
        failures = 0;
      } catch (error) {
        if (stopping) break;
        logger.warn({ err: error }, 'pulling OrderCreated events failed; trying again');
        await pause(holdDelayMs(failures++));
      }
    }
  })();

  return {
    inFlight: () => running.size,
    async stop() {
      if (!stopping) {
        stopping = true;
        signalStop();
        await pulling?.close().catch(() => undefined);
      }
      await puller;
      fillSlots(); // hands back the events waiting for a slot
      while (running.size > 0) await Promise.all(running);
      clearInterval(keepInProgress);
    },
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : JSON.stringify(error);
}
