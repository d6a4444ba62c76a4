// Baselines the benchmark compares the order saga with, on the same Temporal server:
// - emptyWorkflow: does nothing; its start-to-complete rate is the server's ceiling.
// - textbookSaga: the same saga written the textbook way: one regular activity per step and
//   per audit event, compensations newest-first, default worker settings (see bench-worker.ts).
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { OrderActivities } from '../activities/index.js';
import type { OrderSagaInput } from '../workflows/contract.js';

export async function emptyWorkflow(): Promise<void> {}

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
