// Process tier: the product as users run it, for a test file: the worker and the ingress as real child
// processes, with a nats-server of the file's own (its durable starter consumer must not see
// other files' events), the payment sandbox, and an inventory stocked for the file.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { freePort } from '../../scripts/local-servers.mjs';
import { openInventory } from '../../activities/inventory/open-inventory.js';
import { TERMINAL_STATUSES, type OrderStatus } from '../../workflows/contract.js';
import { startPaymentGateway } from '../../sandbox/payment-gateway/server.js';
import { startPrivateNats, type PrivateNats } from './private-nats.js';
import { productEnv, spawnProductProcess, waitUntilReady, type ProductProcess } from './processes.js';
import { PaymentSandbox } from './payment-sandbox.js';
import { registerIngressOrigin, unregisterIngressOrigin } from './api-contract.js';

export type ProductEntry = 'workers/main.ts' | 'ingress/main.ts';

/** An ingress started by withIngress: its API base URL and its process (output, exit). */
export interface ExtraIngress {
  api: string;
  process: ProductProcess;
}

/** The fields of a test order as POST /orders takes them (the tier's SKU, one unit). */
export interface TestOrder {
  customerId: string;
  unitPrice: number;
  paymentToken: string;
  email: string;
}

export interface ProcessTier {
  /** The ingress base URL (http://127.0.0.1:PORT). */
  api: string;
  /** The worker's operations base URL (/health, /ready, /metrics). */
  workerOps: string;
  /** The ingress's operations base URL (/health, /ready with details, /metrics). */
  ingressOps: string;
  nats: PrivateNats;
  gateway: PaymentSandbox;
  /** A SKU with plenty of stock for this file's orders. */
  sku: string;
  /** The environment every product process of this stack gets. */
  env: Record<string, string>;
  /** Spawns a worker or an ingress and resolves once its /ready answers 200. */
  start(entry: ProductEntry): Promise<ProductProcess>;
  /** Spawns a worker or an ingress without waiting for it to be ready; `overrides` are added to its environment. */
  launch(entry: ProductEntry, overrides?: Record<string, string>): ProductProcess;
  /**
   * Runs `use` with one more ingress of this stack on ports of its own (`overrides` added to its
   * environment), ready before `use` and stopped after it.
   */
  withIngress<T>(overrides: Record<string, string>, use: (ingress: ExtraIngress) => Promise<T>): Promise<T>;
  /**
   * POSTs one order of `sku` (one unit; `order` overrides the fields) and returns its id; throws
   * unless the API answered 202. `headers` adds e.g. credentials.
   */
  placeOrder(order?: Partial<TestOrder>, headers?: Record<string, string>): Promise<string>;
  /** The order's status as GET /orders/:id reports it, or undefined when it is not found (yet). */
  statusOf(orderId: string): Promise<OrderStatus | undefined>;
  /** Polls GET /orders/:id until the order is in a terminal status, and returns it. */
  waitForTerminal(orderId: string, timeoutMs?: number): Promise<OrderStatus>;
  /** Stops every process started, then the servers; removes the data. */
  close(): Promise<void>;
}

/** Starts the servers of a stack; `overrides` are added to the processes' environment. */
export async function startProcessTier(name: string, overrides: Record<string, string> = {}): Promise<ProcessTier> {
  const dataDir = mkdtempSync(join(tmpdir(), `order-saga-${name}-`));
  const nats = await startPrivateNats(name);
  const sandbox = await startPaymentGateway(0);
  const postgresUrl = inject('postgresUrl');
  // With PostgreSQL the file stocks a SKU of its own; the embedded store belongs to the worker
  // process alone, so there the demo catalog (500 units of SKU-COFFEE-1KG) is used.
  const sku = postgresUrl ? `SKU-${name.toUpperCase()}-${randomUUID().slice(0, 6)}` : 'SKU-COFFEE-1KG';
  if (postgresUrl) {
    const store = await openInventory({ url: postgresUrl, embeddedDir: '' });
    await store.restock(sku, 10_000);
    await store.db.close();
  }
  const [port, metricsPort, ingressOpsPort] = [await freePort(), await freePort(), await freePort()];
  const api = `http://127.0.0.1:${port}`;
  const workerOps = `http://127.0.0.1:${metricsPort}`;
  const ingressOps = `http://127.0.0.1:${ingressOpsPort}`;
  const env = productEnv({
    ...(postgresUrl ? { DATABASE_URL: postgresUrl } : { EMBEDDED_DATABASE_DIR: join(dataDir, 'inventory') }),
    INVENTORY_SEED_DEMO: 'true',
    NATS_URL: nats.url,
    TEMPORAL_TASK_QUEUE: `orders-${name}-${randomUUID()}`,
    PAYMENT_GATEWAY_URL: sandbox.url,
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
    ...overrides,
  });
  const processes: ProductProcess[] = [];
  const launch = (entry: ProductEntry, overrides: Record<string, string> = {}) => {
    const opsPort = entry === 'ingress/main.ts' ? ingressOpsPort : metricsPort;
    const launched = spawnProductProcess(entry, { ...env, METRICS_PORT: String(opsPort), ...overrides });
    processes.push(launched);
    // Its answers are checked against docs/openapi.json (test/harness/check-api-responses.ts).
    if (entry === 'ingress/main.ts') registerIngressOrigin(`http://127.0.0.1:${overrides.PORT ?? port}`);
    return launched;
  };
  const statusOf = async (orderId: string) => {
    const response = await fetch(`${api}/orders/${orderId}`);
    return response.ok ? ((await response.json()) as { status: OrderStatus }).status : undefined;
  };
  return {
    api,
    workerOps,
    ingressOps,
    nats,
    gateway: new PaymentSandbox(sandbox.url),
    sku,
    env,
    async start(entry) {
      const started = launch(entry);
      await waitUntilReady(entry === 'ingress/main.ts' ? `${api}/ready` : `${workerOps}/ready`, started);
      return started;
    },
    launch,
    async withIngress(overrides, use) {
      const [extraPort, extraOpsPort] = [await freePort(), await freePort()];
      const extra = launch('ingress/main.ts', {
        PORT: String(extraPort),
        METRICS_PORT: String(extraOpsPort),
        ...overrides,
      });
      try {
        await waitUntilReady(`http://127.0.0.1:${extraOpsPort}/ready`, extra);
        return await use({ api: `http://127.0.0.1:${extraPort}`, process: extra });
      } finally {
        await extra.stop();
        unregisterIngressOrigin(`http://127.0.0.1:${extraPort}`);
      }
    },
    async placeOrder(order = {}, headers = {}) {
      const { unitPrice = 700, ...fields } = order;
      const response = await fetch(`${api}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({
          customerId: `c-${name}`,
          items: [{ sku, quantity: 1, unitPrice }],
          currency: 'EUR',
          paymentToken: 'tok_visa',
          ...fields,
        }),
      });
      if (response.status !== 202)
        throw new Error(`POST /orders answered ${response.status}: ${await response.text()}`);
      return ((await response.json()) as { orderId: string }).orderId;
    },
    statusOf,
    async waitForTerminal(orderId, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const status = await statusOf(orderId);
        if (status && TERMINAL_STATUSES.includes(status)) return status;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`order ${orderId} not terminal after ${timeoutMs} ms (last: ${await statusOf(orderId)})`);
    },
    async close() {
      await Promise.all(processes.map((p) => p.stop()));
      unregisterIngressOrigin(api);
      await sandbox.close();
      await nats.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
