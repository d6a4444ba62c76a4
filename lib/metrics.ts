// Prometheus metrics of this service, every one defined here. One registry per process, default
// Node metrics included.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** payment_process_duration_seconds: gateway calls by operation (charge, refund) and outcome. */
export function paymentDurationHistogram(registry: Registry): Histogram<'operation' | 'outcome'> {
  return new Histogram({
    name: 'payment_process_duration_seconds',
    help: 'Duration of payment gateway calls, by operation and outcome (success, declined, error, circuit_open)',
    labelNames: ['operation', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
}

/** Saga figures recorded by the activities. */
export interface SagaMetrics {
  stepDuration: Histogram<'step' | 'outcome'>;
  outcomes: Counter<'status'>;
}

/**
 * A counter with each label value present from the start at 0: Prometheus's increase() and rate()
 * see a series' first sample as its starting point, so a series born at 1 (the first dead letter,
 * the first failed compensation) would never show an increase and its alert would never fire.
 */
function withZeroes<Label extends string>(
  counter: Counter<Label>,
  label: Label,
  values: readonly string[],
): Counter<Label> {
  for (const value of values) counter.inc({ [label]: value } as Partial<Record<Label, string>>, 0);
  return counter;
}

export function sagaMetrics(registry: Registry): SagaMetrics {
  return {
    stepDuration: new Histogram({
      name: 'saga_step_duration_seconds',
      help: 'Duration of saga step and compensation attempts, by step and outcome (success, business_failure, error)',
      labelNames: ['step', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    outcomes: withZeroes(
      new Counter({
        name: 'saga_outcomes_total',
        help: 'Sagas that reached a final status (or COMPENSATION_FAILED), counted once per saga',
        labelNames: ['status'],
        registers: [registry],
      }),
      'status',
      ['COMPLETED', 'COMPENSATED', 'CANCELLED', 'REJECTED', 'COMPENSATION_FAILED'],
    ),
  };
}

/** payment_circuit_open: each payment operation's breaker, read at scrape time. */
export function paymentCircuitGauge<Operation extends string>(
  registry: Registry,
  operations: readonly Operation[],
  stateOf: (operation: Operation) => 'closed' | 'half-open' | 'open',
): Gauge<'operation'> {
  return new Gauge({
    name: 'payment_circuit_open',
    help: 'Payment gateway circuit breaker state per operation: 0 closed, 0.5 half-open, 1 open',
    labelNames: ['operation'],
    registers: [registry],
    collect() {
      for (const operation of operations)
        this.set({ operation }, { closed: 0, 'half-open': 0.5, open: 1 }[stateOf(operation)]);
    },
  });
}

/**
 * The starter's figures: events in hand, redeliveries, dead letters, starts by result, events held
 * and starts refused by outcome (the starter sets each label value of its rules to 0 at start).
 */
export interface StarterMetrics {
  inFlight: Gauge;
  redeliveries: Counter;
  deadLettered: Counter<'reason'>;
  started: Counter<'result'>;
  held: Gauge<'outcome'>;
  refused: Counter<'outcome'>;
}

export function starterMetrics(registry: Registry): StarterMetrics {
  return {
    inFlight: new Gauge({
      name: 'starter_in_flight',
      help: 'OrderCreated events being turned into sagas',
      registers: [registry],
    }),
    redeliveries: new Counter({
      name: 'starter_redeliveries_total',
      help: 'OrderCreated events delivered more than once',
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'starter_dead_lettered_total',
      help: 'Events moved to ORDERS_DLQ, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    started: new Counter({
      name: 'starter_sagas_total',
      help: 'Saga starts by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    held: new Gauge({
      name: 'starter_held_events',
      help: 'OrderCreated events held in hand until Temporal takes their start, by what the last attempt came to',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    refused: new Counter({
      name: 'starter_start_refused_total',
      help: 'Saga starts Temporal refused for a cause an operator must fix, by outcome (the event is held, not dead-lettered)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}

/** What the shared ORDERS consumer has not finished: not yet delivered, delivered and unacknowledged, and how old the oldest of those is. */
export interface ConsumerBacklog {
  pending: number;
  ackPending: number;
  oldestUnackedAgeSeconds: number;
}

/** starter_consumer_*: the ORDERS consumer's backlog, read from JetStream at each scrape (every worker reports the same consumer). */
export function consumerBacklogMetrics(registry: Registry, read: () => Promise<ConsumerBacklog>): void {
  let last: Promise<ConsumerBacklog | undefined> | undefined;
  // One read per scrape for the three gauges.
  const current = () =>
    (last ??= read()
      .catch(() => undefined)
      .finally(() => setTimeout(() => (last = undefined), 1_000)));
  const gauge = (name: string, help: string, pick: (backlog: ConsumerBacklog) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const backlog = await current();
        if (backlog) this.set(pick(backlog));
      },
    });
  gauge('starter_consumer_pending', 'OrderCreated events in ORDERS not yet delivered to any starter', (b) => b.pending);
  gauge('starter_consumer_ack_pending', 'OrderCreated events delivered and not yet acknowledged', (b) => b.ackPending);
  gauge(
    'starter_consumer_oldest_unacked_age_seconds',
    'Age of the oldest OrderCreated event delivered and not yet acknowledged (0 when none)',
    (b) => b.oldestUnackedAgeSeconds,
  );
}

/** A stream's size against its byte limit (lib/nats.ts readStreamFill; maxBytes -1: no limit). */
export interface StreamFill {
  stream: string;
  bytes: number;
  maxBytes: number;
}

/**
 * jetstream_stream_bytes, jetstream_stream_max_bytes and jetstream_stream_fill_ratio {stream}: each
 * stream's size against its byte limit, read from JetStream at each scrape (alert OrderSagaStreamFilling).
 * The worker reports the contract streams, the ingress its idempotency bucket.
 */
export function streamFillMetrics(registry: Registry, read: () => Promise<StreamFill[]>): void {
  let last: Promise<StreamFill[]> | undefined;
  // One read per scrape for the three gauges; a failed read leaves the last values.
  const current = () =>
    (last ??= read()
      .catch(() => [])
      .finally(() => setTimeout(() => (last = undefined), 1_000)));
  const gauge = (name: string, help: string, pick: (fill: StreamFill) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['stream'],
      registers: [registry],
      async collect() {
        for (const fill of await current()) {
          const value = pick(fill);
          if (value !== undefined) this.set({ stream: fill.stream }, value);
        }
      },
    });
  const limited = (fill: StreamFill) => fill.maxBytes > 0;
  gauge('jetstream_stream_bytes', 'Bytes a JetStream stream holds', (fill) => fill.bytes);
  gauge('jetstream_stream_max_bytes', "A JetStream stream's byte limit", (fill) =>
    limited(fill) ? fill.maxBytes : undefined,
  );
  gauge(
    'jetstream_stream_fill_ratio',
    'Bytes a JetStream stream holds over its byte limit (1: full; see lib/nats.ts for what each stream does then)',
    (fill) => (limited(fill) ? fill.bytes / fill.maxBytes : undefined),
  );
}

/** order_publish_duration_seconds: the ingress storing OrderCreated events in JetStream. */
export function orderPublishDurationHistogram(registry: Registry): Histogram<'outcome'> {
  return new Histogram({
    name: 'order_publish_duration_seconds',
    help: 'Time to store an OrderCreated event in JetStream, by outcome',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });
}
