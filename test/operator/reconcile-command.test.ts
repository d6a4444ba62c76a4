// `npm run reconcile`: the gateway's charges, the reservations, the sagas and AUDIT compared, as a
// real process against a stack of its own (its own Temporal cluster on PostgreSQL with SQL
// visibility, NATS, PostgreSQL database, worker, ingress and payment sandbox; payloads encrypted,
// as deployed). The systems are first left in agreement by real orders; then each is put out of
// step the way an outage, a manual act or a bug would leave it, and every mismatch must be found,
// with its order, and nothing else; also when Temporal's search index lags the sagas.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jetstream, jetstreamManager, type StoredMsg } from '@nats-io/jetstream';
import { auditEventTypeFor } from '../../domain/events.js';
import { decodeEnvelope } from '../../lib/envelope.js';
import { connectNats, SUBJECTS } from '../../lib/nats.js';
import { orderWorkflowId, type OrderStatus, type OrderStatusDocument } from '../../workflows/contract.js';
import { startChaosTier, type ChaosTier } from '../chaos/chaos-tier.js';
import { readStream } from '../support/streams.js';
import { runOpsCommand } from '../support/commands.js';

const postgresUrl = inject('postgresUrl');
const PAYLOAD_ENCRYPTION_KEYS = `reconcile-1=${randomBytes(32).toString('base64')}`;
let tier: ChaosTier;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function placeOrder(quantity: number, paymentToken = 'tok_visa'): Promise<string> {
  const response = await fetch(`${tier.apis[0]}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      customerId: 'c-reconcile',
      items: [{ sku: tier.sku, quantity, unitPrice: 1_000 }],
      currency: 'EUR',
      paymentToken,
    }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { orderId: string }).orderId;
}

async function waitForStatus(orderId: string, statuses: OrderStatus[]): Promise<OrderStatusDocument> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(`${tier.apis[0]}/orders/${orderId}`);
    const document = response.ok ? ((await response.json()) as OrderStatusDocument) : undefined;
    if (document?.history && statuses.includes(document.status)) return document;
    if (Date.now() > deadline)
      throw new Error(`${orderId} is ${document?.status ?? 'not found'}, not ${statuses.join('/')}`);
    await sleep(300);
  }
}

/** Runs `npm run reconcile` as an operator would, with the stack's addresses. */
async function reconcile(
  args: string[],
  overrides: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    TEMPORAL_ADDRESS: tier.temporalAddress,
    NATS_URL: tier.natsUrls.join(','),
    PAYMENT_GATEWAY_URL: tier.gateway.url,
    PAYLOAD_ENCRYPTION_KEYS,
    ORDER_SAGA_LOCAL_STACK_FILE: '/nonexistent/local-stack.json',
    ...overrides,
  };
  return runOpsCommand('ops/reconcile.ts', args, env);
}

/** `npm run inventory` as an operator runs it (the tier's API is open: every caller is an operator). */
async function inventory(...args: string[]): Promise<{ code: number; out: string }> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ORDER_SAGA_API_URL: tier.apis[0]! };
  return runOpsCommand('ops/inventory.ts', args, env);
}

/** The gateway's own API, as a support agent or another system would use it behind the saga's back. */
async function gatewayCall(path: string, body: Record<string, unknown>): Promise<number> {
  const response = await fetch(`${tier.gateway.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
    body: JSON.stringify(body),
  });
  return response.status;
}

const orders: Record<string, string> = {};

describe.skipIf(!postgresUrl)('npm run reconcile', () => {
  beforeAll(async () => {
    tier = await startChaosTier(
      'reconcile',
      { temporal: 'cluster', natsNodes: 1, ingresses: 1, workers: 1 },
      { PAYLOAD_ENCRYPTION_KEYS },
    );
    orders.completed = await placeOrder(1);
    orders.refundedBehindItsBack = await placeOrder(2);
    orders.chargedTwice = await placeOrder(1);
    orders.declined = await placeOrder(1, 'tok_decline');
    orders.auditLost = await placeOrder(1);
    orders.awaitingApproval = await placeOrder(6); // above the tier's APPROVAL_THRESHOLD
    for (const key of ['completed', 'refundedBehindItsBack', 'chargedTwice', 'auditLost'])
      await waitForStatus(orders[key]!, ['COMPLETED']);
    await waitForStatus(orders.declined, ['COMPENSATED']);
    await waitForStatus(orders.awaitingApproval, ['AWAITING_APPROVAL']);
  }, 22 * 60_000); // the tier may wait for another file's Temporal cluster tier (test/support/run-lock.ts)

  afterAll(async () => {
    await tier?.close();
  });

  it('finds nothing when the systems agree, and counts what is still running', async () => {
    // The stock of a completed order, or of a saga still running, is not an operator's to release.
    const completed = await inventory('release', orders.completed!);
    expect(completed.code).toBe(1);
    expect(completed.out).toContain(`409 Reservation not released: order ${orders.completed} completed`);
    const running = await inventory('release', orders.awaitingApproval!);
    expect(running.code).toBe(1);
    expect(running.out).toContain('is running (AWAITING_APPROVAL)');

    const { code, out } = await reconcile(['--since', '1h', '--settle', '0s', '--json']);
    expect(code, out).toBe(0);
    const result = JSON.parse(out) as {
      sagas: Record<string, number>;
      inFlight: number;
      counted: Record<string, number>;
      mismatches: unknown[];
    };
    expect(result.mismatches).toEqual([]);
    expect(result.sagas).toEqual({ COMPLETED: 4, COMPENSATED: 1, AWAITING_APPROVAL: 1 });
    expect(result.inFlight).toBe(1);
    expect(result.counted).toMatchObject({ charges: 4, reservations: 5, accepted: 6, deadLetters: 0 });
    // The same in words, for an operator.
    const text = await reconcile(['--since', '1h', '--settle', '0s']);
    expect(text.code).toBe(0);
    expect(text.out).toContain('No mismatches');
  });

  it('lists every mismatch with its order and what to do, and exits 1', async () => {
    const stranger = randomUUID();
    const strangerStock = randomUUID();
    // Money: a refund made at the gateway's side; a second charge; a charge for no order.
    expect(await gatewayCall('/v1/refunds', { reference: orders.refundedBehindItsBack })).toBe(201);
    expect(
      await gatewayCall('/v1/charges', {
        amount: 1_000,
        currency: 'EUR',
        source: 'tok_visa',
        reference: orders.chargedTwice,
      }),
    ).toBe(201);
    expect(
      await gatewayCall('/v1/charges', { amount: 4_200, currency: 'EUR', source: 'tok_visa', reference: stranger }),
    ).toBe(201);
    // Stock: a released reservation held again; stock reserved for no order.
    await tier.inventory.db.query(`UPDATE reservations SET status = 'RESERVED' WHERE order_id = $1`, [orders.declined]);
    await tier.inventory.reserve(strangerStock, [{ sku: tier.sku, quantity: 1 }]);
    // The saga: terminated by hand while it waited for an approval.
    await tier.temporalClient.workflow.getHandle(orderWorkflowId(orders.awaitingApproval!)).terminate('by hand');
    // Streams: a lost audit event; a poison event the starter dead-letters.
    const nc = await connectNats(tier.natsUrls, 'reconcile-test');
    try {
      const jsm = await jetstreamManager(nc);
      const completedSubject = SUBJECTS.audit(auditEventTypeFor('COMPLETED'));
      let lost: StoredMsg | undefined;
      for (let seq = 1; !lost;) {
        const next = await jsm.direct.getMessage('AUDIT', { seq, next_by_subj: completedSubject });
        if (!next) throw new Error(`no ${completedSubject} event of ${orders.auditLost}`);
        if (decodeEnvelope(next.data).aggregate_id === orders.auditLost) lost = next;
        seq = next.seq + 1;
      }
      await jsm.streams.deleteMessage('AUDIT', lost.seq);
      nc.publish('orders.created', 'not an order');
      for (let i = 0; (await jsm.streams.info('ORDERS_DLQ')).state.messages === 0; i += 1) {
        if (i > 100) throw new Error('the poison event was never dead-lettered');
        await sleep(200);
      }
    } finally {
      await nc.close();
    }

    const { code, out } = await reconcile(['--since', '1h', '--settle', '0s', '--json']);
    expect(code, out).toBe(1);
    const result = JSON.parse(out) as { mismatches: { kind: string; orderId?: string; action: string }[] };
    const found = result.mismatches.map((m) => `${m.kind} ${m.orderId ?? '-'}`).sort();
    expect(found).toEqual(
      [
        `completed-without-charge ${orders.refundedBehindItsBack}`,
        `charged-more-than-once ${orders.chargedTwice}`,
        `charge-without-order ${stranger}`,
        `reserved-but-not-completed ${orders.declined}`,
        `reservation-without-order ${strangerStock}`,
        `saga-ended-abnormally ${orders.awaitingApproval}`,
        `audit-differs ${orders.auditLost}`,
        `dead-lettered -`,
      ].sort(),
    );
    for (const m of result.mismatches) expect(m.action.length).toBeGreaterThan(20);

    const text = await reconcile(['--since', '1h', '--settle', '0s']);
    expect(text.code).toBe(1);
    expect(text.out).toContain('8 mismatches:');
    expect(text.out).toContain('(COMPENSATED 1, COMPLETED 4, TERMINATED 1)');
    expect(text.out).toContain(
      `reserved-but-not-completed  order ${orders.declined}: COMPENSATED, its stock is still reserved`,
    );
    expect(text.out).toContain('→ refund every charge of the reference but the one named in the saga status');

    // What to do about the stock ones, done: the units come back, audited with who, and the
    // reconciliation no longer lists them.
    const [before] = await tier.inventory.levels(tier.sku);
    for (const orderId of [orders.declined!, strangerStock]) {
      const released = await inventory('release', orderId);
      expect(released.code, released.out).toBe(0);
      expect(released.out).toContain(`order ${orderId}: its reserved units were given back`);
    }
    const [after] = await tier.inventory.levels(tier.sku);
    expect(after!.available - before!.available).toBe(2);
    expect(await inventory('release', strangerStock)).toMatchObject({
      code: 0,
      out: expect.stringContaining('nothing was reserved'),
    });
    const again = await reconcile(['--since', '1h', '--settle', '0s', '--json']);
    const remaining = (JSON.parse(again.out) as { mismatches: { kind: string }[] }).mismatches.map((m) => m.kind);
    expect(remaining).toHaveLength(6);
    expect(remaining).not.toContain('reserved-but-not-completed');
    expect(remaining).not.toContain('reservation-without-order');
    const nc2 = await connectNats(tier.natsUrls, 'reconcile-test-audit');
    try {
      const audit = await readStream(jetstream(nc2), await jetstreamManager(nc2), 'AUDIT');
      const releases = audit.filter((e) => e.type === 'ReservationReleased');
      expect(releases.map((e) => e.data)).toEqual([
        { orderId: orders.declined, by: 'anonymous' },
        { orderId: strangerStock, by: 'anonymous' },
      ]);
    } finally {
      await nc2.close();
    }
  });

  it('with no arguments, says the window it checked and the charges it left out as still settling', async () => {
    // Two stray charges made just now: newer than the default window's end (5 minutes ago).
    for (let i = 0; i < 2; i += 1)
      expect(
        await gatewayCall('/v1/charges', { amount: 990, currency: 'EUR', source: 'tok_visa', reference: randomUUID() }),
      ).toBe(201);
    const { out } = await reconcile([]);
    const window =
      /^Checked: sagas started, and charges, reservations and accepted orders, from (\S+) to (\S+)\.$/m.exec(out);
    expect(window, out).not.toBeNull();
    const until = Date.parse(window![2]!);
    expect(Date.now() - until).toBeGreaterThanOrEqual(5 * 60_000);
    expect(Date.now() - until).toBeLessThan(6 * 60_000);
    // The gateway's charges newer than that, the two strays among them, were left out, and counted.
    const ledger = await fetch(`${tier.gateway.url}/v1/charges?limit=1000&created_gte=${window![2]}`);
    const newer = ((await ledger.json()) as { data: unknown[] }).data.length;
    expect(newer).toBeGreaterThanOrEqual(2);
    expect(out).toContain(`Not checked, newer than ${window![2]} (still settling): ${newer} charges`);
    expect(out).toMatch(/run with --until \S+ \(now\) or --settle 0s to include them/);
  });

  it('leaves out what happened after its window, and refuses a window or a system it cannot use', async () => {
    // A window that ended before any of this test's orders: their sagas are outside it, and so are
    // the stray charge and reservation made later.
    const before = new Date(tier.startedAt.getTime() - 1_000).toISOString();
    const earlier = await reconcile([
      '--from',
      new Date(tier.startedAt.getTime() - 3_600_000).toISOString(),
      '--until',
      before,
      '--json',
    ]);
    expect(earlier.code, earlier.out).toBe(1); // the dead letter is on ORDERS_DLQ whatever the window
    const { mismatches } = JSON.parse(earlier.out) as { mismatches: { kind: string }[] };
    expect(mismatches.map((m) => m.kind)).toEqual(['dead-lettered']);

    const usage = await reconcile(['--since', 'yesterday']);
    expect(usage.code).toBe(2);
    expect(usage.out).toContain('--since takes a duration such as 30m, 6h or 7d (got yesterday)');
    const empty = await reconcile(['--from', before, '--until', before]);
    expect(empty.code).toBe(2);
    expect(empty.out).toContain('the window is empty');
    const unreachable = await reconcile(['--since', '1h'], { PAYMENT_GATEWAY_URL: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(2);
    expect(unreachable.out).toContain('cannot reach the payment gateway at http://127.0.0.1:9');
  });

  it('checks a saga that the search index does not list yet, reading it from Temporal itself', async () => {
    // The history nodes cannot write the search index: it stops following the sagas, as when
    // visibility writes fall behind, and can still be read.
    const visibilityWrites = tier.temporalVisibilityWrites!;
    await visibilityWrites.cut();
    let orderId: string;
    try {
      orderId = await placeOrder(1);
      await waitForStatus(orderId, ['COMPLETED']);
      expect(
        await gatewayCall('/v1/charges', { amount: 1_000, currency: 'EUR', source: 'tok_visa', reference: orderId }),
      ).toBe(201);
      const listed = await tier.temporalClient.workflow.count(`WorkflowId = '${orderWorkflowId(orderId)}'`);
      expect(listed.count, 'the search index does not have the saga yet').toBe(0);

      const { code, out } = await reconcile(['--since', '1h', '--settle', '0s', '--json']);
      expect(code, out).toBe(1);
      const result = JSON.parse(out) as {
        counted: { notYetIndexed: number };
        mismatches: { kind: string; orderId?: string }[];
      };
      expect(result.mismatches.map((m) => `${m.kind} ${m.orderId ?? '-'}`)).toContain(
        `charged-more-than-once ${orderId}`,
      );
      expect(result.counted.notYetIndexed).toBe(1);
      const text = await reconcile(['--since', '1h', '--settle', '0s']);
      expect(text.out).toContain("1 saga not yet in Temporal's search index (it lags the histories)");
    } finally {
      await visibilityWrites.restore();
    }
    // Once the index has caught up, the listing finds the same.
    const deadline = Date.now() + 120_000;
    while ((await tier.temporalClient.workflow.count(`WorkflowId = '${orderWorkflowId(orderId)}'`)).count === 0) {
      if (Date.now() > deadline) throw new Error('the search index never caught up');
      await sleep(500);
    }
    const caughtUp = JSON.parse((await reconcile(['--since', '1h', '--settle', '0s', '--json'])).out) as {
      counted: { notYetIndexed: number };
      mismatches: { kind: string; orderId?: string }[];
    };
    expect(caughtUp.mismatches.map((m) => `${m.kind} ${m.orderId ?? '-'}`)).toContain(
      `charged-more-than-once ${orderId}`,
    );
    expect(caughtUp.counted.notYetIndexed).toBe(0);
  }, 240_000);
});
