// Stock management without SQL, against the real ingress and worker: operators read, set and add
// stock through the API (the worker changes it and audits the change on AUDIT) and through
// `npm run inventory`; reserved units are never overwritten; bad quantities are clear 400s that
// change nothing; only operators may do it.
import { createHash, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../lib/nats.js';
import { readStream } from '../support/streams.js';
import { waitUntilReady, type ProductProcess } from '../support/processes.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

const run = promisify(execFile);
const OPERATOR_KEY = `op_${randomUUID()}`;
const SERVICE_KEY = `svc_${randomUUID()}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const asOperator = { 'x-api-key': OPERATOR_KEY };

let stack: ProcessTier;
let worker: ProductProcess;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  stack = await startProcessTier('inventory-admin', {
    AUTH_DISABLED: '',
    AUTH_API_KEYS: `ops:operator:${sha256(OPERATOR_KEY)},shop:service:${sha256(SERVICE_KEY)}`,
  });
  [worker] = await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
  nc = await connectNats([stack.nats.url], 'inventory-admin-test');
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await stack?.close();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = asOperator) {
  const response = await fetch(`${stack.api}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const newSku = () => `SKU-ADMIN-${randomUUID().slice(0, 8)}`;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', 'ops/inventory.ts', ...args], {
    env: { ...process.env, ORDER_SAGA_API_URL: stack.api, ORDER_SAGA_API_KEY: OPERATOR_KEY },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

describe('stock management', () => {
  it('when an operator sets and adds stock, then the levels follow and each change is audited with who made it', async () => {
    const sku = newSku();
    expect((await call('GET', `/inventory/${sku}`)).status).toBe(404);
    expect(await call('PUT', `/inventory/${sku}`, { available: 40 })).toEqual({
      status: 200,
      body: { level: { sku, available: 40, reserved: 0 }, applied: { set: 40 }, replayed: false },
    });
    const added = await call('POST', `/inventory/${sku}/restock`, { units: 10 });
    expect(added.body).toEqual({
      level: { sku, available: 50, reserved: 0 },
      before: { sku, available: 40, reserved: 0 },
      applied: { add: 10 },
      replayed: false,
    });
    expect((await call('GET', `/inventory/${sku}`)).body).toEqual({ sku, available: 50, reserved: 0 });

    const audit = (await readStream(js, jsm, 'AUDIT')).filter((event) => event.aggregate_id === sku);
    expect(audit.map((event) => [event.subject, event.data])).toEqual([
      [
        'audit.inventory.StockSet',
        { sku, change: { set: 40 }, before: null, after: { sku, available: 40, reserved: 0 }, by: 'api-key:ops' },
      ],
      [
        'audit.inventory.StockAdded',
        {
          sku,
          change: { add: 10 },
          before: { sku, available: 40, reserved: 0 },
          after: { sku, available: 50, reserved: 0 },
          by: 'api-key:ops',
        },
      ],
    ]);
  });

  it('when stock is set while units are reserved by a completed order, then the reserved units stay', async () => {
    const sku = newSku();
    await call('PUT', `/inventory/${sku}`, { available: 10 });
    const placed = await fetch(`${stack.api}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': SERVICE_KEY },
      body: JSON.stringify({
        customerId: 'c-stock',
        items: [{ sku, quantity: 3, unitPrice: 500 }],
        currency: 'EUR',
        paymentToken: 'tok_visa',
      }),
    });
    const { orderId } = (await placed.json()) as { orderId: string };
    await expect
      .poll(async () => (await call('GET', `/orders/${orderId}`)).body.status, { timeout: 30_000 })
      .toBe('COMPLETED');
    expect((await call('GET', `/inventory/${sku}`)).body).toEqual({ sku, available: 7, reserved: 3 });
    expect((await call('PUT', `/inventory/${sku}`, { available: 2 })).body.level).toEqual({
      sku,
      available: 2,
      reserved: 3,
    });
  });

  it('when a quantity is negative, fractional, missing or zero to add, or the SKU is malformed, then 400 says what is wrong and nothing changes', async () => {
    const sku = newSku();
    await call('PUT', `/inventory/${sku}`, { available: 5 });
    const refused = [
      [await call('PUT', `/inventory/${sku}`, { available: -3 }), '"available" must not be negative'],
      [await call('PUT', `/inventory/${sku}`, { available: 1.5 }), '"available" must be a whole number of units'],
      [await call('PUT', `/inventory/${sku}`, { units: 4 }), '"available" is required'],
      [await call('POST', `/inventory/${sku}/restock`, { units: 0 }), '"units" must be at least 1'],
      [await call('POST', `/inventory/${sku}/restock`, { units: '7' }), '"units" must be a number of units'],
      [await call('GET', `/inventory/${encodeURIComponent('bad sku!')}`), 'a SKU is 1 to 128 letters'],
    ] as const;
    for (const [answer, message] of refused) {
      expect(answer.status).toBe(400);
      expect(answer.body.detail).toContain(message);
    }
    expect((await call('GET', `/inventory/${sku}`)).body).toEqual({ sku, available: 5, reserved: 0 });
  });

  it('when a service or an anonymous caller asks, then it is refused: stock and reservations are an operator matter', async () => {
    const sku = newSku();
    expect((await call('PUT', `/inventory/${sku}`, { available: 5 }, { 'x-api-key': SERVICE_KEY })).status).toBe(403);
    expect((await call('GET', `/inventory/${sku}`, undefined, { 'x-api-key': SERVICE_KEY })).status).toBe(403);
    expect((await call('PUT', `/inventory/${sku}`, { available: 5 }, {})).status).toBe(401);
    expect((await call('GET', `/inventory/${sku}`)).status).toBe(404); // nothing was created
    // Nor may they give back an order's reserved stock.
    const release = `/inventory/reservations/${randomUUID()}/release`;
    expect((await call('POST', release, undefined, { 'x-api-key': SERVICE_KEY })).status).toBe(403);
    expect((await call('POST', release, undefined, {})).status).toBe(401);
    expect((await call('POST', '/inventory/reservations/not%20an%20id/release')).status).toBe(400);
  });

  it('when an operator uses npm run inventory, then show, set and add work and bad input exits 2 with the usage', async () => {
    const sku = newSku();
    expect(await cli('set', sku, '12')).toMatchObject({
      code: 0,
      stdout: `${sku}: set to 12: 12 available, 0 reserved (new SKU)\n`,
    });
    expect(await cli('add', sku, '3')).toMatchObject({
      code: 0,
      stdout: `${sku}: added 3: 15 available, 0 reserved (was 12 available)\n`,
    });
    expect(await cli('show', sku)).toMatchObject({ code: 0, stdout: `${sku}: 15 available, 0 reserved\n` });
    const negative = await cli('set', sku, '-3');
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain('N must be a whole number of units, not negative (got "-3")');
    const unknown = await cli('show', newSku());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('404 SKU not found');
  });

  it('when a slow worker applies a restock after the ingress answered 503, then a retry with the same Idempotency-Key adds nothing and answers what was applied', async () => {
    const sku = newSku();
    await call('PUT', `/inventory/${sku}`, { available: 5 });
    const key = `restock-${randomUUID()}`;
    const withKey = { ...asOperator, 'idempotency-key': key };
    // A paused worker holds the request (NATS hands it over, it answers nothing) past the ingress's
    // wait; once it runs again it applies the change, and its answer goes to nobody.
    worker.child.kill('SIGSTOP');
    let gaveUp: Awaited<ReturnType<typeof call>>;
    try {
      gaveUp = await call('POST', `/inventory/${sku}/restock`, { units: 10 }, withKey);
    } finally {
      worker.child.kill('SIGCONT');
    }
    expect(gaveUp.status).toBe(503);
    expect(gaveUp.body.detail).toContain('may have been applied');
    expect(gaveUp.body.detail).toContain('same Idempotency-Key');
    await expect
      .poll(async () => (await call('GET', `/inventory/${sku}`)).body.available, { timeout: 20_000 })
      .toBe(15);

    // The retry the 503 asked for: the change is not applied again; the answer is the first one's.
    const retried = await call('POST', `/inventory/${sku}/restock`, { units: 10 }, withKey);
    expect(retried).toEqual({
      status: 200,
      body: {
        level: { sku, available: 15, reserved: 0 },
        before: { sku, available: 5, reserved: 0 },
        applied: { add: 10 },
        replayed: true,
      },
    });
    expect((await call('GET', `/inventory/${sku}`)).body).toEqual({ sku, available: 15, reserved: 0 });
    // The same key for another change is refused, and changes nothing.
    const reused = await call('POST', `/inventory/${sku}/restock`, { units: 3 }, withKey);
    expect(reused.status).toBe(422);
    expect(reused.body.detail).toContain('already used');
    expect((await call('GET', `/inventory/${sku}`)).body).toEqual({ sku, available: 15, reserved: 0 });
    const audit = (await readStream(js, jsm, 'AUDIT')).filter((event) => event.aggregate_id === sku);
    expect(audit.map((event) => event.type)).toEqual(['StockSet', 'StockAdded']);
  }, 60_000);

  it('when npm run inventory changes stock, then it sends an Idempotency-Key and says what it applied', async () => {
    const sku = newSku();
    await call('PUT', `/inventory/${sku}`, { available: 4 });
    const key = `cli-${randomUUID()}`;
    const added = await cli('add', sku, '6', '--key', key);
    expect(added).toMatchObject({ code: 0, stdout: `${sku}: added 6: 10 available, 0 reserved (was 4 available)\n` });
    // Run again with the key it was given (what it tells the operator after a lost answer): applied once.
    const again = await cli('add', sku, '6', '--key', key);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`${sku}: added 6: 10 available, 0 reserved (was 4 available)`);
    expect(again.stdout).toContain(`already applied with key ${key}; not applied again`);
    expect((await call('GET', `/inventory/${sku}`)).body).toEqual({ sku, available: 10, reserved: 0 });
    const reused = await cli('set', sku, '1', '--key', key);
    expect(reused.code).toBe(1);
    expect(reused.stderr).toContain('422');
  });

  it('when an operator releases the stock of an order whose saga has not started, then it is refused and the saga, once started, completes', async () => {
    // A worker without the starter: the order is accepted (stored on ORDERS) but no saga starts yet.
    await worker.stop();
    const withoutStarter = stack.launch('workers/main.ts', { STARTER_ENABLED: 'false' });
    let orderId: string;
    try {
      await waitUntilReady(`${stack.workerOps}/ready`, withoutStarter);
      orderId = await stack.placeOrder({}, { 'x-api-key': SERVICE_KEY });
      const refused = await call('POST', `/inventory/reservations/${orderId}/release`);
      expect(refused.status).toBe(409);
      expect(refused.body.detail).toContain(`order ${orderId} has no saga yet and nothing reserved`);
      expect(refused.body.detail).toContain('nothing was changed');
    } finally {
      await withoutStarter.stop();
      worker = await stack.start('workers/main.ts');
    }
    // The starter catches up: the saga reserves as if nobody had asked, and completes.
    await expect
      .poll(async () => (await call('GET', `/orders/${orderId}`)).body.status, { timeout: 30_000 })
      .toBe('COMPLETED');
  }, 90_000);

  // Last: it stops the worker.
  it('when no worker is running, then stock requests answer 503 with Retry-After', async () => {
    await worker.stop();
    const answer = await fetch(`${stack.api}/inventory/${newSku()}`, { headers: asOperator });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(((await answer.json()) as { detail: string }).detail).toContain('no worker answered');
  });
});
