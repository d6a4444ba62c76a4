// Sagas for tests that drive one directly on Temporal (no ingress): a fresh SKU with stock, an
// order of one unit of it, and the saga started on a test worker's task queue with fast settings.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { newTraceId } from '../../lib/envelope.js';
import type { Order } from '../../domain/order.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import type { InventoryStore } from '../../activities/inventory/inventory-store.js';
import { orderWorkflowId } from '../../workflows/contract.js';
import type { orderSaga } from '../../workflows/order-saga.js';
import { fastSagaSettings } from './temporal.js';

/** Starts a saga for one unit (50.00 EUR) of a new SKU stocked with 10; returns the order, its handle and the SKU. */
export async function startTestSaga(
  { client, taskQueue, inventory }: { client: Client; taskQueue: string; inventory: InventoryStore },
  { order: overrides = {}, settings = {} }: { order?: Partial<Order>; settings?: Partial<SagaSettings> } = {},
) {
  const sku = `SKU-${randomUUID().slice(0, 8)}`;
  await inventory.restock(sku, 10);
  const order: Order = {
    orderId: randomUUID(),
    customerId: `c-test-${randomUUID().slice(0, 4)}`,
    items: [{ sku, quantity: 1, unitPrice: 5_000 }],
    currency: 'EUR',
    total: 5_000,
    paymentToken: 'tok_visa',
    createdAt: new Date().toISOString(),
    traceId: newTraceId(),
    ...overrides,
  };
  const handle = await client.workflow.start<typeof orderSaga>('orderSaga', {
    workflowId: orderWorkflowId(order.orderId),
    taskQueue,
    args: [{ order, settings: fastSagaSettings(settings) }],
  });
  return { order, handle, sku };
}
