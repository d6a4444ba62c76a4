// The worker process killed with SIGKILL right after the gateway recorded a charge, then
// restarted: the saga must complete with exactly one charge in the ledger.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { Client } from '@temporalio/client';
import { freePort } from '../../scripts/local-servers.mjs';
import { startPaymentGateway } from '../../sandbox/payment-gateway/server.js';
import { newTraceId } from '../../lib/envelope.js';
import { orderWorkflowId, type OrderSagaInput } from '../../workflows/contract.js';
import type { orderSaga } from '../../workflows/order-saga.js';
import { PaymentSandbox } from '../support/payment-sandbox.js';
import { openInventory } from '../../activities/inventory/open-inventory.js';
import { connectClient, fastSagaSettings } from '../support/temporal.js';
import { productEnv, spawnProductProcess, waitUntilReady, type ProductProcess } from '../support/processes.js';

let client: Client;
let closeClient: () => Promise<void>;
let sandbox: Awaited<ReturnType<typeof startPaymentGateway>>;
const dataDir = mkdtempSync(join(tmpdir(), 'order-saga-crash-'));
const workers: ProductProcess[] = [];

beforeAll(async () => {
  ({ client, close: closeClient } = await connectClient());
  sandbox = await startPaymentGateway(0);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill()));
  await closeClient?.();
  await sandbox?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('worker crash', () => {
  it('when the worker is SIGKILLed right after a charge and restarted, then the saga completes with one charge', async () => {
    const taskQueue = `orders-crash-${randomUUID()}`;
    const metricsPort = await freePort();
    // PostgreSQL survives the kill as a real deployment's would, and the test stocks its own SKU there.
    // The embedded store (fallback) belongs to the worker process alone: it orders from the demo catalog.
    const postgresUrl = inject('postgresUrl');
    const sku = postgresUrl ? `SKU-CRASH-${randomUUID().slice(0, 8)}` : 'SKU-COFFEE-1KG';
    if (postgresUrl) {
      const store = await openInventory({ url: postgresUrl, embeddedDir: '' });
      await store.restock(sku, 5);
      await store.db.close();
    }
    const database: Record<string, string> = postgresUrl
      ? { DATABASE_URL: postgresUrl }
      : { EMBEDDED_DATABASE_DIR: join(dataDir, 'inventory') };
    const env = productEnv({
      ...database,
      TEMPORAL_TASK_QUEUE: taskQueue,
      STARTER_ENABLED: 'false',
      INVENTORY_SEED_DEMO: 'true',
      PAYMENT_GATEWAY_URL: sandbox.url,
      METRICS_PORT: String(metricsPort),
    });
    const gateway = new PaymentSandbox(sandbox.url);
    const first = spawnProductProcess('workers/main.ts', env);
    workers.push(first);
    await waitUntilReady(`http://127.0.0.1:${metricsPort}/ready`, first);

    const orderId = randomUUID();
    const input: OrderSagaInput = {
      order: {
        orderId,
        customerId: 'c-crash',
        items: [{ sku, quantity: 1, unitPrice: 1_899 }],
        currency: 'EUR',
        total: 1_899,
        paymentToken: 'tok_visa',
        createdAt: new Date().toISOString(),
        traceId: newTraceId(),
      },
      settings: fastSagaSettings(),
    };
    const handle = await client.workflow.start<typeof orderSaga>('orderSaga', {
      workflowId: orderWorkflowId(orderId),
      taskQueue,
      args: [input],
    });

    const deadline = Date.now() + 30_000;
    while ((await gateway.ledger(orderId)).charges.length === 0) {
      if (Date.now() > deadline) throw new Error(`no charge within 30 s:\n${first.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await first.kill();
    expect(first.child.signalCode).toBe('SIGKILL');

    const second = spawnProductProcess('workers/main.ts', env);
    workers.push(second);
    const result = await handle.result();

    expect(result.status).toBe('COMPLETED');
    const ledger = await gateway.ledger(orderId);
    expect(ledger.charges).toHaveLength(1);
    expect(ledger.netCaptured).toBe(1_899);
    expect(result.chargeId).toBe(ledger.charges[0]!.id);
  });
});
