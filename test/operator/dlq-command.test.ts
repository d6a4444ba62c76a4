// `npm run dlq`: the operator command that lists dead-lettered events and moves one back into
// ORDERS. Run as a real process against its own nats-server and the harness's Temporal.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { startPrivateNats, type PrivateNats } from '../support/private-nats.js';
import { runOpsCommand } from '../support/commands.js';
import { newTraceId } from '../../lib/envelope.js';
import { ORDER_CREATED } from '../../domain/events.js';
import { DLQ_HEADERS } from '../../workers/order-starter.js';

let nats: PrivateNats;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startPrivateNats('dlq');
  nc = await connectNats([nats.url], 'dlq-test');
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  js = jetstream(nc);
});
afterAll(async () => {
  await nc?.close();
  await nats?.close();
});

async function dlq(...args: string[]): Promise<{ code: number; out: string }> {
  return run({ NATS_URL: nats.url, TEMPORAL_ADDRESS: inject('temporalAddress') }, ...args);
}

/** Runs the command with the test's environment, minus any NATS_URL/TEMPORAL_ADDRESS, plus `addresses`. */
async function run(addresses: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string }> {
  const { NATS_URL: _nats, TEMPORAL_ADDRESS: _temporal, ...inherited } = process.env;
  return runOpsCommand('ops/dlq.ts', args, { ...inherited, ...addresses, LOG_LEVEL: 'silent' });
}

async function deadLetter(data: string, reason: string): Promise<number> {
  const headers = natsHeaders();
  headers.set(DLQ_HEADERS.reason, reason);
  headers.set(DLQ_HEADERS.sequence, '41');
  headers.set(DLQ_HEADERS.subject, 'orders.created');
  return (await js.publish('dlq.orders.created', data, { headers, msgID: randomUUID() })).seq;
}

function orderCreated(orderId: string): string {
  const traceId = newTraceId();
  const data = {
    orderId,
    customerId: 'c-dlq',
    items: [{ sku: 'S', quantity: 1, unitPrice: 1 }],
    currency: 'EUR',
    total: 1,
    paymentToken: 'tok_visa',
    createdAt: new Date().toISOString(),
    traceId,
  };
  return JSON.stringify({
    id: `order-created:${orderId}`,
    type: ORDER_CREATED,
    aggregate_id: orderId,
    data,
    timestamp: data.createdAt,
    trace_id: traceId,
  });
}

const ordersCount = async () => (await jsm.streams.info('ORDERS')).state.messages;

describe('npm run dlq', () => {
  it('lists dead letters with their reason, original sequence and order', async () => {
    const orderId = randomUUID();
    await deadLetter(orderCreated(orderId), 'delivery limit (10) reached: Temporal unavailable');
    const { code, out } = await dlq('list');
    expect(code).toBe(0);
    expect(out).toMatch(new RegExp(`\\d+\\s+41\\s+${orderId}\\s+delivery limit \\(10\\) reached`));
  });

  it('replay shows its plan and changes nothing without --yes; with --yes it stores the event once and removes the dead letter', async () => {
    const orderId = randomUUID();
    const seq = await deadLetter(orderCreated(orderId), 'delivery limit (10) reached');
    const before = await ordersCount();

    const dry = await dlq('replay', String(seq));
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(`Nats-Msg-Id order-created:${orderId}:replay:${seq}`);
    expect(dry.out).toContain('Dry run: nothing changed');
    expect(await ordersCount()).toBe(before);

    const done = await dlq('replay', String(seq), '--yes');
    expect(done.code).toBe(0);
    expect(done.out).toContain('Stored in ORDERS');
    expect(await ordersCount()).toBe(before + 1);
    const stored = await jsm.streams.getMessage('ORDERS', { last_by_subj: 'orders.created' });
    expect(stored?.header.get('Nats-Msg-Id')).toBe(`order-created:${orderId}:replay:${seq}`);
    expect(stored?.header.get('Dlq-Replayed-From')).toBe(String(seq));

    const again = await dlq('replay', String(seq), '--yes');
    expect(again.code).toBe(2);
    expect(again.out).toContain(`ORDERS_DLQ has no message with sequence ${seq}`);
  });

  it('refuses to replay a malformed event and says how to remove it', async () => {
    const seq = await deadLetter('not json at all', 'malformed event envelope: not JSON');
    const before = await ordersCount();
    const result = await dlq('replay', String(seq), '--yes');
    expect(result.code).toBe(2);
    expect(result.out).toContain('cannot be replayed');
    expect(result.out).toContain(`npm run dlq -- delete ${seq} --yes`);
    expect(await ordersCount()).toBe(before);
    expect((await dlq('delete', String(seq), '--yes')).out).toContain('Deleted');
  });

  it('finds the local stack by itself when NATS_URL is not set, and says which addresses it used', async () => {
    const seq = await deadLetter(orderCreated(randomUUID()), 'found through the local stack file');
    const dir = mkdtempSync(join(tmpdir(), 'order-saga-local-stack-'));
    const file = join(dir, 'local-stack.json');
    // What `npm start` writes while it runs; this test process stands in for it (its pid is alive).
    writeFileSync(
      file,
      JSON.stringify({ pid: process.pid, NATS_URL: nats.url, TEMPORAL_ADDRESS: inject('temporalAddress') }),
    );
    try {
      const { code, out } = await run({ ORDER_SAGA_LOCAL_STACK_FILE: file }, 'list');
      expect(code).toBe(0);
      expect(out).toContain(`using the local stack (npm start, pid ${process.pid}): NATS_URL=${nats.url}`);
      expect(out).toContain('found through the local stack file');
      expect(out).toContain(String(seq));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explains its usage when called wrongly', async () => {
    const result = await dlq('replay', 'abc');
    expect(result.code).toBe(2);
    expect(result.out).toContain('usage: npm run dlq');
  });
});
