// Real activity clients for a test file: NATS (harness server), the payment gateway sandbox
// on a free port, and an inventory store (embedded in memory unless a URL is given).
import { inject } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { decodeEnvelope, type EventEnvelope } from '../../lib/envelope.js';
import { InventoryStore } from '../../activities/inventory/inventory-store.js';
import { migrate } from '../../activities/inventory/migrations.js';
import { embeddedClient, postgresClient } from '../../activities/inventory/sql-client.js';
import { PaymentGatewayClient } from '../../activities/payment/gateway-client.js';
import { startPaymentGateway, type Charge, type Faults, type Refund } from '../../sandbox/payment-gateway/server.js';
import type { ActivityClients } from '../../activities/index.js';

export interface TestStack {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  inventory: InventoryStore;
  payments: PaymentGatewayClient;
  gateway: PaymentSandbox;
  clients: ActivityClients;
  close(): Promise<void>;
}

/** What GET /v1/ledger answers. */
export interface Ledger {
  charges: Charge[];
  refunds: Refund[];
  netCaptured: number;
  calls: { charges: number; refunds: number };
  /** The W3C traceparent header of each call, in arrival order. */
  traceparents: string[];
}

/** Talks to the sandbox's ledger and admin endpoints. */
export class PaymentSandbox {
  constructor(readonly url: string) {}

  async ledger(reference?: string): Promise<Ledger> {
    const query = reference ? `?reference=${encodeURIComponent(reference)}` : '';
    const response = await fetch(`${this.url}/v1/ledger${query}`);
    return (await response.json()) as never;
  }

  async setFaults(faults: Partial<Faults>): Promise<void> {
    const response = await fetch(`${this.url}/admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(faults),
    });
    if (!response.ok) throw new Error(`setFaults failed: ${response.status} ${await response.text()}`);
  }

  async reset(): Promise<void> {
    await fetch(`${this.url}/admin/reset`, { method: 'POST' });
  }
}

export async function createTestStack(
  options: {
    databaseUrl?: string;
    breaker?: { threshold: number; halfOpenAfterMs: number };
    paymentTimeoutMs?: number;
  } = {},
): Promise<TestStack> {
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

/** Every envelope stored in `stream` (read with an ordered consumer), oldest first. */
export async function readStream(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
): Promise<(EventEnvelope & { subject: string; headers: Record<string, string> })[]> {
  const info = await jsm.streams.info(stream);
  if (info.state.messages === 0) return [];
  const consumer = await js.consumers.get(stream);
  const messages = await consumer.consume();
  const events: (EventEnvelope & { subject: string; headers: Record<string, string> })[] = [];
  for await (const message of messages) {
    const headers: Record<string, string> = {};
    for (const key of message.headers?.keys() ?? []) headers[key] = message.headers!.get(key);
    events.push({ ...decodeEnvelope(message.data), subject: message.subject, headers });
    if (message.info.pending === 0) break;
  }
  await messages.close();
  return events;
}

/** The audit events of one order, oldest first. */
export async function auditEventsOf(stack: TestStack, orderId: string) {
  return (await readStream(stack.js, stack.jsm, 'AUDIT')).filter((event) => event.aggregate_id === orderId);
}
