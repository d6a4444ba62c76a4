// Who may do what at the public API, against the real ingress and worker processes with
// authentication on: bearer JWTs from a test identity provider (a real JWKS over HTTP) and static
// API keys; roles and ownership; the approver and the canceller taken from the credentials; rate
// limits; slow clients cut off with 408; operations endpoints off the public port; ORDERS full → 503.
import { createHash, randomUUID } from 'node:crypto';
import { connect as connectTcp } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { freePort } from '../../scripts/local-servers.mjs';
import { connectNats } from '../../lib/nats.js';
import { auditEventsOf, readStream } from '../support/streams.js';
import { startIdentityProvider, type IdentityProvider } from '../support/identity-provider.js';
import type { ProductProcess } from '../support/processes.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';
import { TERMINAL_STATUSES, type OrderStatus } from '../../workflows/contract.js';

const OPERATOR_KEY = `op_${randomUUID()}`;
const SERVICE_KEY = `svc_${randomUUID()}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const asOperator = { 'x-api-key': OPERATOR_KEY };
const asService = { 'x-api-key': SERVICE_KEY };

let idp: IdentityProvider;
let stack: ProcessTier;
let api: string;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  idp = await startIdentityProvider();
  stack = await startProcessTier('security', {
    ...idp.env,
    AUTH_DISABLED: '',
    AUTH_API_KEYS: `ops-team:operator:${sha256(OPERATOR_KEY)},storefront:service:${sha256(SERVICE_KEY)}`,
    HTTP_HEADERS_TIMEOUT: '2s',
    HTTP_REQUEST_TIMEOUT: '2s',
    APPROVAL_THRESHOLD: '5000',
  });
  api = stack.api;
  await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
  nc = await connectNats([stack.nats.url], 'security-test');
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await stack?.close();
  await idp?.close();
});

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
  base = api,
): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as never) : {} };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const order = (overrides: Record<string, unknown> = {}, unitPrice = 900) => ({
  items: [{ sku: stack.sku, quantity: 1, unitPrice }],
  currency: 'EUR',
  paymentToken: 'tok_visa',
  ...overrides,
});

async function ordersStored(): Promise<number> {
  return (await jsm.streams.info('ORDERS')).state.messages;
}

async function statusAsOperator(orderId: string): Promise<OrderStatus | undefined> {
  const answer = await call('GET', `/orders/${orderId}`, asOperator);
  return answer.status === 200 ? (answer.body.status as OrderStatus) : undefined;
}

async function terminal(orderId: string): Promise<OrderStatus> {
  await expect
    .poll(async () => TERMINAL_STATUSES.includes((await statusAsOperator(orderId))!), { timeout: 30_000 })
    .toBe(true);
  return (await statusAsOperator(orderId))!;
}

describe('authentication', () => {
  it('when a request has no credentials, then it is refused 401 with a challenge naming both schemes, and nothing is stored', async () => {
    const before = await ordersStored();
    const answer = await call('POST', '/orders', {}, order({ customerId: 'c-anon' }));
    expect(answer.status).toBe(401);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(answer.headers.get('www-authenticate')).toBe(
      'Bearer realm="order-saga", ApiKey realm="order-saga", header="X-Api-Key"',
    );
    expect(answer.body.detail).toMatch(/Authorization: Bearer <token>.*X-Api-Key/);
    expect((await call('GET', `/orders/${randomUUID()}`)).status).toBe(401);
    expect(await ordersStored()).toBe(before);
  });

  it('when a token is expired, for another audience or issuer, signed by an unknown key or with HS256, then it is refused as invalid_token', async () => {
    const refused = {
      expired: await idp.token('c-1', [], { expiresIn: -120 }),
      audience: await idp.token('c-1', [], { audience: 'another-api' }),
      issuer: await idp.token('c-1', [], { issuer: 'https://evil.example' }),
      foreignKey: await idp.token('c-1', ['operator'], { foreignKey: true }),
      hs256: await idp.token('c-1', ['operator'], { algorithm: 'HS256' }),
      garbage: 'not.a.jwt',
    };
    for (const [what, token] of Object.entries(refused)) {
      const answer = await call('GET', `/orders/${randomUUID()}`, bearer(token));
      expect({ what, status: answer.status }).toEqual({ what, status: 401 });
      expect(answer.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  it('when an API key is wrong, then it is refused 401', async () => {
    const answer = await call('GET', `/orders/${randomUUID()}`, { 'x-api-key': `${OPERATOR_KEY}x` });
    expect(answer.status).toBe(401);
    expect(answer.body.detail).toContain('X-Api-Key is not a valid key');
  });
});

describe('identity provider outage', () => {
  it('when the JWKS cannot be fetched, then a bearer token gets 503 with Retry-After, not 401, and API keys still work', async () => {
    const nowhere = await freePort();
    await stack.withIngress(
      { AUTH_JWKS_URL: `http://127.0.0.1:${nowhere}/.well-known/jwks.json` },
      async ({ api: base }) => {
        const token = await idp.token('c-outage');
        const answer = await call('GET', `/orders/${randomUUID()}`, bearer(token), undefined, base);
        expect(answer.status).toBe(503);
        expect(answer.headers.get('retry-after')).toBe('5');
        expect(answer.body.detail).toContain('the identity provider did not answer');
        expect((await call('GET', `/orders/${randomUUID()}`, asOperator, undefined, base)).status).toBe(404);
      },
    );
  });
});

describe('authorization', () => {
  it('when a customer orders, then the order is theirs (customer id from the token), and ordering as someone else is 403', async () => {
    const customer = `c-${randomUUID().slice(0, 8)}`;
    const token = await idp.token(customer);
    const mine = await call('POST', '/orders', bearer(token), order());
    expect(mine.status).toBe(202);
    const read = () => call('GET', `/orders/${mine.body.orderId as string}`, bearer(token));
    await expect.poll(async () => (await read()).status, { timeout: 15_000 }).toBe(200);
    expect((await read()).body.customerId).toBe(customer);

    const before = await ordersStored();
    const asOther = await call('POST', '/orders', bearer(token), order({ customerId: 'c-someone-else' }));
    expect(asOther.status).toBe(403);
    expect(asOther.body.detail).toContain('your customer id comes from your token');
    expect(await ordersStored()).toBe(before);
    expect(await terminal(mine.body.orderId as string)).toBe('COMPLETED');
  });

  it("when a customer uses another customer's Idempotency-Key, then it gets an order of its own (no 422 that tells the key exists); the owner's reuse is still 422", async () => {
    const a = await idp.token(`c-key-a-${randomUUID().slice(0, 6)}`);
    const b = await idp.token(`c-key-b-${randomUUID().slice(0, 6)}`);
    const key = { 'idempotency-key': randomUUID() };
    const byA = await call('POST', '/orders', { ...bearer(a), ...key }, order());
    const byB = await call('POST', '/orders', { ...bearer(b), ...key }, order());
    expect([byA.status, byB.status]).toEqual([202, 202]);
    expect(byB.body.orderId).not.toBe(byA.body.orderId);
    // Each caller's key still names its own order: a retry replays it, another body is refused.
    expect((await call('POST', '/orders', { ...bearer(a), ...key }, order())).body.orderId).toBe(byA.body.orderId);
    expect((await call('POST', '/orders', { ...bearer(b), ...key }, order())).body.orderId).toBe(byB.body.orderId);
    const aChanged = await call('POST', '/orders', { ...bearer(a), ...key }, order({ paymentToken: 'tok_other' }));
    expect(aChanged.status).toBe(422);
    // Two backends sending the same key and body are two callers too.
    const bySvc = await call('POST', '/orders', { ...asService, ...key }, order({ customerId: 'c-key-svc' }));
    const byOps = await call('POST', '/orders', { ...asOperator, ...key }, order({ customerId: 'c-key-svc' }));
    expect([bySvc.status, byOps.status]).toEqual([202, 202]);
    expect(byOps.body.orderId).not.toBe(bySvc.body.orderId);
    for (const placed of [byA, byB, bySvc, byOps])
      expect(await terminal(placed.body.orderId as string)).toBe('COMPLETED');
  });

  it("when a customer reads or cancels another customer's order, then it is 404 as for an unknown order, and the order goes on", async () => {
    const owner = await idp.token(`c-owner-${randomUUID().slice(0, 6)}`);
    const intruder = await idp.token(`c-intruder-${randomUUID().slice(0, 6)}`);
    const placed = await call('POST', '/orders', bearer(owner), order({}, 9_000)); // waits for approval
    const orderId = placed.body.orderId as string;
    await expect.poll(() => statusAsOperator(orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');

    const unknown = await call('GET', `/orders/${randomUUID()}`, bearer(intruder));
    const read = await call('GET', `/orders/${orderId}`, bearer(intruder));
    const cancel = await call('POST', `/orders/${orderId}/cancel`, bearer(intruder));
    const approve = await call('POST', `/orders/${orderId}/approve`, bearer(intruder));
    expect([read.status, cancel.status, approve.status]).toEqual([404, 404, 404]);
    expect(read.body.title).toBe(unknown.body.title);
    expect(await statusAsOperator(orderId)).toBe('AWAITING_APPROVAL');

    // The owner may cancel it; the audit event names who did.
    const cancelled = await call('POST', `/orders/${orderId}/cancel`, bearer(owner), { reason: 'changed my mind' });
    expect(cancelled.status).toBe(202);
    expect(await terminal(orderId)).toBe('CANCELLED');
    // The saga answers CANCELLED as it enters it; its audit event is stored a task later.
    const cancelEventOf = async () =>
      (await auditEventsOf({ js, jsm }, orderId)).find((event) => event.type === 'OrderCancelled');
    await expect.poll(cancelEventOf, { timeout: 10_000 }).toBeDefined();
    expect((await cancelEventOf())?.data).toMatchObject({
      cancellation: { reason: 'changed my mind', by: expect.stringMatching(/^c-owner-/) },
    });
  });

  it('when a customer approves their own order, or a service approves any, then it is 403; an operator approves and is named, whatever approvedBy the body forges', async () => {
    const customer = `c-${randomUUID().slice(0, 8)}`;
    const token = await idp.token(customer);
    const placed = await call('POST', '/orders', bearer(token), order({}, 9_000));
    const orderId = placed.body.orderId as string;
    await expect.poll(() => statusAsOperator(orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');

    const byCustomer = await call('POST', `/orders/${orderId}/approve`, bearer(token), { approvedBy: 'ops-team' });
    expect(byCustomer.status).toBe(403);
    expect(byCustomer.body.detail).toContain("approving an order is an operator's act");
    expect((await call('POST', `/orders/${orderId}/approve`, asService)).status).toBe(403);
    expect(await statusAsOperator(orderId)).toBe('AWAITING_APPROVAL');

    const byOperator = await call('POST', `/orders/${orderId}/approve`, asOperator, { approvedBy: 'the-ceo' });
    expect(byOperator.status).toBe(202);
    expect(await terminal(orderId)).toBe('COMPLETED');
    const read = await call('GET', `/orders/${orderId}`, asOperator);
    expect(read.body.approval).toEqual({ required: true, approvedBy: 'api-key:ops-team' });
    const audited = (await auditEventsOf({ js, jsm }, orderId)).map(
      (event) => (event.data as { approvedBy?: string }).approvedBy,
    );
    expect(audited).toContain('api-key:ops-team');
    expect(audited).not.toContain('the-ceo');
  });

  it('when an operator signs in with a JWT carrying the operator role, then they may read any order and approve it under their own name', async () => {
    const placed = await call('POST', '/orders', asService, order({ customerId: 'c-via-storefront' }, 9_000));
    expect(placed.status).toBe(202);
    const orderId = placed.body.orderId as string;
    await expect.poll(() => statusAsOperator(orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');
    const operator = await idp.token('alice@ops.example', ['operator']);
    expect((await call('GET', `/orders/${orderId}`, bearer(operator))).body.customerId).toBe('c-via-storefront');
    // A subject longer than the saga takes for an approver is refused by name, not a 500, and decides nothing.
    const longNamed = await idp.token(`${'x'.repeat(600)}@ops.example`, ['operator']);
    const refused = await call('POST', `/orders/${orderId}/approve`, bearer(longNamed));
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toContain('approvedBy');
    expect(await statusAsOperator(orderId)).toBe('AWAITING_APPROVAL');
    expect((await call('POST', `/orders/${orderId}/approve`, bearer(operator))).status).toBe(202);
    expect(await terminal(orderId)).toBe('COMPLETED');
    expect((await call('GET', `/orders/${orderId}`, asOperator)).body.approval).toEqual({
      required: true,
      approvedBy: 'alice@ops.example',
    });
  });
});

describe('limits', () => {
  it('when one caller sends more requests in a minute than its limit, then it gets 429 with Retry-After, and other callers are still served', async () => {
    await stack.withIngress({ RATE_LIMIT_PER_IDENTITY: '30' }, async ({ api: base }) => {
      const read = (token: string) => call('GET', `/orders/${randomUUID()}`, bearer(token), undefined, base);
      const greedy = await idp.token(`c-greedy-${randomUUID().slice(0, 6)}`);
      const statuses: number[] = [];
      for (let n = 0; n < 31; n += 1) statuses.push((await read(greedy)).status);
      expect(statuses.slice(0, 30).every((status) => status === 404)).toBe(true);
      expect(statuses[30]).toBe(429);
      const limited = await read(greedy);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limited.body.detail).toContain('more than 30 requests in a minute from this caller');
      const other = await idp.token(`c-patient-${randomUUID().slice(0, 6)}`);
      expect((await read(other)).status).toBe(404);
    });
  });

  it('when one address floods the API, then it gets 429 before authentication is even tried', async () => {
    await stack.withIngress({ RATE_LIMIT_PER_ADDRESS: '5' }, async ({ api: base }) => {
      const statuses = [];
      for (let n = 0; n < 6; n += 1)
        statuses.push((await call('GET', `/orders/${randomUUID()}`, {}, undefined, base)).status);
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    });
  });

  it('when a client announces a body and sends only part of it, then it gets 408 within seconds and the connection is closed', async () => {
    const started = Date.now();
    const reply = await rawExchange(
      `POST /orders HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${SERVICE_KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"customerId":`,
    );
    expect(reply.text).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    expect(reply.text).toContain('application/problem+json');
    expect(reply.closedAfterMs).toBeLessThan(5_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
  });

  it('when a client sends its headers too slowly, then it gets 408 and the connection is closed', async () => {
    const reply = await rawExchange('GET /orders/x HTTP/1.1\r\nHost: x\r\n');
    expect(reply.text).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    expect(reply.closedAfterMs).toBeLessThan(5_000);
  });
});

describe('operations endpoints', () => {
  it('when /metrics is asked on the public port, then it is not there; the operations port serves it and the readiness details', async () => {
    expect((await call('GET', '/metrics', asOperator)).status).toBe(404);
    const publicReady = await call('GET', '/ready');
    expect(publicReady).toMatchObject({ status: 200, body: { ready: true } });
    expect(publicReady.body).not.toHaveProperty('checks');
    const metrics = await fetch(`${stack.ingressOps}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('http_requests_total');
    expect(await (await fetch(`${stack.ingressOps}/ready`)).json()).toMatchObject({
      ready: true,
      checks: { nats: true, temporal: true },
    });
  });

  it('when the ingress runs without authentication, then its /ready and its log say so', async () => {
    const openMode = { AUTH_DISABLED: 'true', AUTH_JWKS_URL: '', AUTH_API_KEYS: '' };
    await stack.withIngress(openMode, async ({ api: base, process: open }) => {
      const ready = (await (await fetch(`${base}/ready`)).json()) as { warning?: string };
      expect(ready.warning).toContain('authentication is OFF');
      expect(open.output()).toContain('authentication is OFF');
    });
  });

  it('when the ingress is configured with no way to authenticate callers, then it refuses to start and says what to set', async () => {
    const refused: ProductProcess = stack.launch('ingress/main.ts', {
      AUTH_DISABLED: '',
      AUTH_JWKS_URL: '',
      AUTH_API_KEYS: '',
    });
    expect(await new Promise((resolve) => refused.child.once('exit', resolve))).toBe(2);
    expect(refused.output()).toContain(
      'AUTH_JWKS_URL or AUTH_API_KEYS: the ingress needs a way to authenticate callers',
    );
  });
});

// Last in the file: it leaves ORDERS full.
describe('a flood', () => {
  it('when ORDERS reaches its size limit, then POST /orders answers 503 with Retry-After and every order answered 202 is stored', async () => {
    await stack.withIngress({ ORDERS_STREAM_MAX_BYTES: String(1024 * 1024) }, async ({ api: base }) => {
      const bulky = order({
        customerId: 'c-flood',
        items: Array.from({ length: 100 }, (_, n) => ({ sku: `SKU-FLOOD-${n}`, quantity: 1, unitPrice: 1 })),
      });
      const accepted: string[] = [];
      let refused: Answer | undefined;
      for (let n = 0; n < 1_000 && !refused; n += 1) {
        const answer = await call('POST', '/orders', asService, bulky, base);
        if (answer.status === 202) accepted.push(answer.body.orderId as string);
        else refused = answer;
      }
      expect(refused?.status).toBe(503);
      expect(refused?.headers.get('retry-after')).toBe('5');
      expect(refused?.body.detail).toContain('nothing was accepted');
      expect(accepted.length).toBeGreaterThan(50);
      const stored = new Set((await readStream(js, jsm, 'ORDERS')).map((event) => event.aggregate_id));
      expect(accepted.filter((orderId) => !stored.has(orderId))).toEqual([]);
    });
  });
});

/** Sends raw bytes and reads until the server closes the connection. */
async function rawExchange(request: string): Promise<{ text: string; startedAt: number; closedAfterMs: number }> {
  const port = Number(new URL(api).port);
  const startedAt = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, startedAt, closedAfterMs: Date.now() - startedAt }));
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for 15 s; it answered: ${text}`));
    }, 15_000);
  });
}
