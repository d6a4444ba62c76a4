// The published event contracts (docs/events/): the generated JSON Schemas and AsyncAPI document
// are current, and every event a real run stores on ORDERS, AUDIT, NOTIFICATIONS and ORDERS_DLQ
// validates against them (checked with Ajv, a JSON Schema validator independent of zod).
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../lib/nats.js';
import { contractOf, DEAD_LETTER_HEADERS, EVENT_CONTRACTS } from '../../lib/event-schemas.js';
import { EVENTS_DIR, renderEventContracts } from '../../scripts/event-contracts.js';
import { readStream } from '../support/streams.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

let stack: ProcessTier;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  stack = await startProcessTier('event-contracts', {
    APPROVAL_THRESHOLD: '5000',
    PAYLOAD_ENCRYPTION_KEYS: `k1=${Buffer.alloc(32, 7).toString('base64')}`,
  });
  await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
  nc = await connectNats([stack.nats.url], 'event-contracts-test');
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await stack?.close();
});

async function post(path: string, body: unknown, method = 'POST') {
  const response = await fetch(`${stack.api}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await response.json()) as { orderId: string };
}

const order = (paymentToken: string, unitPrice = 900) => ({
  customerId: 'c-contracts',
  items: [{ sku: stack.sku, quantity: 1, unitPrice }],
  currency: 'EUR',
  paymentToken,
  email: 'contracts@example.com',
});

describe('event contracts', () => {
  it('when the contracts are generated again, then docs/events/ is what they give (npm run event-contracts)', () => {
    const expected = renderEventContracts();
    expect(readdirSync(EVENTS_DIR).sort()).toEqual([...expected.keys()].sort());
    for (const [name, content] of expected) expect(readFileSync(join(EVENTS_DIR, name), 'utf8'), name).toBe(content);
    const asyncApi = parse(readFileSync(join(EVENTS_DIR, 'asyncapi.yaml'), 'utf8')) as { asyncapi: string };
    expect(asyncApi.asyncapi).toBe('3.0.0');
  });

  it('when orders complete, compensate, wait for approval, are cancelled, stock changes and a poison event arrives, then every stored event matches its published schema', async () => {
    const completed = await post('/orders', order('tok_visa'));
    const declined = await post('/orders', order('tok_decline'));
    const approved = await post('/orders', order('tok_visa', 9_000));
    const cancelled = await post('/orders', order('tok_visa', 9_000));
    const orders = [completed, declined, approved, cancelled].map((o) => o.orderId);
    for (const orderId of [approved.orderId, cancelled.orderId]) {
      await expect.poll(() => stack.statusOf(orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');
    }
    await post(`/orders/${approved.orderId}/approve`, {});
    await post(`/orders/${cancelled.orderId}/cancel`, { reason: 'contracts' });
    await post(`/inventory/SKU-CONTRACTS-${randomUUID().slice(0, 6)}`, { available: 4 }, 'PUT');
    for (const orderId of orders) await stack.waitForTerminal(orderId, 60_000);
    // Each saga's last audit event and notice are stored a task after its status is answered.
    await expect
      .poll(async () => (await readStream(js, jsm, 'NOTIFICATIONS')).length, { timeout: 15_000 })
      .toBe(orders.length);
    const finalEvents = ['OrderCompleted', 'OrderCompensated', 'OrderCancelled'];
    const finished = async () =>
      (await readStream(js, jsm, 'AUDIT')).filter((event) => finalEvents.includes(event.type)).length;
    await expect.poll(finished, { timeout: 15_000 }).toBe(orders.length);

    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const validators = new Map(
      EVENT_CONTRACTS.map((contract) => [
        contract.name,
        ajv.compile(JSON.parse(readFileSync(join(EVENTS_DIR, `${contract.name}.schema.json`), 'utf8')) as object),
      ]),
    );
    const seen = new Set<string>();
    for (const stream of ['ORDERS', 'AUDIT', 'NOTIFICATIONS'] as const) {
      for (const event of await readStream(js, jsm, stream)) {
        const contract = contractOf(stream, event.type);
        expect(contract, `${stream} ${event.type} has no published contract`).toBeDefined();
        const { subject, headers, ...envelope } = event;
        const validate = validators.get(contract!.name)!;
        expect(validate(envelope) ? [] : validate.errors, `${stream} ${event.type}`).toEqual([]);
        expect(headers['Nats-Msg-Id']).toBe(envelope.id);
        expect(subject).toMatch(new RegExp(`^${contract!.subject.replace(/\{\w+\}/, '\\w+').replaceAll('.', '\\.')}$`));
        seen.add(event.type);
      }
    }
    expect([...seen].sort()).toEqual(
      expect.arrayContaining([
        'OrderCreated',
        'OrderCompleted',
        'OrderCompensated',
        'OrderCancelled',
        'OrderAwaitingApproval',
        'ReleaseCompensated',
        'OutcomeNoticeSent',
        'StockSet',
        'CustomerConfirmationNotice',
      ]),
    );
    // A poison event: dead-lettered with its body as it was sent, and every documented header.
    await js.publish('orders.created', '{"not": "an order"}', { msgID: `poison-${randomUUID()}` });
    await expect.poll(async () => (await jsm.streams.info('ORDERS_DLQ')).state.messages, { timeout: 30_000 }).toBe(1);
    const deadLetter = await jsm.streams.getMessage('ORDERS_DLQ', { seq: 1 });
    for (const name of Object.keys(DEAD_LETTER_HEADERS)) expect(deadLetter!.header.get(name), name).not.toBe('');
    expect(new TextDecoder().decode(deadLetter!.data)).toBe('{"not": "an order"}');
  });
});
