// The reservation and the charge's first attempt run as local activities inside a workflow task
// (FORWARD_LOCAL in workflows/order-saga/activities.ts). When that task is lost after a step ran
// (its worker died or lost the server before reporting it) and a cancel arrives before the retry,
// the retry sees the cancel first and goes to CANCELLED without reaching the steps: the saga must
// still undo what the lost attempt did, and audit no status it never entered. And while a local
// step runs long, operators must still see the saga in that step, and a cancel still applies.
// The loss is injected by a workflow interceptor bundled for this file's worker only
// (test/support/workflow-faults/lose-task-after-local-step.ts); Temporal, NATS, the inventory
// store and the gateway sandbox are the real ones.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  approveOrderSignal,
  approveOrderUpdate,
  cancelOrderSignal,
  cancelOrderUpdate,
  getStatusQuery,
  OrderStatusKey,
  orderWorkflowId,
  type OrderSagaInput,
  type OrderStatusDocument,
} from '../../workflows/contract.js';
import type { orderSaga } from '../../workflows/order-saga.js';
import type { Order } from '../../domain/order.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import { newTraceId } from '../../lib/envelope.js';
import { auditEventTypeFor } from '../../domain/events.js';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from '../../workers/order-worker.js';
import { startActivityTier, type ActivityTier } from '../support/activity-tier.js';
import { auditEventsOf } from '../support/streams.js';
import { NO_FAULTS } from '../../sandbox/payment-gateway/server.js';
import { connectClient, fastSagaSettings, startInProcessWorker, type RunningWorker } from '../support/temporal.js';

const LOSE_TASK = fileURLToPath(new URL('../support/workflow-faults/lose-task-after-local-step.ts', import.meta.url));
let stack: ActivityTier;
let client: Client;
let closeClient: () => Promise<void>;
let worker: RunningWorker;

beforeAll(async () => {
  stack = await startActivityTier({ paymentTimeoutMs: 15_000 }); // room for the slow gateway below
  ({ client, close: closeClient } = await connectClient());
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES, LOSE_TASK],
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  const workflowBundlePath = join(mkdtempSync(join(tmpdir(), 'lost-task-')), 'workflow-bundle.js');
  writeFileSync(workflowBundlePath, code);
  worker = await startInProcessWorker(stack.clients, { workflowBundlePath });
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await closeClient?.();
  await stack?.close();
});

async function newSku(stock: number): Promise<string> {
  const sku = `SKU-${randomUUID().slice(0, 8)}`;
  await stack.inventory.restock(sku, stock);
  return sku;
}

function order(sku: string): Order {
  return {
    orderId: randomUUID(),
    customerId: 'c-lost-task',
    items: [{ sku, quantity: 2, unitPrice: 1_250 }],
    currency: 'EUR',
    total: 2_500,
    paymentToken: 'tok_visa',
    createdAt: new Date().toISOString(),
    traceId: newTraceId(),
  };
}

/** Starts the saga; with `loseTaskAfter`, every workflow task that runs that local step is lost. */
async function start(
  o: Order,
  loseTaskAfter: 'reserveInventory' | 'chargePayment' | 'publishAuditEvents' | undefined,
  settings: Partial<SagaSettings> = {},
  faults: { failReserveOnRetry?: true; loseApprovalTaskUntil?: number } = {},
) {
  const input: OrderSagaInput = { order: o, settings: fastSagaSettings(settings) };
  return client.workflow.start<typeof orderSaga>('orderSaga', {
    workflowId: orderWorkflowId(o.orderId),
    taskQueue: worker.taskQueue,
    args: [input],
    memo: { ...(loseTaskAfter && { loseTaskAfter }), ...faults },
  });
}

/** Waits until a lost attempt of the workflow task has reserved the order's stock. */
async function reservedByALostTask(sku: string): Promise<void> {
  await expect
    .poll(async () => (await stack.inventory.levels(sku))[0]?.reserved, { timeout: 15_000, interval: 50 })
    .toBe(2);
}

/** Waits until a lost attempt of the workflow task has charged the order. */
async function chargedByALostTask(o: Order): Promise<void> {
  await expect
    .poll(async () => (await stack.gateway.ledger(o.orderId)).netCaptured, { timeout: 15_000, interval: 50 })
    .toBe(o.total);
}

/** What a cancelled saga must show when a lost task had run its local steps: all undone, nothing kept. */
async function expectUndone(o: Order, sku: string, result: OrderStatusDocument, charged: boolean): Promise<void> {
  expect(result.status).toBe('CANCELLED');
  expect(result.compensations).toEqual([
    { step: 'refund', status: 'DONE' },
    { step: 'release', status: 'DONE' },
    { step: 'notify', status: 'DONE' },
  ]);
  expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 5, reserved: 0 }]);
  const ledger = await stack.gateway.ledger(o.orderId);
  expect(ledger.charges).toHaveLength(charged ? 1 : 0);
  expect(ledger.netCaptured).toBe(0);
  const audit = await auditEventsOf(stack, o.orderId);
  expect(audit.find((e) => e.type === 'RefundCompensated')?.data).toMatchObject({ refunded: charged });
  expect(audit.find((e) => e.type === 'ReleaseCompensated')?.data).toMatchObject({ released: true });
}

const typesOf = (events: { type: string }[]) => events.map((e) => e.type);
/**
 * The audit trail of a saga cancelled after `entered`: both undos (each local step's, whether or
 * not its task was lost), the notice, the outcome; none of the statuses the lost task entered.
 */
const cancelledAfter = (...entered: string[]) => [
  ...entered,
  'OrderCompensating',
  'RefundCompensated',
  'ReleaseCompensated',
  'OutcomeNoticeSent',
  'OrderCancelled',
];

describe('a workflow task lost after its local steps, with a cancel in between', () => {
  for (const { loseTaskAfter, ran, charged } of [
    { loseTaskAfter: 'reserveInventory', ran: 'reserved', charged: false },
    { loseTaskAfter: 'chargePayment', ran: 'reserved, charged', charged: true },
  ] as const)
    it(`when the task that started the saga ${ran} and was lost, then the cancelled saga undoes it all and audits only what it entered`, async () => {
      const sku = await newSku(5);
      const o = order(sku);
      const handle = await start(o, loseTaskAfter);
      await (charged ? chargedByALostTask(o) : reservedByALostTask(sku));
      await handle.signal(cancelOrderSignal, { reason: 'changed my mind' });

      await expectUndone(o, sku, await handle.result(), charged);
      expect(typesOf(await auditEventsOf(stack, o.orderId))).toEqual(cancelledAfter('OrderReceived'));
    }, 60_000);

  it('when the task after an approval charged and was lost, then the cancelled saga refunds and releases', async () => {
    const sku = await newSku(5);
    const o = order(sku);
    const handle = await start(o, 'chargePayment', { approvalThreshold: 1_000 });
    await expect
      .poll(async () => (await handle.query(getStatusQuery)).status, { timeout: 15_000 })
      .toBe('AWAITING_APPROVAL');
    await handle.signal(approveOrderSignal, { approvedBy: 'ops-lead' });
    await chargedByALostTask(o);
    await handle.signal(cancelOrderSignal, { reason: 'changed my mind' });

    await expectUndone(o, sku, await handle.result(), true);
    // After an approval the reservation is a regular activity (its task commits first), so the
    // reservation's status is audited; the lost task is the one that charged.
    expect(typesOf(await auditEventsOf(stack, o.orderId))).toEqual(
      cancelledAfter('OrderReceived', 'OrderAwaitingApproval', 'OrderReservingInventory'),
    );
  }, 60_000);
});

describe('a decision meeting a lost workflow task', () => {
  it('when the task that took an approval update is lost, then nothing it could have run is left behind: the approval is taken once committed and the order completes, charged once', async () => {
    const sku = await newSku(5);
    const o = order(sku);
    const handle = await start(
      o,
      undefined,
      { approvalThreshold: 1_000, approvalTimeoutMs: 8_000 },
      { loseApprovalTaskUntil: Date.now() + 4_000 },
    );
    await expect
      .poll(async () => (await handle.query(getStatusQuery)).status, { timeout: 15_000 })
      .toBe('AWAITING_APPROVAL');
    // One approval, as an HTTP caller sends it. Every task that takes it and runs a local step is
    // lost for 4 s, then the update is gone (see the fault module). Had a lost task reserved and
    // charged, the saga would not know it, and the approval timeout would reject an order whose card
    // is charged and whose stock is held.
    await client.connection
      .withDeadline(Date.now() + 3_000, () =>
        handle.executeUpdate(approveOrderUpdate, { args: [{ approvedBy: 'ops-lead' }] }),
      )
      .catch(() => undefined);
    const result = await handle.result();

    const ledger = await stack.gateway.ledger(o.orderId);
    const levels = await stack.inventory.levels(sku);
    expect({ status: result.status, netCaptured: ledger.netCaptured, levels }).toEqual({
      status: 'COMPLETED',
      netCaptured: o.total,
      levels: [{ sku, available: 3, reserved: 2 }],
    });
    expect(ledger.charges).toHaveLength(1);
    expect(result.approval.approvedBy).toBe('ops-lead');
  }, 60_000);

  it('when the last task stored OrderCompleted and was lost, and a cancel came before its retry, then the order completes and AUDIT holds only the statuses it lived', async () => {
    const sku = await newSku(5);
    const o = order(sku);
    const handle = await start(o, 'publishAuditEvents');
    await expect
      .poll(async () => typesOf(await auditEventsOf(stack, o.orderId)), { timeout: 15_000, interval: 50 })
      .toContain('OrderCompleted');
    await handle.signal(cancelOrderSignal, { reason: 'changed my mind, too late' });
    const result = await handle.result();

    // The confirmation was sent before the cancel arrived: the order stands, as its audit trail says.
    expect(result.status).toBe('COMPLETED');
    const audit = await auditEventsOf(stack, o.orderId);
    expect(typesOf(audit)).toEqual(result.history.map(({ status }) => auditEventTypeFor(status)));
    expect((await stack.gateway.ledger(o.orderId)).netCaptured).toBe(o.total);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 3, reserved: 2 }]);
  }, 60_000);
});

describe('a workflow task lost after its local steps, with a failure in its retry', () => {
  it('when the task that reserved and charged was lost and its retry cannot reserve, then the compensated saga refunds the charge it never registered', async () => {
    const sku = await newSku(5);
    const o = order(sku);
    const handle = await start(o, 'chargePayment', {}, { failReserveOnRetry: true });
    const result = await handle.result();

    expect(result.status).toBe('COMPENSATED');
    expect(result.failure).toMatchObject({ step: 'RESERVING_INVENTORY' });
    expect(result.compensations).toEqual([
      { step: 'refund', status: 'DONE' },
      { step: 'release', status: 'DONE' },
      { step: 'notify', status: 'DONE' },
    ]);
    const ledger = await stack.gateway.ledger(o.orderId);
    expect(ledger.charges).toHaveLength(1); // charged by the lost attempt...
    expect(ledger.netCaptured).toBe(0); // ...and refunded
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 5, reserved: 0 }]);
    const audit = await auditEventsOf(stack, o.orderId);
    expect(audit.find((e) => e.type === 'RefundCompensated')?.data).toMatchObject({ refunded: true });
    expect(typesOf(audit)).toEqual([
      'OrderReceived',
      'OrderReservingInventory',
      'OrderCompensating',
      'RefundCompensated',
      'ReleaseCompensated',
      'OutcomeNoticeSent',
      'OrderCompensated',
    ]);
  }, 60_000);
});

describe('a slow local step', () => {
  it('when the first charge attempt takes longer than a workflow task may, then the saga shows CHARGING_PAYMENT meanwhile, and a cancel sent then is answered as the saga decides it, nothing left behind', async () => {
    const sku = await newSku(5);
    const o = order(sku);
    await stack.gateway.setFaults({ chargeLatencyMs: 11_000 }); // beyond the 10 s workflow task timeout
    const handle = await start(o, undefined, { activityTimeoutMs: 20_000 });
    const chargeLandedBy = Date.now() + 11_000;
    // The SDK commits the task that runs the local charge at 80 % of its timeout: the status entered
    // reaches the query and Temporal's visibility while the charge is still in flight.
    await expect
      .poll(async () => (await handle.query(getStatusQuery)).status, { timeout: 10_000, interval: 200 })
      .toBe('CHARGING_PAYMENT');
    await expect
      .poll(
        async () => {
          for await (const run of client.workflow.list({
            query: `WorkflowId = '${orderWorkflowId(o.orderId)}' AND ${OrderStatusKey.name} = 'CHARGING_PAYMENT'`,
          }))
            return run.workflowId;
          return undefined;
        },
        // The index follows the history by milliseconds to seconds under load; whether it showed the
        // step before the charge landed is the check after this.
        { timeout: 20_000, interval: 200 },
      )
      .toBe(orderWorkflowId(o.orderId));
    expect(Date.now()).toBeLessThan(chargeLandedBy);
    expect((await stack.gateway.ledger(o.orderId)).charges).toHaveLength(0);
    // The cancel waits for the task running the charge: it is decided when the saga next meets it.
    // Taken while CHARGING_PAYMENT, it undoes the order; met once the charge was taken (NOTIFYING,
    // the point of no return), it is refused and the order completes. Either way answer and
    // outcome agree, and no money or stock is left behind.
    const answer = await handle
      .executeUpdate(cancelOrderUpdate, { args: [{ reason: 'too slow' }] })
      .then(() => 'accepted' as const)
      .catch((error: unknown) => {
        expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
        expect((error as WorkflowUpdateFailedError).cause?.message).toContain('NOTIFYING');
        return 'refused' as const;
      });
    const result = await handle.result();
    await stack.gateway.setFaults(NO_FAULTS);

    const ledger = await stack.gateway.ledger(o.orderId);
    expect(ledger.charges).toHaveLength(1); // it landed after the cancel was sent
    const levels = await stack.inventory.levels(sku);
    if (answer === 'accepted') {
      expect(result.status).toBe('CANCELLED');
      expect(ledger.netCaptured).toBe(0); // ...and was refunded
      expect(levels).toEqual([{ sku, available: 5, reserved: 0 }]);
    } else {
      expect(result.status).toBe('COMPLETED');
      expect(ledger.netCaptured).toBe(o.total);
      expect(levels).toEqual([{ sku, available: 3, reserved: 2 }]);
    }
  }, 60_000);
});
