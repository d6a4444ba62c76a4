// The starter alone, on its own nats-server: only events that can never start a saga go to
// ORDERS_DLQ (malformed, or older than the namespace's retention); what an operator can fix (a
// namespace missing or without the saga's search attributes) and Temporal unreachable or silent
// hold the event, counted, until it is fixed; events waiting for a slot stay in progress; each
// start call has a deadline; in-flight work stays bounded.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  Client,
  Connection,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
  ServiceError,
} from '@temporalio/client';
import { Registry } from 'prom-client';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { startPrivateNats, type PrivateNats } from '../support/private-nats.js';
import { newTraceId, publishEnvelope } from '../../lib/envelope.js';
import { createLogger } from '../../lib/logger.js';
import { ORDER_CREATED } from '../../domain/events.js';
import {
  classifyStart,
  DLQ_HEADERS,
  STARTER_RULES,
  startOrderStarter,
  type RunningStarter,
} from '../../workers/order-starter.js';
import { orderWorkflowId } from '../../workflows/contract.js';
import type { Order } from '../../domain/order.js';
import { connectClient, fastSagaSettings, startInProcessWorker } from '../support/temporal.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { startActivityTier } from '../support/activity-tier.js';
import { NAMESPACE_RETENTION, SEARCH_ATTRIBUTES } from '../../scripts/local-servers.mjs';
import { starterMetrics } from '../../lib/metrics.js';
import { inject } from 'vitest';

const exec = promisify(execFile);

const DAY_MS = 86_400_000;
const RETENTION_MS = 30 * DAY_MS;

let nats: PrivateNats;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let client: Client;
let closeClient: () => Promise<void>;
const logger = createLogger('starter-test', 'silent');

beforeAll(async () => {
  nats = await startPrivateNats('starter');
  nc = await connectNats([nats.url], 'starter-test');
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  js = jetstream(nc);
  ({ client, close: closeClient } = await connectClient());
});
afterAll(async () => {
  await nc?.close();
  await closeClient?.();
  await nats?.close();
});

function order(createdAt = new Date()): Order {
  return {
    orderId: randomUUID(),
    customerId: 'c-starter',
    items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 100 }],
    currency: 'EUR',
    total: 100,
    paymentToken: 'tok_visa',
    createdAt: createdAt.toISOString(),
    traceId: newTraceId(),
  };
}

/** The dead letters of the given orders. */
async function deadLettersOf(orders: Order[]): Promise<string[]> {
  const info = await jsm.streams.info('ORDERS_DLQ');
  const ids = new Set(orders.map((o) => o.orderId));
  const found: string[] = [];
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq += 1) {
    const message = await jsm.streams.getMessage('ORDERS_DLQ', { seq }).catch(() => null);
    const orderId = message ? (JSON.parse(message.string()) as { aggregate_id: string }).aggregate_id : '';
    if (ids.has(orderId)) found.push(orderId);
  }
  return found;
}

async function publishOrder(o: Order) {
  return publishEnvelope(js, 'orders.created', {
    id: `order-created:${o.orderId}`,
    type: ORDER_CREATED,
    aggregate_id: o.orderId,
    data: o,
    timestamp: o.createdAt,
    trace_id: o.traceId,
  });
}

/** One series of a metric in `registry` (undefined when the series does not exist). */
async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
  return values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))?.value;
}

/** The Temporal CLI against the harness's server, as an operator runs it. */
async function temporalCli(args: string[]): Promise<void> {
  await exec(inject('temporalBinary'), ['operator', ...args, '--address', inject('temporalAddress')]);
}

async function drain(starter: RunningStarter) {
  await expect
    .poll(
      async () => {
        const info = await jsm.consumers.info('ORDERS', 'order-saga-starter');
        return info.num_pending + info.num_ack_pending;
      },
      { timeout: 20_000 },
    )
    .toBe(0);
  await starter.stop();
}

describe('starter', () => {
  it("when Temporal answers a start with any gRPC status, then the rules ack, hold or retry the event, and only the event's own checks dead-letter it", () => {
    // A refusal as the client throws it: a ServiceError whose cause is the gRPC error.
    const refusal = (code: number, details: string) =>
      new ServiceError('Failed to start Workflow', {
        cause: Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} }),
      });
    expect(
      Object.entries(STARTER_RULES)
        .filter(([, rule]) => rule.action === 'dead_letter')
        .map(([outcome]) => outcome),
    ).toEqual(['poison', 'stale']);
    for (let code = 1; code <= 16; code += 1)
      expect(STARTER_RULES[classifyStart(refusal(code, 'refused'))].action, `gRPC status ${code}`).not.toBe(
        'dead_letter',
      );
    const expected: [unknown, string, string][] = [
      [undefined, 'started', 'ack'],
      [
        refusal(3, 'Namespace orders has no mapping defined for search attribute OrderStatus'),
        'search_attributes',
        'hold',
      ],
      [refusal(3, 'WorkflowId length exceeds limit.'), 'invalid_request', 'retry_later'],
      [refusal(4, 'Deadline exceeded'), 'deadline_exceeded', 'hold'],
      [refusal(5, 'Namespace orders is not found.'), 'namespace_unavailable', 'hold'],
      [refusal(7, 'Request unauthorized.'), 'permission_denied', 'hold'],
      [refusal(9, 'Namespace orders is not active.'), 'namespace_unavailable', 'hold'],
      [refusal(14, 'No connection established'), 'unavailable', 'hold'],
      [refusal(16, 'Invalid API key'), 'permission_denied', 'hold'],
      [new TypeError('cannot encode payload'), 'unknown', 'retry_later'],
    ];
    for (const [error, outcome, action] of expected) {
      expect(classifyStart(error)).toBe(outcome);
      expect(STARTER_RULES[classifyStart(error)].action).toBe(action);
    }
  });

  it('when Temporal is unreachable for many ack waits, then events are held, those waiting for a slot stay in progress, none is dead-lettered, and all start once it is back', async () => {
    const proxy = await startTcpProxy(inject('temporalAddress'));
    // Each start call gives up after two tries, so the outage outlasts many calls, as a long one does.
    const connection = await Connection.connect({
      address: proxy.address,
      interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 2 }))],
    });
    const throughProxy = new Client({ connection, namespace: 'default' });
    const taskQueue = `orders-starter-outage-${randomUUID()}`; // no worker: the sagas only need to be started
    const starter = await startOrderStarter({
      js,
      jsm,
      client: throughProxy,
      taskQueue,
      settings: fastSagaSettings(),
      // A short ack wait: before holding, these events were dead-lettered at their second delivery, within seconds.
      limits: { maxInFlight: 4, ackWaitMs: 1_000, maxAckPending: 2 * 4 },
      retentionMs: RETENTION_MS,
      logger,
    });
    try {
      await proxy.cut();
      const orders = Array.from({ length: 6 }, () => order());
      await Promise.all(orders.map(publishOrder));
      await new Promise((resolve) => setTimeout(resolve, 8_000)); // eight ack waits
      expect(await deadLettersOf(orders)).toEqual([]);
      // Four events are held in the slots and two wait for one: all of them stay in progress.
      expect((await jsm.consumers.info('ORDERS', 'order-saga-starter')).num_redelivered).toBe(0);
      await proxy.restore();
      await drain(starter);

      expect(await deadLettersOf(orders)).toEqual([]);
      for (const o of orders) {
        const handle = client.workflow.getHandle(orderWorkflowId(o.orderId));
        expect((await handle.describe()).taskQueue).toBe(taskQueue);
        await handle.terminate('test cleanup: no worker serves this task queue');
      }
    } finally {
      await starter.stop();
      await connection.close();
      await proxy.close();
    }
  }, 60_000);

  it("when an event is older than the namespace's retention, then it is dead-lettered as stale and no saga starts", async () => {
    const starter = await startOrderStarter({
      js,
      jsm,
      client,
      taskQueue: `orders-starter-stale-${randomUUID()}`,
      settings: fastSagaSettings(),
      limits: { maxInFlight: 4, ackWaitMs: 5_000, maxAckPending: 2 * 4 },
      retentionMs: RETENTION_MS,
      logger,
    });
    const stale = order(new Date(Date.now() - 31 * DAY_MS));
    const ack = await publishOrder(stale);
    await drain(starter);

    expect(await deadLettersOf([stale])).toEqual([stale.orderId]);
    const dead = await jsm.streams.getMessage('ORDERS_DLQ', { last_by_subj: 'dlq.orders.created' });
    expect(dead?.header.get(DLQ_HEADERS.sequence)).toBe(String(ack.seq));
    expect(dead?.header.get(DLQ_HEADERS.reason)).toMatch(/^stale: .*older than the namespace's retention \(720 h\)/);
    await expect(client.workflow.getHandle(orderWorkflowId(stale.orderId)).describe()).rejects.toThrow(/not found/i);
  });

  it('when the namespace does not exist yet, then lacks the search attributes, then the event is held, counted by cause, never dead-lettered, and its saga completes once the operator fixes both', async () => {
    const namespace = `starter-held-${randomUUID().slice(0, 8)}`;
    const registry = new Registry();
    const taskQueue = `orders-starter-held-${randomUUID()}`;
    const starter = await startOrderStarter({
      js,
      jsm,
      client: new Client({ connection: client.connection, namespace }),
      taskQueue,
      settings: fastSagaSettings(),
      // A short ack wait: before holding, such an event was dead-lettered at its second delivery, within a second or two.
      limits: { maxInFlight: 4, ackWaitMs: 1_000, maxAckPending: 2 * 4 },
      retentionMs: RETENTION_MS,
      logger,
      metrics: starterMetrics(registry),
    });
    const tier = await startActivityTier();
    let worker: Awaited<ReturnType<typeof startInProcessWorker>> | undefined;
    try {
      const o = order();
      await tier.inventory.restock(o.items[0]!.sku, 10);
      await publishOrder(o);
      await new Promise((resolve) => setTimeout(resolve, 5_000)); // five ack waits: the old delivery limit (2) was reached in about one
      expect(await deadLettersOf([o])).toEqual([]);
      const refused = (outcome: string) => metricValue(registry, 'starter_start_refused_total', { outcome });
      expect(await refused('namespace_unavailable')).toBeGreaterThan(0);
      expect(await metricValue(registry, 'starter_held_events', { outcome: 'namespace_unavailable' })).toBe(1);

      // The operator creates the namespace, but forgets the search attributes.
      await temporalCli(['namespace', 'create', '--namespace', namespace, '--retention', NAMESPACE_RETENTION]);
      await expect.poll(() => refused('search_attributes'), { timeout: 30_000, interval: 500 }).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(await deadLettersOf([o])).toEqual([]);
      expect(await metricValue(registry, 'starter_held_events', { outcome: 'search_attributes' })).toBe(1);

      // ...then registers them: the held event starts its saga, which a worker of the namespace completes.
      const attributes = Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--name', name, '--type', type]);
      await temporalCli(['search-attribute', 'create', '--namespace', namespace, ...attributes]);
      worker = await startInProcessWorker(tier.clients, { namespace, taskQueue });
      await drain(starter);
      const handle = new Client({ connection: client.connection, namespace }).workflow.getHandle(
        orderWorkflowId(o.orderId),
      );
      expect((await handle.result()).status).toBe('COMPLETED');
      expect(await deadLettersOf([o])).toEqual([]);
      expect(await metricValue(registry, 'starter_sagas_total', { result: 'started' })).toBe(1);
      expect(await metricValue(registry, 'starter_held_events', { outcome: 'search_attributes' })).toBe(0);
    } finally {
      await starter.stop();
      await worker?.stop();
      await tier.close();
    }
  }, 120_000);

  it('when Temporal accepts connections but never answers, then each start ends at its deadline, the event is held, and the starter stops at once', async () => {
    // A server that takes the TCP connection and says nothing: a start without a deadline waits forever.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const connection = Connection.lazy({ address: `127.0.0.1:${(silent.address() as AddressInfo).port}` });
    const registry = new Registry();
    const starter = await startOrderStarter({
      js,
      jsm,
      client: new Client({ connection, namespace: 'default' }),
      taskQueue: `orders-starter-silent-${randomUUID()}`,
      settings: fastSagaSettings(),
      limits: { maxInFlight: 4, ackWaitMs: 1_000, maxAckPending: 2 * 4 },
      startTimeoutMs: 500,
      retentionMs: RETENTION_MS,
      logger,
      metrics: starterMetrics(registry),
    });
    const o = order();
    try {
      await publishOrder(o);
      await expect.poll(() => starter.inFlight(), { timeout: 5_000 }).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 2_000)); // several deadlines
      const held = await metricValue(registry, 'starter_held_events', { outcome: 'deadline_exceeded' });
      const stopping = starter.stop().then(() => 'stopped');
      const outcome = await Promise.race([
        stopping,
        new Promise((resolve) => setTimeout(() => resolve('still waiting for the start call after 3 s'), 3_000)),
      ]);
      expect(outcome).toBe('stopped');
      expect(held).toBe(1); // each start ended at its deadline, and the event was held for it
      expect(await deadLettersOf([o])).toEqual([]);
      const info = await jsm.consumers.info('ORDERS', 'order-saga-starter');
      expect(info.num_pending + info.num_ack_pending).toBe(1); // handed back to JetStream, not acknowledged
    } finally {
      // Bounded, so that a starter that never stops fails the assertion above instead of timing out here.
      await Promise.race([starter.stop(), new Promise((resolve) => setTimeout(resolve, 5_000))]);
      await connection.close();
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
    // The next starter, on a Temporal that answers, starts it.
    const taskQueue = `orders-starter-silent-${randomUUID()}`;
    const next = await startOrderStarter({
      js,
      jsm,
      client,
      taskQueue,
      settings: fastSagaSettings(),
      limits: { maxInFlight: 4, ackWaitMs: 5_000, maxAckPending: 2 * 4 },
      retentionMs: RETENTION_MS,
      logger,
    });
    await drain(next);
    const handle = client.workflow.getHandle(orderWorkflowId(o.orderId));
    expect((await handle.describe()).taskQueue).toBe(taskQueue);
    await handle.terminate('test cleanup: no worker serves this task queue');
  }, 60_000);

  it('when many events arrive at once, then no more than maxInFlight are handled at a time and all start', async () => {
    const taskQueue = `orders-starter-${randomUUID()}`; // no worker: the sagas only need to be started
    const starter = await startOrderStarter({
      js,
      jsm,
      client,
      taskQueue,
      settings: fastSagaSettings(),
      limits: { maxInFlight: 3, ackWaitMs: 30_000, maxAckPending: 2 * 3 },
      retentionMs: RETENTION_MS,
      logger,
    });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, starter.inFlight())), 1);
    const orders = Array.from({ length: 30 }, order);
    await Promise.all(orders.map(publishOrder));
    // Every saga started before the starter stops: the consumer's counters alone can read 0 while
    // an event whose start ran past its deadline under load waits, held, for its redelivery (a
    // full CI run once saw one saga missing after them).
    const started = async () =>
      (
        await Promise.all(
          orders.map((o) =>
            client.workflow
              .getHandle(orderWorkflowId(o.orderId))
              .describe()
              .then(
                () => 1,
                () => 0,
              ),
          ),
        )
      ).reduce((sum: number, one: number) => sum + one, 0);
    await expect.poll(started, { timeout: 60_000, interval: 500 }).toBe(orders.length);
    await drain(starter);
    clearInterval(sampler);

    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(3);
    for (const o of orders) {
      const handle = client.workflow.getHandle(orderWorkflowId(o.orderId));
      expect((await handle.describe()).taskQueue).toBe(taskQueue);
      await handle.terminate('test cleanup: no worker serves this task queue');
    }
  });
});
