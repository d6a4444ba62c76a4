// Baselines the benchmark compares the order saga with, on the same Temporal server:
// - emptyWorkflow: does nothing; its start-to-complete rate is the server's ceiling.
// - textbookSaga: the same saga written the textbook way: one regular activity per step and
//   per audit event, compensations newest-first, default worker settings (see bench-worker.ts).
// - sagaShape: the order saga's history event for event, with activities that do nothing: what
//   Temporal and the SDK cost an order before any of the saga's own work.
import {
  patched,
  proxyActivities,
  proxyLocalActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { OrderActivities } from '../activities/index.js';
import { OrderStatusKey, type OrderSagaInput, type OrderStatus } from '../workflows/contract.js';
import type { NoWork } from './bench-worker.js';

export async function emptyWorkflow(): Promise<void> {}

const nothing = proxyActivities<NoWork>({ startToCloseTimeout: '30s' });
const nothingLocally = proxyLocalActivities<NoWork>({ startToCloseTimeout: '30s' });

/**
 * The order saga's shape (see workflows/order-saga/activities.ts) with no work in it: its patch
 * marker, its status upserts, the reservation and the charge's first attempt as local activities
 * and the confirmation as a regular one in the first workflow task, the final audit event by a
 * local activity in the second. Started like the empty workflow (eagerly, no payload).
 */
export async function sagaShape(): Promise<void> {
  const enter = (status: OrderStatus) => upsertSearchAttributes([{ key: OrderStatusKey, value: status }]);
  patched('saga-shape');
  enter('RESERVING_INVENTORY');
  await nothingLocally.nothing();
  enter('CHARGING_PAYMENT');
  await nothingLocally.nothing();
  enter('NOTIFYING');
  await nothing.nothing();
  enter('COMPLETED');
  await nothingLocally.nothing();
}

const activities = proxyActivities<OrderActivities>({ startToCloseTimeout: '30s' });

export async function textbookSaga({ order }: OrderSagaInput): Promise<string> {
  let sequence = 0;
  const audit = (type: string) =>
    activities.publishAudit({
      eventId: `${workflowInfo().workflowId}:${++sequence}`,
      type,
      orderId: order.orderId,
      traceId: order.traceId,
      data: {},
    });
  const compensations: (() => Promise<unknown>)[] = [];
  try {
    await audit('OrderReceived');
    await audit('OrderReservingInventory');
    await activities.reserveInventory({ orderId: order.orderId, items: order.items });
    compensations.unshift(() => activities.releaseInventory({ orderId: order.orderId }));
    await audit('OrderChargingPayment');
    await activities.chargePayment({
      orderId: order.orderId,
      amount: order.total,
      currency: order.currency,
      paymentToken: order.paymentToken,
    });
    compensations.unshift(() =>
      activities.refundPayment({ orderId: order.orderId, amount: order.total, currency: order.currency }),
    );
    await audit('OrderNotifying');
    await activities.sendNotification({
      orderId: order.orderId,
      kind: 'confirmation',
      customerId: order.customerId,
      total: order.total,
      currency: order.currency,
      traceId: order.traceId,
    });
    await audit('OrderCompleted');
    return 'COMPLETED';
  } catch {
    for (const compensate of compensations) await compensate();
    await audit('OrderCompensated');
    return 'COMPENSATED';
  }
}
