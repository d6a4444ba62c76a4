// `npm run dlq`: the operator command that lists dead-lettered events and moves one back into
// ORDERS. Run as a real process against its own nats-server and the harness's Temporal; the
// stale-event case also against a real worker, whose starter dead-letters the event again.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { Connection } from '@temporalio/client';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { namespaceRetentionMs } from '../../lib/dependencies.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';
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

function orderCreated(orderId: string, createdAt = new Date()): string {
  const traceId = newTraceId();
  const data = {
    orderId,
    customerId: 'c-dlq',
    items: [{ sku: 'S', quantity: 1, unitPrice: 1 }],
    currency: 'EUR',
    total: 1,
    paymentToken: 'tok_visa',
    createdAt: createdAt.toISOString(),
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

describe('npm run dlq, for an event the starter dead-letters again on every replay', () => {
  let tier: ProcessTier;
  let tierNc: NatsConnection;
  let retentionMs: number;

  beforeAll(async () => {
    tier = await startProcessTier('dlq-stale');
    await tier.start('workers/main.ts');
    tierNc = await connectNats([tier.nats.url], 'dlq-stale-test');
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      retentionMs = await namespaceRetentionMs(connection, 'default');
    } finally {
      await connection.close();
    }
  });
  afterAll(async () => {
    await tierNc?.close();
    await tier?.close();
  });

  const tierDlq = (...args: string[]) =>
    run({ NATS_URL: tier.nats.url, TEMPORAL_ADDRESS: inject('temporalAddress') }, ...args);

  /** The DLQ sequence of the newest dead letter of `orderId`, once the starter put one there after `afterSeq`. */
  async function deadLetteredAfter(orderId: string, afterSeq = 0): Promise<number> {
    const tierJsm = await jetstreamManager(tierNc);
    for (let i = 0; ; i += 1) {
      const { state } = await tierJsm.streams.info('ORDERS_DLQ');
      for (let seq = Math.max(state.first_seq, afterSeq + 1); seq <= state.last_seq; seq += 1) {
        const message = await tierJsm.streams.getMessage('ORDERS_DLQ', { seq }).catch(() => null);
        if (message && message.string().includes(orderId)) return seq;
      }
      if (i > 100) throw new Error(`the starter never dead-lettered order ${orderId}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  it('says the event will be dead-lettered again and why, changes nothing without --force, and counts the replays', async () => {
    const orderId = randomUUID();
    // An order older than the namespace's retention, as ORDERS can hold one: the starter refuses it as stale.
    const createdAt = new Date(Date.now() - retentionMs - 86_400_000);
    await jetstream(tierNc).publish('orders.created', orderCreated(orderId, createdAt), { msgID: randomUUID() });
    const first = await deadLetteredAfter(orderId);

    const dry = await tierDlq('replay', String(first), '--yes');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('the starter will dead-letter it again');
    expect(dry.out).toContain("older than the namespace's retention");
    expect(dry.out).toContain('Nothing done');
    expect(await deadLetteredAfter(orderId)).toBe(first); // still there, not replayed

    // Replayed anyway: the starter dead-letters it again, and the command says so next time, with the count.
    const forced = await tierDlq('replay', String(first), '--yes', '--force');
    expect(forced.code, forced.out).toBe(0);
    expect(forced.out).toContain('Stored in ORDERS');
    const second = await deadLetteredAfter(orderId, first);
    const again = await tierDlq('replay', String(second));
    expect(again.out).toContain('already replayed 1 time and dead-lettered again each time');
    expect(again.out).toContain('the starter will dead-letter it again');
    const list = await tierDlq('list');
    expect(list.out).toMatch(new RegExp(`${second}\\s+\\d+\\s+${orderId}\\s+stale: .*\\[replayed 1 time\\]`));
  }, 60_000);
});
