// Activity tier: the saga's real activity clients in the test's own process (NATS on the harness
// server, the payment sandbox on a free port, an inventory store: embedded in memory unless a
// database URL is given), without any Temporal worker.
import { inject } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { InventoryStore } from '../../activities/inventory/inventory-store.js';
import { migrate } from '../../activities/inventory/migrations.js';
import { embeddedClient, postgresClient } from '../../activities/inventory/sql-client.js';
import { PaymentGatewayClient } from '../../activities/payment/gateway-client.js';
import { startPaymentGateway } from '../../sandbox/payment-gateway/server.js';
import type { ActivityClients } from '../../activities/index.js';
import { PaymentSandbox } from './payment-sandbox.js';

export interface ActivityTier {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  inventory: InventoryStore;
  payments: PaymentGatewayClient;
  gateway: PaymentSandbox;
  clients: ActivityClients;
  close(): Promise<void>;
}

export async function startActivityTier(
  options: {
    databaseUrl?: string;
    breaker?: { threshold: number; halfOpenAfterMs: number };
    paymentTimeoutMs?: number;
  } = {},
): Promise<ActivityTier> {
  const nc = await connectNats([inject('natsUrl')], 'order-saga-test');
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  const js = jetstream(nc);
  const db = options.databaseUrl ? postgresClient(options.databaseUrl) : await embeddedClient('memory://');
  await migrate(db);
  const inventory = new InventoryStore(db);
  const sandbox = await startPaymentGateway(0);
  const payments = new PaymentGatewayClient({
    baseUrl: sandbox.url,
    timeoutMs: options.paymentTimeoutMs ?? 1_000,
    breakerFailureThreshold: options.breaker?.threshold ?? 5,
    breakerHalfOpenAfterMs: options.breaker?.halfOpenAfterMs ?? 1_000,
  });
  return {
    nc,
    js,
    jsm,
    inventory,
    payments,
    gateway: new PaymentSandbox(sandbox.url),
    clients: { inventory, payments, js },
    async close() {
      await sandbox.close();
      await db.close();
      await nc.drain();
    },
  };
}
