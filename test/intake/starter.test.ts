// The starter alone, on its own nats-server: events that keep failing to start a saga go to
// ORDERS_DLQ at the delivery limit, and in-flight work never exceeds its bound.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Client } from '@temporalio/client';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { startPrivateNats, type PrivateNats } from '../support/private-nats.js';
import { newTraceId, publishEnvelope } from '../../lib/envelope.js';
import { createLogger } from '../../lib/logger.js';
import { ORDER_CREATED } from '../../lib/order-event.js';
import { DLQ_HEADERS, startOrderStarter, type RunningStarter } from '../../workers/order-starter.js';
import { orderWorkflowId, type Order } from '../../workflows/contract.js';
import { connectClient, fastSagaSettings } from '../support/temporal.js';

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

function order(): Order {
  return {
    orderId: randomUUID(),
    customerId: 'c-starter',
    items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 100 }],
    currency: 'EUR',
    total: 100,
    paymentToken: 'tok_visa',
    createdAt: new Date().toISOString(),
    traceId: newTraceId(),
  };
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
  it('when a valid event can never start a saga, then at the delivery limit it goes to ORDERS_DLQ with the reason', async () => {
    const misconfigured = new Client({ connection: client.connection, namespace: 'no-such-namespace' });
    const starter = await startOrderStarter({
      js,
      jsm,
      client: misconfigured,
      taskQueue: 'unused',
      settings: fastSagaSettings(),
      limits: { maxInFlight: 4, maxDeliver: 2, ackWaitMs: 5_000 },
      logger,
    });
    const o = order();
    const ack = await publishOrder(o);
    await drain(starter);

    const dead = await jsm.streams.getMessage('ORDERS_DLQ', { last_by_subj: 'dlq.orders.created' });
    expect(dead?.header.get(DLQ_HEADERS.sequence)).toBe(String(ack.seq));
    expect(dead?.header.get(DLQ_HEADERS.deliveries)).toBe('2');
    expect(dead?.header.get(DLQ_HEADERS.reason)).toMatch(/delivery limit \(2\) reached: .*no-such-namespace/);
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
      limits: { maxInFlight: 3, maxDeliver: 5, ackWaitMs: 30_000 },
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
