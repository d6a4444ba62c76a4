// The starter alone, on its own nats-server: only events that can never start a saga go to
// ORDERS_DLQ (refused for good at the delivery limit, or older than the namespace's retention);
// while Temporal is unreachable events are held, not dead-lettered; in-flight work stays bounded.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { startPrivateNats, type PrivateNats } from '../support/private-nats.js';
import { newTraceId, publishEnvelope } from '../../lib/envelope.js';
import { createLogger } from '../../lib/logger.js';
import { ORDER_CREATED } from '../../domain/events.js';
import { DLQ_HEADERS, startOrderStarter, type RunningStarter } from '../../workers/order-starter.js';
import { orderWorkflowId } from '../../workflows/contract.js';
import type { Order } from '../../domain/order.js';
import { connectClient, fastSagaSettings } from '../support/temporal.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { inject } from 'vitest';

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
  it('when Temporal is unreachable far longer than the delivery limit allows, then events are held, none is dead-lettered, and all start once it is back', async () => {
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
      // Short ack wait and delivery limit: before holding, these events were dead-lettered within seconds.
      limits: { maxInFlight: 4, maxDeliver: 2, ackWaitMs: 1_000, maxAckPending: 2 * 4 },
      retentionMs: RETENTION_MS,
      logger,
    });
    try {
      await proxy.cut();
      const orders = Array.from({ length: 6 }, () => order());
      await Promise.all(orders.map(publishOrder));
      await new Promise((resolve) => setTimeout(resolve, 8_000)); // eight ack waits, four times the delivery limit
      expect(await deadLettersOf(orders)).toEqual([]);
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
      limits: { maxInFlight: 4, maxDeliver: 5, ackWaitMs: 5_000, maxAckPending: 2 * 4 },
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

  it('when a valid event can never start a saga, then at the delivery limit it goes to ORDERS_DLQ with the reason', async () => {
    const misconfigured = new Client({ connection: client.connection, namespace: 'no-such-namespace' });
    const starter = await startOrderStarter({
      js,
      jsm,
      client: misconfigured,
      taskQueue: 'unused',
      settings: fastSagaSettings(),
      limits: { maxInFlight: 4, maxDeliver: 2, ackWaitMs: 5_000, maxAckPending: 2 * 4 },
      retentionMs: RETENTION_MS,
      logger,
    });
    const o = order();
    const ack = await publishOrder(o);
    await drain(starter);

    const dead = await jsm.streams.getMessage('ORDERS_DLQ', { last_by_subj: 'dlq.orders.created' });
    expect(dead?.header.get(DLQ_HEADERS.sequence)).toBe(String(ack.seq));
    expect(dead?.header.get(DLQ_HEADERS.deliveries)).toBe('2');
    expect(dead?.header.get(DLQ_HEADERS.reason)).toMatch(/Temporal refused the start 2 times: .*no-such-namespace/);
    expect(JSON.parse(dead!.string()).aggregate_id).toBe(o.orderId); // the original event, untouched
  });

  it('when many events arrive at once, then no more than maxInFlight are handled at a time and all start', async () => {
    const taskQueue = `orders-starter-${randomUUID()}`; // no worker: the sagas only need to be started
    const starter = await startOrderStarter({
      js,
      jsm,
      client,
      taskQueue,
      settings: fastSagaSettings(),
      limits: { maxInFlight: 3, maxDeliver: 5, ackWaitMs: 30_000, maxAckPending: 2 * 3 },
      retentionMs: RETENTION_MS,
      logger,
    });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, starter.inFlight())), 1);
    const orders = Array.from({ length: 30 }, order);
    await Promise.all(orders.map(publishOrder));
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
