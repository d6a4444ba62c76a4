// The order saga against the real dev server, NATS, the payment sandbox and an inventory store.
// Each test asserts the ledger, stock and audit stream, not only the final status.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import {
  approveOrderSignal,
  cancelOrderSignal,
  getStatusQuery,
  orderWorkflowId,
  resolveManuallySignal,
  retryCompensationSignal,
  type Order,
  type OrderSagaInput,
  type OrderStatus,
  type SagaSettings,
} from '../../workflows/contract.js';
import { newTraceId } from '../../lib/envelope.js';
import { auditEventsOf, createTestStack, readStream, type TestStack } from '../support/stack.js';
import { connectClient, fastSagaSettings, startOrderWorker, type RunningWorker } from '../support/temporal.js';
import { recordHistory } from '../support/histories.js';

let stack: TestStack;
let worker: RunningWorker;
let client: Client;
let closeClient: () => Promise<void>;

beforeAll(async () => {
  stack = await createTestStack({ breaker: { threshold: 3, halfOpenAfterMs: 1_500 }, paymentTimeoutMs: 500 });
  worker = await startOrderWorker(stack.clients);
  ({ client, close: closeClient } = await connectClient());
});

afterAll(async () => {
  await worker?.stop();
  await closeClient?.();
  await stack?.close();
});

beforeEach(async () => {
  await stack.gateway.setFaults({ errorRate: 0, latencyMs: 0, outage: false, refundOutage: false, chargeThenTimeout: 0 });
});

/** A fresh SKU with `stock` units, so tests never share stock. */
async function newSku(stock: number): Promise<string> {
  const sku = `SKU-${randomUUID().slice(0, 8)}`;
  await stack.inventory.restock(sku, stock);
  return sku;
}

function order(sku: string, overrides: Partial<Order> = {}): Order {
  return {
    orderId: randomUUID(),
    customerId: 'c-42',
    items: [{ sku, quantity: 2, unitPrice: 1_250 }],
    currency: 'EUR',
    total: 2_500,
    paymentToken: 'tok_visa',
    email: 'ada@example.com',
    createdAt: new Date().toISOString(),
    traceId: newTraceId(),
    ...overrides,
  };
}

async function start(o: Order, settings: Partial<SagaSettings> = {}) {
  const input: OrderSagaInput = { order: o, settings: fastSagaSettings(settings) };
  return client.workflow.start('orderSaga', { workflowId: orderWorkflowId(o.orderId), taskQueue: worker.taskQueue, args: [input] });
}

async function waitForStatus(o: Order, status: OrderStatus, timeoutMs = 20_000) {
  const handle = client.workflow.getHandle(orderWorkflowId(o.orderId));
  const deadline = Date.now() + timeoutMs;
  let last: OrderStatus | undefined;
  while (Date.now() < deadline) {
    last = (await handle.query(getStatusQuery)).status;
    if (last === status) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`order ${o.orderId} did not reach ${status} (last: ${last})`);
}

const typesOf = (events: { type: string }[]) => events.map((e) => e.type);

describe('orderSaga', () => {
  it('when everything succeeds, then it reserves, charges once, confirms and completes, audited in order', async () => {
    const sku = await newSku(10);
    const o = order(sku);
    const result = await (await start(o)).result();

    expect(result.status).toBe('COMPLETED');
    const ledger = await stack.gateway.ledger(o.orderId);
    expect(ledger.charges).toHaveLength(1);
    expect(ledger.netCaptured).toBe(o.total);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 8, reserved: 2 }]);
    const audit = await auditEventsOf(stack, o.orderId);
    expect(typesOf(audit)).toEqual(['OrderReceived', 'OrderReservingInventory', 'OrderChargingPayment', 'OrderNotifying', 'OrderCompleted']);
    expect(audit.map((e) => e.id)).toEqual([1, 2, 3, 4, 5].map((n) => `${orderWorkflowId(o.orderId)}:${n}`));
    expect(audit.every((e) => e.trace_id === o.traceId && e.headers['Nats-Msg-Id'] === e.id)).toBe(true);
    const notices = (await readStream(stack.js, stack.jsm, 'NOTIFICATIONS')).filter((e) => e.aggregate_id === o.orderId);
    expect(notices.map((n) => n.subject)).toEqual(['notifications.confirmation']);
    expect(JSON.stringify(result)).not.toContain(o.paymentToken);
    await recordHistory(client, o, 'completed');
  });
});
