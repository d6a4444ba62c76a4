// Graceful shutdown under load: SIGTERM the worker and then the ingress while orders stream
// in, start replacements, and check that no accepted order is lost and none got two sagas.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { orderWorkflowId } from '../../workflows/contract.js';
import { connectClient } from '../support/temporal.js';
import { startProcessTier, type ProductEntry, type ProcessTier } from '../support/process-tier.js';

let stack: ProcessTier;
let client: Client;
let closeClient: () => Promise<void>;
let SKU: string;

beforeAll(async () => {
  stack = await startProcessTier('shutdown');
  SKU = stack.sku;
  ({ client, close: closeClient } = await connectClient());
});
afterAll(async () => {
  await closeClient?.();
  await stack?.close();
});

const start = (entry: ProductEntry) => stack.start(entry);

describe('graceful shutdown', () => {
  it('when the worker and then the ingress get SIGTERM mid-stream, then no accepted order is lost or doubled', async () => {
    const firstWorker = await start('workers/main.ts');
    const firstIngress = await start('ingress/main.ts');
    const accepted: string[] = [];
    let refused = 0;
    const customerId = `shutdown-${randomUUID().slice(0, 6)}`;

    const load = (async () => {
      for (let i = 0; i < 200; i += 1) {
        const response = await fetch(`${stack.api}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `${customerId}-${i}` },
          body: JSON.stringify({
            customerId,
            items: [{ sku: SKU, quantity: 1, unitPrice: 100 }],
            currency: 'EUR',
            paymentToken: 'tok_visa',
          }),
        }).catch(() => undefined); // connection refused while no ingress listens
        if (response?.status === 202) accepted.push(((await response.json()) as { orderId: string }).orderId);
        else refused += 1;
        await new Promise((r) => setTimeout(r, 15));
      }
    })();

    await expect.poll(() => accepted.length, { timeout: 20_000 }).toBeGreaterThan(40);
    expect(await firstWorker.stop()).toBe(0); // drained and exited cleanly
    await start('workers/main.ts');
    await expect.poll(() => accepted.length, { timeout: 20_000 }).toBeGreaterThan(100);
    expect(await firstIngress.stop()).toBe(0);
    await start('ingress/main.ts');
    await load;

    expect(accepted.length + refused).toBe(200);
    expect(accepted.length).toBeGreaterThan(150);
    const terminal = `CustomerId = '${customerId}' AND ExecutionStatus = 'Completed' AND OrderStatus = 'COMPLETED'`;
    await expect
      .poll(async () => (await client.workflow.count(terminal)).count, { timeout: 120_000, interval: 1_000 })
      .toBe(accepted.length);
    expect((await client.workflow.count(`CustomerId = '${customerId}'`)).count).toBe(accepted.length); // one saga per accepted order
    const ledger = await stack.gateway.ledger();
    const charged = ledger.charges.filter((c) => accepted.includes(c.reference)).map((c) => c.reference);
    expect(new Set(charged).size).toBe(charged.length);
    expect(charged.length).toBe(accepted.length);
    for (const id of accepted.slice(0, 5))
      expect((await client.workflow.getHandle(orderWorkflowId(id)).describe()).status.name).toBe('COMPLETED');
  }, 240_000);
});
