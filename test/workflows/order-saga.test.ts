// The order saga against the real dev server, NATS, the payment sandbox and an inventory store.
// Each test asserts the ledger, stock and audit stream, not only the final status.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import {
  approveOrderSignal,
  auditEventId,
  cancelOrderSignal,
  getStatusQuery,
  orderWorkflowId,
  resolveManuallySignal,
  retryCompensationSignal,
  type OrderSagaInput,
  type OrderStatus,
} from '../../workflows/contract.js';
import type { Order } from '../../domain/order.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import type { orderSaga } from '../../workflows/order-saga.js';
import { newTraceId } from '../../lib/envelope.js';
import { NO_FAULTS } from '../../sandbox/payment-gateway/server.js';
import { auditEventsOf, readStream } from '../support/streams.js';
import type { ActivityTier } from '../support/activity-tier.js';
import { fastSagaSettings, type RunningWorker } from '../support/temporal.js';
import { startSagaTier, type SagaTier } from '../support/saga-tier.js';
import { recordHistory } from '../support/histories.js';

let stack: ActivityTier;
let worker: RunningWorker;
let client: Client;
let environment: SagaTier;

beforeAll(async () => {
  environment = await startSagaTier({
    breaker: { threshold: 3, halfOpenAfterMs: 1_500 },
    paymentTimeoutMs: 500,
  });
  ({ stack, worker, client } = environment);
});

afterAll(() => environment?.close());

beforeEach(async () => {
  await stack.gateway.setFaults(NO_FAULTS);
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
  return client.workflow.start<typeof orderSaga>('orderSaga', {
    workflowId: orderWorkflowId(o.orderId),
    taskQueue: worker.taskQueue,
    args: [input],
  });
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
    const handle = await start(o);
    const result = await handle.result();

    expect(result.status).toBe('COMPLETED');
    const ledger = await stack.gateway.ledger(o.orderId);
    expect(ledger.charges).toHaveLength(1);
    expect(ledger.netCaptured).toBe(o.total);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 8, reserved: 2 }]);
    const audit = await auditEventsOf(stack, o.orderId);
    expect(typesOf(audit)).toEqual([
      'OrderReceived',
      'OrderReservingInventory',
      'OrderChargingPayment',
      'OrderNotifying',
      'OrderCompleted',
    ]);
    expect(audit.map((e) => e.id)).toEqual(
      [1, 2, 3, 4, 5].map((n) => auditEventId(orderWorkflowId(o.orderId), handle.firstExecutionRunId, n)),
    );
    expect(audit.every((e) => e.trace_id === o.traceId && e.headers['Nats-Msg-Id'] === e.id)).toBe(true);
    const notices = (await readStream(stack.js, stack.jsm, 'NOTIFICATIONS')).filter(
      (e) => e.aggregate_id === o.orderId,
    );
    expect(notices.map((n) => n.subject)).toEqual(['notifications.confirmation']);
    expect(JSON.stringify(result)).not.toContain(o.paymentToken);
    await recordHistory(client, o, 'completed');
  });

  it('when the card is declined, then inventory is released, nothing is captured and each compensation is audited once', async () => {
    const sku = await newSku(5);
    const o = order(sku, { paymentToken: 'tok_decline' });
    const result = await (await start(o)).result();

    expect(result.status).toBe('COMPENSATED');
    expect(result.failure).toMatchObject({ type: 'PaymentDeclined', step: 'CHARGING_PAYMENT' });
    expect(result.compensations).toEqual([
      { step: 'refund', status: 'DONE' },
      { step: 'release', status: 'DONE' },
      { step: 'notify', status: 'DONE' },
    ]);
    const ledger = await stack.gateway.ledger(o.orderId);
    expect(ledger.charges).toHaveLength(0);
    expect(ledger.netCaptured).toBe(0);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 5, reserved: 0 }]);
    const audit = await auditEventsOf(stack, o.orderId);
    expect(typesOf(audit)).toEqual([
      'OrderReceived',
      'OrderReservingInventory',
      'OrderChargingPayment',
      'OrderCompensating',
      'RefundCompensated',
      'ReleaseCompensated',
      'OutcomeNoticeSent',
      'OrderCompensated',
    ]);
    expect(audit.find((e) => e.type === 'RefundCompensated')?.data).toMatchObject({ refunded: false });
    expect(audit.find((e) => e.type === 'ReleaseCompensated')?.data).toMatchObject({ released: true });
    await recordHistory(client, o, 'declined');
  });

  it('when an item is out of stock, then nothing is charged and no stock moves', async () => {
    const sku = await newSku(1);
    const o = order(sku); // wants 2
    const result = await (await start(o)).result();

    expect(result.status).toBe('COMPENSATED');
    expect(result.failure).toMatchObject({ type: 'OutOfStock', step: 'RESERVING_INVENTORY' });
    expect((await stack.gateway.ledger(o.orderId)).calls.charges).toBe(0);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 1, reserved: 0 }]);
    expect(typesOf(await auditEventsOf(stack, o.orderId))).toEqual([
      'OrderReceived',
      'OrderReservingInventory',
      'OrderCompensating',
      'ReleaseCompensated',
      'OutcomeNoticeSent',
      'OrderCompensated',
    ]);
    await recordHistory(client, o, 'out-of-stock');
  });

  it('when the gateway is down, then the breaker opens and spares it, and the saga completes after recovery', async () => {
    const sku = await newSku(3);
    const o = order(sku);
    await stack.gateway.setFaults({ outage: true });
    const handle = await start(o, { stepMaxAttempts: 50, retryMaxIntervalMs: 200 });

    await expect.poll(() => stack.payments.circuitState('charge'), { timeout: 15_000 }).toBe('open');
    const callsWhenOpened = (await stack.gateway.ledger()).calls.charges;
    await new Promise((r) => setTimeout(r, 800)); // shorter than halfOpenAfter (1.5 s)
    expect((await stack.gateway.ledger()).calls.charges).toBe(callsWhenOpened);

    await stack.gateway.setFaults({ outage: false });
    const result = await handle.result();
    expect(result.status).toBe('COMPLETED');
    expect((await stack.gateway.ledger(o.orderId)).charges).toHaveLength(1);
    await recordHistory(client, o, 'gateway-outage');
  });

  it('when the gateway charges and then times out, then the retry finds the same charge: exactly one in the ledger', async () => {
    const sku = await newSku(3);
    const o = order(sku);
    await stack.gateway.setFaults({ chargeThenTimeout: 1 });
    const result = await (await start(o)).result();

    expect(result.status).toBe('COMPLETED');
    const ledger = await stack.gateway.ledger(o.orderId);
    expect(ledger.calls.charges).toBeGreaterThanOrEqual(2); // the timed-out call and its retry
    expect(ledger.charges).toHaveLength(1);
    expect(result.chargeId).toBe(ledger.charges[0]!.id);
    await recordHistory(client, o, 'charge-then-timeout');
  });

  it('when an order above the threshold is approved, then it completes and records the approver', async () => {
    const sku = await newSku(3);
    const o = order(sku);
    const handle = await start(o, { approvalThreshold: 1_000 });
    await waitForStatus(o, 'AWAITING_APPROVAL');
    await handle.signal(approveOrderSignal, { approvedBy: 'grace' });
    const result = await handle.result();

    expect(result.status).toBe('COMPLETED');
    expect(result.approval).toEqual({ required: true, approvedBy: 'grace' });
    expect((await stack.gateway.ledger(o.orderId)).charges).toHaveLength(1);
    await recordHistory(client, o, 'approved');
  });

  it('when an order awaiting approval is cancelled, then it ends CANCELLED with nothing reserved or charged', async () => {
    const sku = await newSku(3);
    const o = order(sku);
    const handle = await start(o, { approvalThreshold: 1_000 });
    await waitForStatus(o, 'AWAITING_APPROVAL');
    await handle.signal(cancelOrderSignal, { reason: 'customer changed their mind' });
    const result = await handle.result();

    expect(result.status).toBe('CANCELLED');
    expect(result.cancellation).toEqual({ reason: 'customer changed their mind' });
    expect((await stack.gateway.ledger(o.orderId)).calls.charges).toBe(0);
    expect(await stack.inventory.reservationStatus(o.orderId)).toBeUndefined();
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 3, reserved: 0 }]);
    expect(typesOf(await auditEventsOf(stack, o.orderId))).toEqual([
      'OrderReceived',
      'OrderAwaitingApproval',
      'OutcomeNoticeSent',
      'OrderCancelled',
    ]);
    const notices = (await readStream(stack.js, stack.jsm, 'NOTIFICATIONS')).filter(
      (e) => e.aggregate_id === o.orderId,
    );
    expect(notices.map((n) => n.subject)).toEqual(['notifications.cancellation']);
    await recordHistory(client, o, 'cancelled-awaiting-approval');
  });

  it('when nobody approves in time, then the order is REJECTED and the customer told', async () => {
    const sku = await newSku(3);
    const o = order(sku);
    const result = await (await start(o, { approvalThreshold: 1_000, approvalTimeoutMs: 500 })).result();

    expect(result.status).toBe('REJECTED');
    expect(result.failure?.type).toBe('ApprovalTimedOut');
    expect((await stack.gateway.ledger(o.orderId)).calls.charges).toBe(0);
    const notices = (await readStream(stack.js, stack.jsm, 'NOTIFICATIONS')).filter(
      (e) => e.aggregate_id === o.orderId,
    );
    expect(notices.map((n) => n.subject)).toEqual(['notifications.rejection']);
    await recordHistory(client, o, 'rejected');
  });

  it('when a cancel arrives while the charge is being retried, then retries stop and the stock is released', async () => {
    const sku = await newSku(3);
    const o = order(sku);
    await stack.gateway.setFaults({ outage: true });
    const handle = await start(o, { stepMaxAttempts: 100 });
    await waitForStatus(o, 'CHARGING_PAYMENT');
    // The charge is being retried: the gateway has refused it at least once (the status changes before the first try).
    await expect
      .poll(async () => (await stack.gateway.ledger(o.orderId)).calls.charges, { timeout: 10_000 })
      .toBeGreaterThan(0);
    await handle.signal(cancelOrderSignal, { reason: 'too slow' });
    await stack.gateway.setFaults({ outage: false });
    const result = await handle.result();

    expect(result.status).toBe('CANCELLED');
    expect((await stack.gateway.ledger(o.orderId)).netCaptured).toBe(0);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 3, reserved: 0 }]);
    expect(typesOf(await auditEventsOf(stack, o.orderId)).slice(-5)).toEqual([
      'OrderCompensating',
      'RefundCompensated',
      'ReleaseCompensated',
      'OutcomeNoticeSent',
      'OrderCancelled',
    ]);
    await recordHistory(client, o, 'cancelled-while-charging');
  });

  it('when a compensation keeps failing, then the saga waits in COMPENSATION_FAILED and retryCompensation finishes it', async () => {
    const sku = await newSku(3);
    const o = order(sku, { paymentToken: 'tok_decline' });
    await stack.gateway.setFaults({ refundOutage: true });
    const handle = await start(o);
    await waitForStatus(o, 'COMPENSATION_FAILED');

    const stuck = await handle.query(getStatusQuery);
    expect(stuck.compensations[0]).toMatchObject({ step: 'refund', status: 'FAILED' });
    expect(stuck.compensations.slice(1).map((c) => c.status)).toEqual(['PENDING', 'PENDING']);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 1, reserved: 2 }]); // newest first: release waits for the refund

    await stack.gateway.setFaults({ refundOutage: false });
    await handle.signal(retryCompensationSignal, {});
    const result = await handle.result();
    expect(result.status).toBe('COMPENSATED');
    expect(result.compensations.map((c) => c.status)).toEqual(['DONE', 'DONE', 'DONE']);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 3, reserved: 0 }]);
    const types = typesOf(await auditEventsOf(stack, o.orderId));
    expect(types.slice(types.indexOf('OrderCompensationFailed'))).toEqual([
      'OrderCompensationFailed',
      'OrderCompensating',
      'RefundCompensated',
      'ReleaseCompensated',
      'OutcomeNoticeSent',
      'OrderCompensated',
    ]);
    await recordHistory(client, o, 'compensation-failed-then-retried');
  });

  it('when an operator resolves a stuck compensation by hand, then the saga records the note and runs the rest', async () => {
    const sku = await newSku(3);
    const o = order(sku, { paymentToken: 'tok_decline' });
    await stack.gateway.setFaults({ refundOutage: true });
    const handle = await start(o);
    await waitForStatus(o, 'COMPENSATION_FAILED');
    await handle.signal(resolveManuallySignal, { note: 'refunded in the provider dashboard, ticket OPS-7' });
    const result = await handle.result();

    expect(result.status).toBe('COMPENSATED');
    expect(result.resolution).toEqual({ note: 'refunded in the provider dashboard, ticket OPS-7', step: 'refund' });
    expect(result.compensations.map((c) => c.status)).toEqual(['RESOLVED_MANUALLY', 'DONE', 'DONE']);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 3, reserved: 0 }]);
    expect(typesOf(await auditEventsOf(stack, o.orderId))).toContain('CompensationResolvedManually');
    await recordHistory(client, o, 'compensation-failed-then-resolved');
  });

  it('when signals arrive that do not apply, then they are ignored and the saga is unchanged', async () => {
    const sku = await newSku(3);
    const o = order(sku, { paymentToken: 'tok_decline' });
    await stack.gateway.setFaults({ refundOutage: true });
    const handle = await start(o);
    await waitForStatus(o, 'COMPENSATION_FAILED');
    await handle.signal(approveOrderSignal, { approvedBy: 'nobody' }); // not awaiting approval
    await handle.signal(cancelOrderSignal, { reason: 'late' }); // already unwinding
    const status = await handle.query(getStatusQuery);
    expect(status.status).toBe('COMPENSATION_FAILED');
    expect(status.cancellation).toBeUndefined();
    expect(status.approval.approvedBy).toBeUndefined();
    await stack.gateway.setFaults({ refundOutage: false });
    await handle.signal(retryCompensationSignal, {});
    expect((await handle.result()).status).toBe('COMPENSATED');
  });

  it('when a charge outlives the client timeout and lands later, then retries meet it in progress and find it: one charge, completed', async () => {
    const sku = await newSku(3);
    const o = order(sku);
    await stack.gateway.setFaults({ chargeLatencyMs: 1_500 }); // the client gives up after 500 ms
    const result = await (await start(o, { stepMaxAttempts: 20 })).result();

    expect(result.status).toBe('COMPLETED');
    const ledger = await stack.gateway.ledger(o.orderId);
    expect(ledger.charges).toHaveLength(1);
    expect(ledger.calls.charges).toBeGreaterThan(1); // retried while the first was still being processed
    expect(ledger.netCaptured).toBe(o.total);
  });

  it('when a cancel arrives while a slow charge is still being processed, then the refund waits for it to land and returns it: net 0, CANCELLED', async () => {
    const sku = await newSku(3);
    const o = order(sku);
    await stack.gateway.setFaults({ chargeLatencyMs: 2_000 });
    const handle = await start(o, { compensationMaxAttempts: 20 });
    await waitForStatus(o, 'CHARGING_PAYMENT');
    // The charge request has reached the gateway (the status changes before the charge is sent); the
    // retries after the first attempt's client timeout meet it in progress. It has not landed yet.
    await expect
      .poll(async () => (await stack.gateway.ledger(o.orderId)).calls.charges, { timeout: 10_000 })
      .toBeGreaterThan(0);
    expect((await stack.gateway.ledger(o.orderId)).charges).toHaveLength(0);
    await handle.signal(cancelOrderSignal, { reason: 'changed my mind' });
    const result = await handle.result();

    expect(result.status).toBe('CANCELLED');
    const ledger = await stack.gateway.ledger(o.orderId);
    expect(ledger.charges).toHaveLength(1); // it landed after the cancel...
    expect(ledger.refunds).toHaveLength(1); // ...and the refund settled it
    expect(ledger.netCaptured).toBe(0);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 3, reserved: 0 }]);
  });

  it('when a cancel was accepted and the running step then fails on its own, then the saga still ends CANCELLED with a cancellation notice', async () => {
    const sku = await newSku(3);
    const o = order(sku, { paymentToken: 'tok_decline' });
    // The first attempt (a local activity, inside the workflow task) meets an outage; the retries,
    // a regular activity a cancel can reach, go on while the gateway recovers.
    await stack.gateway.setFaults({ outage: true });
    const handle = await start(o, { stepMaxAttempts: 50 });
    await waitForStatus(o, 'CHARGING_PAYMENT');
    await stack.gateway.setFaults({ outage: false, chargeLatencyMs: 450 }); // the decline comes back after the cancel, within the client timeout
    const callsBefore = (await stack.gateway.ledger(o.orderId)).calls.charges;
    await expect
      .poll(async () => (await stack.gateway.ledger(o.orderId)).calls.charges, { timeout: 10_000, interval: 20 })
      .toBeGreaterThan(callsBefore);
    await handle.signal(cancelOrderSignal, { reason: 'too slow' });
    const result = await handle.result();

    expect(result.status).toBe('CANCELLED');
    expect(result.cancellation).toEqual({ reason: 'too slow' });
    const audit = await auditEventsOf(stack, o.orderId);
    expect(typesOf(audit).at(-1)).toBe('OrderCancelled');
    const notices = (await readStream(stack.js, stack.jsm, 'NOTIFICATIONS')).filter(
      (e) => e.aggregate_id === o.orderId,
    );
    expect(notices.map((n) => n.subject)).toEqual(['notifications.cancellation']);
    expect((await stack.gateway.ledger(o.orderId)).netCaptured).toBe(0);
  });

  it('when refunds are down but charges are not, then orders still charge, and a refund waits out the open circuit instead of spending its attempts', async () => {
    await stack.gateway.setFaults({ refundOutage: true });
    for (let i = 0; i < 3; i += 1) await stack.payments.refund(randomUUID(), 100, 'EUR').catch(() => undefined);
    expect(stack.payments.circuitState('refund')).toBe('open');
    expect(stack.payments.circuitState('charge')).toBe('closed');

    const charged = order(await newSku(3));
    expect((await (await start(charged)).result()).status).toBe('COMPLETED');

    const sku = await newSku(3);
    const declined = order(sku, { paymentToken: 'tok_decline' });
    const handle = await start(declined, { compensationMaxAttempts: 5 });
    await waitForStatus(declined, 'COMPENSATING');
    // Over 4 s the circuit lets about two trials through (each a real failure, so an attempt); the waits
    // between them must not count, or the five attempts would be gone by now.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const waiting = await handle.query(getStatusQuery);
    expect(waiting.status).toBe('COMPENSATING');
    expect(waiting.compensations[0]).toMatchObject({ step: 'refund', status: 'PENDING' });
    expect(waiting.compensations[0]?.error).toMatch(/waiting \d+ ms for the payment circuit to close/);
    await stack.gateway.setFaults({ refundOutage: false });
    const result = await handle.result();

    expect(result.status).toBe('COMPENSATED');
    expect(result.compensations.map((c) => c.status)).toEqual(['DONE', 'DONE', 'DONE']);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 3, reserved: 0 }]);
  }, 30_000);

  it('after all of the above, the AUDIT stream holds no two events with one id', async () => {
    const events = await readStream(stack.js, stack.jsm, 'AUDIT');
    expect(events.length).toBeGreaterThan(40);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });
});
