// Order intake end to end, through HTTP against the real ingress and worker processes.
// This file runs its own nats-server: one test stops and restarts it, and its durable
// starter consumer must not see other files' events.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { PrivateNats } from '../support/private-nats.js';
import { connectNats } from '../../lib/nats.js';
import { publishEnvelope, newTraceId } from '../../lib/envelope.js';
import { orderWorkflowId } from '../../workflows/contract.js';
import { readStream } from '../support/streams.js';
import type { PaymentSandbox } from '../support/payment-sandbox.js';
import { connectClient } from '../support/temporal.js';
import type { ProductProcess } from '../support/processes.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';
import { DLQ_HEADERS, STARTER_CONSUMER } from '../../workers/order-starter.js';

let stack: ProcessTier;
let nats: PrivateNats;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let client: Client;
let closeClient: () => Promise<void>;
let gateway: PaymentSandbox;
let worker: ProductProcess;
let ingress: ProductProcess;
let api: string;
let workerMetricsUrl: string;
let SKU: string;

beforeAll(async () => {
  stack = await startProcessTier('intake', {
    APPROVAL_THRESHOLD: '5000',
    STARTER_ACK_WAIT: '5s',
    IDEMPOTENCY_TTL: '5s', // short, so a test can see a key expire
  });
  ({ nats, gateway, api, sku: SKU } = stack);
  workerMetricsUrl = `${stack.workerOps}/metrics`;
  ({ client, close: closeClient } = await connectClient());
  [worker, ingress] = await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
  nc = await connectNats([nats.url], 'intake-test');
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await closeClient?.();
  await stack?.close();
});

/** Resolves once the starter has handled every event on ORDERS. */
async function starterCaughtUp() {
  await expect
    .poll(
      async () => {
        const info = await jsm.consumers.info('ORDERS', STARTER_CONSUMER);
        return info.num_pending + info.num_ack_pending;
      },
      { timeout: 15_000 },
    )
    .toBe(0);
}

function orderBody(overrides: Record<string, unknown> = {}) {
  return {
    customerId: 'c-intake',
    items: [{ sku: SKU, quantity: 1, unitPrice: 1_000 }],
    currency: 'EUR',
    paymentToken: 'tok_visa',
    email: 'ada@example.com',
    ...overrides,
  };
}

async function post(body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${api}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json().catch(() => undefined)) as any,
  };
}

/**
 * The runs of an order's saga that Temporal's search index lists, read once it lists the saga's
 * latest run (as Temporal itself has it) closed: the index follows the histories by a moment, so
 * a read right after the saga ended could miss that run, or a second one, were one started.
 */
async function indexedRuns(orderId: string): Promise<WorkflowExecutionInfo[]> {
  const workflowId = orderWorkflowId(orderId);
  await client.workflow.getHandle(workflowId).result();
  const latest = await client.workflow.getHandle(workflowId).describe();
  let runs: WorkflowExecutionInfo[] = [];
  await expect
    .poll(
      async () => {
        runs = [];
        for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(run);
        return runs.find((run) => run.runId === latest.runId)?.status.name;
      },
      { timeout: 20_000 },
    )
    .toBe(latest.status.name);
  return runs;
}

const statusOf = (orderId: string) => stack.statusOf(orderId);
const waitForTerminal = (orderId: string, timeoutMs?: number) => stack.waitForTerminal(orderId, timeoutMs);

async function ordersStored(): Promise<number> {
  return (await jsm.streams.info('ORDERS')).state.messages;
}

describe('POST /orders → JetStream → saga', () => {
  it('when an order is posted, then 202 comes after storage and the saga completes with its audit trail in order', async () => {
    const response = await post(orderBody(), {
      'idempotency-key': randomUUID(),
      traceparent: `00-${newTraceId()}-00f067aa0ba902b7-01`,
    });
    expect(response.status).toBe(202);
    const { orderId, workflowId, status, links } = response.body;
    expect(workflowId).toBe(orderWorkflowId(orderId));
    expect(status).toBe('RECEIVED');
    expect(links.self).toBe(`/orders/${orderId}`);

    expect(await waitForTerminal(orderId)).toBe('COMPLETED');
    // The saga answers COMPLETED as it enters it; its last audit event is stored a task later.
    const auditOf = async () => (await readStream(js, jsm, 'AUDIT')).filter((e) => e.aggregate_id === orderId);
    await expect.poll(async () => (await auditOf()).length, { timeout: 10_000 }).toBe(5);
    const audit = await auditOf();
    expect(audit.map((e) => e.type)).toEqual([
      'OrderReceived',
      'OrderReservingInventory',
      'OrderChargingPayment',
      'OrderNotifying',
      'OrderCompleted',
    ]);
    const created = (await readStream(js, jsm, 'ORDERS')).find((e) => e.aggregate_id === orderId)!;
    expect(created.data).toMatchObject({ total: 1_000, customerId: 'c-intake' });
    expect(audit.every((e) => e.trace_id === created.trace_id)).toBe(true);
    expect(JSON.stringify(await (await fetch(`${api}/orders/${orderId}`)).json())).not.toContain('tok_visa');
  });

  it('when one key is posted again and concurrently, then every answer is the same and there is one saga and one charge', async () => {
    const key = randomUUID();
    const first = await post(orderBody(), { 'idempotency-key': key });
    const again = await post(orderBody(), { 'idempotency-key': key });
    const concurrent = await Promise.all(
      Array.from({ length: 10 }, () => post(orderBody(), { 'idempotency-key': key })),
    );
    for (const answer of [again, ...concurrent]) {
      expect(answer.status).toBe(202);
      expect(answer.body).toEqual(first.body);
    }
    const { orderId } = first.body;
    expect(await waitForTerminal(orderId)).toBe('COMPLETED');
    expect((await gateway.ledger(orderId)).charges).toHaveLength(1);
    expect(await indexedRuns(orderId)).toHaveLength(1);
  });

  it('when a key is reused with another body, then 422 and nothing more is stored', async () => {
    const key = randomUUID();
    expect((await post(orderBody(), { 'idempotency-key': key })).status).toBe(202);
    const before = await ordersStored();
    const reused = await post(orderBody({ customerId: 'someone-else' }), { 'idempotency-key': key });
    expect(reused.status).toBe(422);
    expect(reused.headers.get('content-type')).toContain('application/problem+json');
    expect(reused.body.detail).toContain('different request body');
    expect(await ordersStored()).toBe(before);
  });

  it('when the same event is published twice straight to JetStream (distinct message ids), then one saga runs', async () => {
    const accepted = await post(orderBody(), { 'idempotency-key': randomUUID() });
    const { orderId } = accepted.body;
    expect(await waitForTerminal(orderId)).toBe('COMPLETED');
    const original = (await readStream(js, jsm, 'ORDERS')).find((e) => e.aggregate_id === orderId)!;
    const { subject: _subject, headers: _headers, ...envelope } = original;
    const republished = await publishEnvelope(js, 'orders.created', {
      ...envelope,
      id: `${envelope.id}:from-another-producer`,
    });
    expect(republished.duplicate).toBe(false); // stored again: only the starter can stop a second saga now
    await starterCaughtUp();
    expect(await indexedRuns(orderId)).toHaveLength(1);
    expect((await gateway.ledger(orderId)).charges).toHaveLength(1);
  });

  it('when a poison message arrives, then it lands in ORDERS_DLQ with reason and sequence, and orders keep flowing', async () => {
    const poison = await js.publish('orders.created', 'this is not json', { msgID: `poison-${randomUUID()}` });
    await starterCaughtUp();
    // The DLQ keeps the original bytes (not an envelope), so read the raw message.
    const dead = await jsm.streams.getMessage('ORDERS_DLQ', { last_by_subj: 'dlq.orders.created' });
    expect(dead?.string()).toBe('this is not json');
    expect(dead?.header.get(DLQ_HEADERS.sequence)).toBe(String(poison.seq));
    expect(dead?.header.get(DLQ_HEADERS.stream)).toBe('ORDERS');
    expect(dead?.header.get(DLQ_HEADERS.reason)).toContain('not JSON');

    const next = await post(orderBody(), { 'idempotency-key': randomUUID() });
    expect(await waitForTerminal(next.body.orderId)).toBe('COMPLETED');
  });

  it('when an order above the approval threshold is approved over HTTP, then it completes; a repeated approve is answered as taken, a late cancel is refused', async () => {
    const { orderId } = (
      await post(orderBody({ items: [{ sku: SKU, quantity: 6, unitPrice: 1_000 }] }), {
        'idempotency-key': randomUUID(),
      })
    ).body;
    await expect.poll(() => statusOf(orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');
    const approve = await fetch(`${api}/orders/${orderId}/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ approvedBy: 'ops-lead' }),
    });
    expect(approve.status).toBe(202);
    const approved = await approve.json();
    expect(approved).toMatchObject({ update: 'approveOrder', accepted: true, status: 'AWAITING_APPROVAL' });
    // A client's retry (its first answer lost on the way) is the same decision, answered the same.
    const retried = await fetch(`${api}/orders/${orderId}/approve`, { method: 'POST' });
    expect(retried.status).toBe(202);
    expect(await retried.json()).toEqual(approved);
    expect(await waitForTerminal(orderId)).toBe('COMPLETED');
    const document = (await (await fetch(`${api}/orders/${orderId}`)).json()) as { approval: unknown };
    // This ingress runs without authentication: the body's name is kept, marked as unverified.
    expect(document.approval).toEqual({ required: true, approvedBy: 'unverified:ops-lead' });
    const again = await fetch(`${api}/orders/${orderId}/approve`, { method: 'POST' });
    expect(again.status).toBe(202); // also once the saga has closed
    expect(await again.json()).toEqual(approved);
    const cancel = await fetch(`${api}/orders/${orderId}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(409);
    expect(await cancel.json()).toMatchObject({
      orderStatus: 'COMPLETED',
      detail: expect.stringContaining('COMPLETED'),
    });
  });

  it('when an order is cancelled over HTTP, then it ends CANCELLED and a repeated cancel is answered as taken; bad cancel requests get clear errors', async () => {
    const { orderId } = (
      await post(orderBody({ items: [{ sku: SKU, quantity: 6, unitPrice: 1_000 }] }), {
        'idempotency-key': randomUUID(),
      })
    ).body;
    await expect.poll(() => statusOf(orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');
    const badBody = await fetch(`${api}/orders/${orderId}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 42 }),
    });
    expect(badBody.status).toBe(400);
    const textBody = await fetch(`${api}/orders/${orderId}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'please',
    });
    expect(textBody.status).toBe(415);
    expect(await statusOf(orderId)).toBe('AWAITING_APPROVAL'); // neither bad request reached the saga

    const cancel = await fetch(`${api}/orders/${orderId}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'ordered twice' }),
    });
    expect(cancel.status).toBe(202);
    const cancelled = await cancel.json();
    expect(await waitForTerminal(orderId)).toBe('CANCELLED');
    const repeated = await fetch(`${api}/orders/${orderId}/cancel`, { method: 'POST' });
    expect(repeated.status).toBe(202);
    expect(await repeated.json()).toEqual(cancelled);
    const approve = await fetch(`${api}/orders/${orderId}/approve`, { method: 'POST' });
    expect(approve.status).toBe(409);
    expect(await approve.json()).toMatchObject({ orderStatus: 'CANCELLED' });
    expect((await fetch(`${api}/orders/${randomUUID()}/cancel`, { method: 'POST' })).status).toBe(404);
    expect((await gateway.ledger(orderId)).calls.charges).toBe(0);
  });

  it('when an operator signals a decision with input that does not fit, then the saga drops it, the worker counts it, and the order goes on', async () => {
    const { orderId } = (
      await post(orderBody({ items: [{ sku: SKU, quantity: 6, unitPrice: 1_000 }] }), {
        'idempotency-key': randomUUID(),
      })
    ).body;
    await expect.poll(() => statusOf(orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');
    const dropped = async () =>
      sumOf(await scrape(workerMetricsUrl), 'saga_signals_dropped_total', {
        signal: 'cancelOrder',
        cause: 'invalid_input',
      });
    const before = await dropped();
    await client.workflow.getHandle(orderWorkflowId(orderId)).signal('cancelOrder', { reason: 1 });
    await expect.poll(dropped, { timeout: 10_000 }).toBe(before + 1);

    const approve = await fetch(`${api}/orders/${orderId}/approve`, { method: 'POST' });
    expect(approve.status).toBe(202);
    expect(await waitForTerminal(orderId)).toBe('COMPLETED');
  });

  it('when input is hostile or malformed, then each gets a clear 4xx, nothing is published and the ingress keeps serving', async () => {
    const before = await ordersStored();
    const nested = `{"customerId":"c","items":${'['.repeat(20_000)}${']'.repeat(20_000)},"currency":"EUR","paymentToken":"tok_visa"}`;
    const item = { sku: SKU, quantity: 1, unitPrice: 1 };
    const cases: {
      name: string;
      body: string | Buffer;
      headers?: Record<string, string>;
      status: number;
      field?: string;
      /** What the answer must say: the real problem, not a guess. */
      detail?: RegExp;
    }[] = [
      {
        name: 'oversized body',
        body: JSON.stringify(orderBody({ email: `${'a'.repeat(70_000)}@example.com` })),
        status: 413,
        detail: /body is \d+ bytes, over the 65536-byte limit/,
      },
      {
        name: 'free order',
        body: JSON.stringify(orderBody({ items: [{ sku: SKU, quantity: 2, unitPrice: 0 }] })),
        status: 400,
        field: 'items',
      },
      { name: 'deeply nested body', body: nested, status: 400 },
      { name: 'malformed JSON', body: '{"customerId": "c",', status: 400 },
      { name: 'empty body', body: '', status: 400, detail: /no body/ },
      { name: 'JSON array', body: '[]', status: 400, field: '(body)' },
      { name: 'JSON null', body: 'null', status: 400 },
      {
        name: 'wrong type',
        body: JSON.stringify(orderBody({ items: [{ ...item, quantity: '2' }] })),
        status: 400,
        field: 'items[0].quantity',
      },
      {
        name: 'non-integer quantity',
        body: JSON.stringify(orderBody({ items: [{ ...item, quantity: 1.5 }] })),
        status: 400,
        field: 'items[0].quantity',
      },
      {
        name: 'out-of-range quantity',
        body: JSON.stringify(orderBody({ items: [{ ...item, quantity: 1e9 }] })),
        status: 400,
        field: 'items[0].quantity',
      },
      {
        name: 'negative price',
        body: JSON.stringify(orderBody({ items: [{ ...item, unitPrice: -5 }] })),
        status: 400,
        field: 'items[0].unitPrice',
      },
      {
        name: 'infinite price',
        body: '{"customerId":"c","items":[{"sku":"A","quantity":1,"unitPrice":1e400}],"currency":"EUR","paymentToken":"tok_visa"}',
        status: 400,
        field: 'items[0].unitPrice',
      },
      {
        name: 'unknown currency',
        body: JSON.stringify(orderBody({ currency: 'ABC' })),
        status: 400,
        field: 'currency',
      },
      {
        name: 'huge item list',
        body: JSON.stringify(orderBody({ items: Array.from({ length: 101 }, () => item) })),
        status: 400,
        field: 'items',
      },
      { name: 'no items', body: JSON.stringify(orderBody({ items: [] })), status: 400, field: 'items' },
      { name: 'missing fields', body: '{}', status: 400, field: 'customerId' },
      { name: 'client-sent total', body: JSON.stringify(orderBody({ total: 1 })), status: 400, field: 'total' },
      {
        name: 'client-sent status',
        body: JSON.stringify(orderBody({ status: 'COMPLETED' })),
        status: 400,
        field: 'status',
      },
      {
        name: '__proto__ key',
        body: '{"customerId":"c","__proto__":{"polluted":true},"items":[],"currency":"EUR","paymentToken":"t"}',
        status: 400,
        field: '__proto__',
      },
      {
        name: 'constructor key',
        body: JSON.stringify({ ...orderBody(), constructor: { prototype: { polluted: true } } }),
        status: 400,
        field: 'constructor',
      },
      {
        name: 'nested __proto__ key',
        body: `{"customerId":"c","items":[{"sku":"A","quantity":1,"unitPrice":1,"__proto__":{"x":1}}],"currency":"EUR","paymentToken":"t"}`,
        status: 400,
        field: 'items[0].__proto__',
      },
      {
        name: 'bad SKU characters',
        body: JSON.stringify(orderBody({ items: [{ ...item, sku: "'; DROP TABLE stock; --" }] })),
        status: 400,
        field: 'items[0].sku',
      },
      { name: 'bad email', body: JSON.stringify(orderBody({ email: 'not-an-email' })), status: 400, field: 'email' },
      { name: 'invalid UTF-8', body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), status: 400 },
      {
        name: 'non-UTF-8 charset',
        body: JSON.stringify(orderBody()),
        headers: { 'content-type': 'application/json; charset=latin1' },
        status: 415,
      },
      {
        name: 'gzip claimed, not sent',
        body: JSON.stringify(orderBody()),
        headers: { 'content-encoding': 'gzip' },
        status: 400,
      },
      {
        name: 'wrong content type',
        body: JSON.stringify(orderBody()),
        headers: { 'content-type': 'text/plain' },
        status: 415,
      },
      { name: 'no content type', body: JSON.stringify(orderBody()), headers: { 'content-type': '' }, status: 415 },
      {
        name: 'idempotency key too long',
        body: JSON.stringify(orderBody()),
        headers: { 'idempotency-key': 'k'.repeat(300) },
        status: 400,
      },
    ];
    for (const c of cases) {
      const response = await fetch(`${api}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...c.headers },
        body: c.body,
      });
      const text = await response.text();
      expect({ name: c.name, status: response.status }).toEqual({ name: c.name, status: c.status });
      expect(response.headers.get('content-type'), c.name).toContain('application/problem+json');
      const problem = JSON.parse(text) as {
        status: number;
        title: string;
        detail: string;
        errors?: { field: string }[];
      };
      expect(problem.status, c.name).toBe(c.status);
      expect(problem.title.length, c.name).toBeGreaterThan(3);
      expect(problem.detail.length, c.name).toBeGreaterThan(20);
      if (c.detail) expect(problem.detail, c.name).toMatch(c.detail);
      if (c.field)
        expect(
          problem.errors?.map((e) => e.field),
          c.name,
        ).toContain(c.field);
    }
    expect(await ordersStored()).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const healthy = await post(orderBody(), { 'idempotency-key': randomUUID() });
    expect(healthy.status).toBe(202);
    expect(await fetch(`${api}/orders/not-a-uuid`).then((r) => r.status)).toBe(400);
    expect(await fetch(`${api}/orders/${randomUUID()}`).then((r) => r.status)).toBe(404);
  });

  it('when JetStream refuses an order, then its Idempotency-Key is free again: a corrected body gets 202, not 422', async () => {
    const key = randomUUID();
    const stored = await jsm.streams.info('ORDERS');
    // ORDERS full and refusing new messages: JetStream answers the publish with an error.
    await jsm.streams.update('ORDERS', { max_msgs: stored.state.messages, discard: DiscardPolicy.New });
    try {
      const refused = await post(orderBody({ email: 'typo@example.com' }), { 'idempotency-key': key });
      expect(refused.status).toBe(503);
    } finally {
      await jsm.streams.update('ORDERS', { max_msgs: -1, discard: DiscardPolicy.Old });
    }
    const corrected = await post(orderBody(), { 'idempotency-key': key });
    expect(corrected.status).toBe(202);
    expect((await post(orderBody(), { 'idempotency-key': key })).body.orderId).toBe(corrected.body.orderId);
    expect(await waitForTerminal(corrected.body.orderId)).toBe('COMPLETED');
  });

  it('when an Idempotency-Key is used again after its record expired, then it starts a new order with a new id', async () => {
    const key = randomUUID();
    const first = await post(orderBody(), { 'idempotency-key': key });
    expect(first.status).toBe(202);
    expect(await waitForTerminal(first.body.orderId)).toBe('COMPLETED');
    await new Promise((resolve) => setTimeout(resolve, 6_000)); // IDEMPOTENCY_TTL is 5 s in this file
    const second = await post(orderBody(), { 'idempotency-key': key });

    expect(second.status).toBe(202);
    expect(second.body.orderId).not.toBe(first.body.orderId);
    expect(await waitForTerminal(second.body.orderId)).toBe('COMPLETED');
    expect((await gateway.ledger(second.body.orderId)).charges).toHaveLength(1);
  });

  it('when NATS is down, then orders get 503 with Retry-After and never a 2xx, and they flow again once it is back', async () => {
    await nats.stop();
    await expect.poll(() => fetch(`${api}/ready`).then((r) => r.status), { timeout: 10_000 }).toBe(503);
    for (let i = 0; i < 3; i += 1) {
      const refused = await post(orderBody(), { 'idempotency-key': randomUUID() });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refused.body.detail).toContain('Retry after');
    }

    await nats.restart();
    await expect.poll(() => fetch(`${api}/ready`).then((r) => r.status), { timeout: 30_000 }).toBe(200);
    const accepted = await post(orderBody(), { 'idempotency-key': randomUUID() });
    expect(accepted.status).toBe(202);
    expect(await waitForTerminal(accepted.body.orderId, 60_000)).toBe('COMPLETED');
  });

  it('when a burst of 500 orders arrives, then every one reaches a terminal status', async () => {
    const customerId = `burst-${randomUUID().slice(0, 8)}`;
    const ids: string[] = [];
    const queue = Array.from({ length: 500 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
          const response = await post(orderBody({ customerId }), { 'idempotency-key': `${customerId}-${next}` });
          expect(response.status).toBe(202);
          ids.push(response.body.orderId);
        }
      }),
    );
    expect(new Set(ids).size).toBe(500);
    const terminal = `CustomerId = '${customerId}' AND OrderStatus IN ('COMPLETED', 'COMPENSATED', 'CANCELLED', 'REJECTED') AND ExecutionStatus = 'Completed'`;
    await expect
      .poll(async () => (await client.workflow.count(terminal)).count, { timeout: 240_000, interval: 1_000 })
      .toBe(500);
    const completed = (await client.workflow.count(`CustomerId = '${customerId}' AND OrderStatus = 'COMPLETED'`)).count;
    const ledger = await gateway.ledger();
    const burstCharges = ledger.charges.filter((c) => ids.includes(c.reference));
    expect(burstCharges).toHaveLength(completed); // one charge per completed order, none for the others
  }, 300_000);

  it('when orders complete, then the Prometheus figures of the ingress and the worker move by exactly that much', async () => {
    const before = { ingress: await scrape(`${stack.ingressOps}/metrics`), worker: await scrape(workerMetricsUrl) };
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1)
      ids.push((await post(orderBody(), { 'idempotency-key': randomUUID() })).body.orderId);
    for (const id of ids) expect(await waitForTerminal(id)).toBe('COMPLETED');
    // A saga reports its final status before its last audit event is stored and the workflow
    // closes: the figures are read once every workflow has closed.
    for (const id of ids) await client.workflow.getHandle(orderWorkflowId(id)).result();
    const after = { ingress: await scrape(`${stack.ingressOps}/metrics`), worker: await scrape(workerMetricsUrl) };
    const delta = (side: 'ingress' | 'worker', name: string, labels: Record<string, string> = {}) =>
      sumOf(after[side], name, labels) - sumOf(before[side], name, labels);

    expect(delta('ingress', 'http_requests_total', { route: '/orders', method: 'POST', status: '202' })).toBe(3);
    expect(delta('ingress', 'order_publish_duration_seconds_count', { outcome: 'stored' })).toBe(3);
    expect(delta('worker', 'starter_sagas_total', { result: 'started' })).toBe(3);
    expect(delta('worker', 'saga_outcomes_total', { status: 'COMPLETED' })).toBe(3);
    for (const step of ['reserveInventory', 'chargePayment', 'sendNotification']) {
      expect(delta('worker', 'saga_step_duration_seconds_count', { step, outcome: 'success' }), step).toBe(3);
    }
    expect(delta('worker', 'payment_process_duration_seconds_count', { operation: 'charge', outcome: 'success' })).toBe(
      3,
    );
    expect(sumOf(after.worker, 'payment_circuit_open')).toBe(0);
    expect(sumOf(after.worker, 'starter_dead_lettered_total', { reason: 'poison' })).toBeGreaterThanOrEqual(1);
    // The Temporal SDK's own metrics are served on the same endpoint.
    expect(delta('worker', 'temporal_workflow_completed_total')).toBeGreaterThanOrEqual(3);
  });

  it('when the worker is down, then reads still answer at once: a closed order from its result, a running one from what Temporal recorded', async () => {
    const closed = await post(orderBody(), { 'idempotency-key': randomUUID() });
    expect(await waitForTerminal(closed.body.orderId)).toBe('COMPLETED');
    // The saga answers COMPLETED before its last audit event is stored and it closes: wait for it to close.
    await client.workflow.getHandle(orderWorkflowId(closed.body.orderId)).result();
    const waiting = await post(orderBody({ items: [{ sku: SKU, quantity: 6, unitPrice: 1_000 }] }), {
      'idempotency-key': randomUUID(),
    });
    await expect.poll(() => statusOf(waiting.body.orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');
    await worker.stop();
    try {
      const read = async (orderId: string) => {
        const started = Date.now();
        const response = await fetch(`${api}/orders/${orderId}`);
        return { status: response.status, ms: Date.now() - started, body: (await response.json()) as any };
      };
      const ofClosed = await read(closed.body.orderId);
      expect(ofClosed).toMatchObject({ status: 200, body: { status: 'COMPLETED', source: 'result' } });
      expect(ofClosed.ms).toBeLessThan(2_000);
      const ofRunning = await read(waiting.body.orderId);
      expect(ofRunning).toMatchObject({
        status: 200,
        body: { status: 'AWAITING_APPROVAL', source: 'recorded', workflowStatus: 'RUNNING' },
      });
      expect(ofRunning.ms).toBeLessThan(6_000);
    } finally {
      await stack.start('workers/main.ts'); // the stopped worker's output stays for the log check below
    }
    const cancel = await fetch(`${api}/orders/${waiting.body.orderId}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    expect(await waitForTerminal(waiting.body.orderId)).toBe('CANCELLED');
  });

  it('never writes a payment token to the logs of the ingress or the worker', () => {
    expect(ingress.output().length).toBeGreaterThan(0);
    expect(worker.output()).toContain('saga started');
    for (const output of [ingress.output(), worker.output()]) expect(output).not.toMatch(/tok_(visa|decline)/);
  });
});

/** Parses Prometheus text into [name, labels, value] samples. */
async function scrape(url: string): Promise<[string, Record<string, string>, number][]> {
  const text = await (await fetch(url)).text();
  const samples: [string, Record<string, string>, number][] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || line.startsWith('#')) continue;
    const labels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    samples.push([match[1]!, labels, Number(match[3])]);
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
function sumOf(
  samples: [string, Record<string, string>, number][],
  name: string,
  labels: Record<string, string> = {},
): number {
  return samples
    .filter(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v))
    .reduce((sum, [, , value]) => sum + value, 0);
}
