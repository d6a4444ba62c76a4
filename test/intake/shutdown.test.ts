// Graceful shutdown under load: SIGTERM the worker and then the ingress while orders stream
// in, start replacements, and check that no accepted order is lost and none got two sagas.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { Client } from '@temporalio/client';
import { freePort } from '../../scripts/local-servers.mjs';
import { startPrivateNats, type PrivateNats } from '../support/private-nats.js';
import { startPaymentGateway } from '../../sandbox/payment-gateway/server.js';
import { openInventory } from '../../activities/inventory/open-inventory.js';
import { orderWorkflowId } from '../../workflows/contract.js';
import { PaymentSandbox } from '../support/stack.js';
import { connectClient } from '../support/temporal.js';
import { productEnv, spawnProduct, waitUntilReady, type ProductProcess } from '../support/processes.js';

const dataDir = mkdtempSync(join(tmpdir(), 'order-saga-shutdown-'));
const processes: ProductProcess[] = [];
let nats: PrivateNats;
let sandbox: Awaited<ReturnType<typeof startPaymentGateway>>;
let client: Client;
let closeClient: () => Promise<void>;
let env: Record<string, string>;
let api: string;
let metricsPort: number;
const SKU = inject('postgresUrl') ? `SKU-SHUTDOWN-${randomUUID().slice(0, 6)}` : 'SKU-COFFEE-1KG';

beforeAll(async () => {
  nats = await startPrivateNats('shutdown');
  sandbox = await startPaymentGateway(0);
  ({ client, close: closeClient } = await connectClient());
  const postgresUrl = inject('postgresUrl');
  if (postgresUrl) {
    const store = await openInventory({ url: postgresUrl, embeddedDir: '' });
    await store.restock(SKU, 10_000);
    await store.db.close();
  }
  const port = await freePort();
  metricsPort = await freePort();
  api = `http://127.0.0.1:${port}`;
  env = productEnv({
    ...(postgresUrl ? { DATABASE_URL: postgresUrl } : { EMBEDDED_DATABASE_DIR: join(dataDir, 'inventory') }),
    INVENTORY_SEED_DEMO: 'true',
    NATS_URL: nats.url,
    TEMPORAL_TASK_QUEUE: `orders-shutdown-${randomUUID()}`,
    PAYMENT_GATEWAY_URL: sandbox.url,
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
  });
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  await closeClient?.();
  await sandbox?.close();
  await nats?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(entry: 'workers/main.ts' | 'ingress/main.ts'): Promise<ProductProcess> {
  const started = spawnProduct(entry, env);
  processes.push(started);
  await waitUntilReady(entry === 'ingress/main.ts' ? `${api}/ready` : `http://127.0.0.1:${metricsPort}/ready`, started);
  return started;
}

describe('graceful shutdown', () => {
  it('when the worker and then the ingress get SIGTERM mid-stream, then no accepted order is lost or doubled', async () => {
    const firstWorker = await start('workers/main.ts');
    const firstIngress = await start('ingress/main.ts');
    const accepted: string[] = [];
    let refused = 0;
    const customerId = `shutdown-${randomUUID().slice(0, 6)}`;

    const load = (async () => {
      for (let i = 0; i < 200; i += 1) {
        const response = await fetch(`${api}/orders`, {
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
    const ledger = await new PaymentSandbox(sandbox.url).ledger();
    const charged = ledger.charges.filter((c) => accepted.includes(c.reference)).map((c) => c.reference);
    expect(new Set(charged).size).toBe(charged.length);
    expect(charged.length).toBe(accepted.length);
    for (const id of accepted.slice(0, 5))
      expect((await client.workflow.getHandle(orderWorkflowId(id)).describe()).status.name).toBe('COMPLETED');
  }, 240_000);
});
