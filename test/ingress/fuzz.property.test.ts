// The routes fuzzed: generated requests, valid and invalid (methods, paths and their parameters,
// query strings, headers, credentials, content types and encodings, bodies of every shape and
// size), sent to a running ingress with its worker, Temporal and NATS. Every answer is checked
// against docs/openapi.json by the test harness (test/harness/check-api-responses.ts); this file
// asserts what the contract cannot say: no 5xx, an invalid request stores nothing (no message in
// ORDERS, no idempotency record), a valid order is accepted and its saga appears, and the
// ingress keeps serving throughout.
// Reproduce a failing run with its seed: FUZZ_SEED=<seed> npm test -- <this file>;
// a longer run: npm run test:fuzz (FUZZ_RUNS=2000).
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../lib/nats.js';
import { IDEMPOTENCY_BUCKET } from '../../ingress/order-intake.js';
import { OPENAPI_PATH } from '../support/api-contract.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const OPERATOR_KEY = `op_${randomUUID()}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let stack: ProcessTier;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  stack = await startProcessTier('fuzz', {
    AUTH_DISABLED: '',
    AUTH_API_KEYS: `ops-team:operator:${sha256(OPERATOR_KEY)}`,
    AUTH_JWKS_URL: '',
  });
  await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
  nc = await connectNats([stack.nats.url], 'fuzz-test');
  jsm = await jetstreamManager(nc);
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await stack?.close();
});

/** Messages in ORDERS and idempotency records kept: what an invalid request must not change. */
async function stored(): Promise<{ orders: number; idempotencyRecords: number }> {
  const [orders, keys] = await Promise.all([jsm.streams.info('ORDERS'), jsm.streams.info(`KV_${IDEMPOTENCY_BUCKET}`)]);
  return { orders: orders.state.messages, idempotencyRecords: keys.state.messages };
}

const contract = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as { paths: Record<string, Record<string, unknown>> };

/** The methods docs/openapi.json gives a request's path (HEAD with GET), in its order. */
function documentedMethods(requestPath: string): string[] {
  const path = requestPath.split('?')[0]!.replace(/(.)\/$/, '$1');
  const methods = Object.entries(contract.paths)
    .filter(([template]) =>
      new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`, 'i').test(path),
    )
    .flatMap(([, operations]) => Object.keys(operations).map((method) => method.toUpperCase()));
  return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  /** A POST /orders whose body is a valid order, sent with valid credentials as JSON. */
  validOrder: boolean;
}

const pathParameter = fc.oneof(
  fc.uuid().map((id) => id),
  fc.uuid().map((id) => id.toUpperCase()),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.constantFrom('..%2F..%2Fetc', '%00', '%27%20OR%201%3D1', 'a'.repeat(300), '%F0%9F%93%A6', 'SKU-1', 'x.y:z@w-1'),
);
const path = fc.oneof(
  fc.constant('/orders'),
  fc
    .tuple(pathParameter, fc.constantFrom('', '/cancel', '/approve', '/ship'))
    .map(([id, tail]) => `/orders/${id}${tail}`),
  fc.tuple(pathParameter, fc.constantFrom('', '/restock')).map(([sku, tail]) => `/inventory/${sku}${tail}`),
  pathParameter.map((id) => `/inventory/reservations/${id}/release`),
  fc.constantFrom('/health', '/ready', '/openapi.json', '/', '/metrics', '/orders/', '//orders'),
  fc.string({ maxLength: 30 }).map((text) => `/${encodeURIComponent(text)}`),
);
const query = fc.oneof(
  fc.constant(''),
  fc
    .dictionary(
      fc.constantFrom('status', 'customerId', 'limit', 'cursor', 'minTotal', 'changedBefore', 'x', 'status[]'),
      fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('COMPLETED', '10', '2026-12-06T10:00:00Z')),
      { maxKeys: 4 },
    )
    .map((params) => `?${new URLSearchParams(params).toString()}`),
  fc.constantFrom('?status=COMPLETED&status=CANCELLED', '?limit=1e3', '?%ZZ', '?a=%FF'),
);

const validOrderOf = (sku: string) => ({
  customerId: 'c-fuzz',
  items: [{ sku, quantity: 1, unitPrice: 500 }],
  currency: 'EUR',
  paymentToken: 'tok_visa',
});

/** Orders of every shape: valid, one field broken, wrong types, oversized, extra fields. */
function orderBody(sku: string) {
  const valid = validOrderOf(sku);
  const anyJson = fc.jsonValue({ maxDepth: 3 });
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(valid) },
    fc
      .tuple(fc.constantFrom(...Object.keys(valid)), fc.oneof(anyJson, fc.constant(undefined)))
      .map(([field, value]) => ({ ...valid, [field]: value })),
    fc
      .tuple(fc.constantFrom('quantity', 'unitPrice', 'sku'), anyJson)
      .map(([field, value]) => ({ ...valid, items: [{ ...valid.items[0], [field]: value }] })),
    fc.constant({ ...valid, total: 1 }),
    fc.constant({ ...valid, customerId: 'c'.repeat(129) }),
    fc.constant({ ...valid, items: Array.from({ length: 101 }, () => valid.items[0]) }),
    fc.constant({ ...valid, email: 'not-an-email' }),
    anyJson,
  );
}

function fuzzRequest(sku: string): fc.Arbitrary<FuzzRequest> {
  const encoder = new TextEncoder();
  const body = fc.oneof(
    orderBody(sku).map((value) => ({ bytes: encoder.encode(JSON.stringify(value) ?? ''), value })),
    fc.string({ maxLength: 200 }).map((text) => ({ bytes: encoder.encode(text), value: Symbol('text') })),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ bytes, value: Symbol('bytes') })),
    fc.constant({ bytes: encoder.encode(`{"items":"${'x'.repeat(70_000)}"}`), value: Symbol('oversized') }),
    fc.constant(undefined),
  );
  const contentType = fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=latin1',
    'application/merge-patch+json',
    'text/plain',
    'multipart/form-data; boundary=x',
    undefined,
  );
  const credentials: fc.Arbitrary<Record<string, string>> = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ 'x-api-key': OPERATOR_KEY }) },
    fc.constant({}),
    fc.constant({ 'x-api-key': `${OPERATOR_KEY}x` }),
    fc.string({ maxLength: 40 }).map((text) => ({ authorization: `Bearer ${text.replace(/[^\x21-\x7e]/g, '')}` })),
    fc.constant({ authorization: 'Basic dXNlcjpwYXNz' }),
  );
  const extraHeaders = fc.record(
    {
      'idempotency-key': fc.oneof(
        fc.uuid(),
        fc.string({ maxLength: 20 }).map((text) => text.replace(/[^\x20-\x7e]/g, '')),
        fc.constant('k'.repeat(300)),
      ),
      'content-encoding': fc.constantFrom('gzip', 'br', 'identity', 'bogus'),
      accept: fc.constantFrom('application/json', 'text/html', '*/*'),
    },
    { requiredKeys: [] },
  );
  return fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
      path,
      query,
      body,
      contentType,
      credentials,
      extraHeaders,
    })
    .map(
      ({
        method,
        path: route,
        query: search,
        body: sent,
        contentType: type,
        credentials: auth,
        extraHeaders: extra,
      }) => {
        const withBody = sent !== undefined && method !== 'GET' && method !== 'HEAD';
        const headers: Record<string, string> = {
          ...auth,
          ...extra,
          ...(withBody && type && { 'content-type': type }),
        };
        const validOrder =
          method === 'POST' &&
          route === '/orders' &&
          withBody &&
          typeof sent.value === 'object' &&
          JSON.stringify(sent.value) === JSON.stringify(validOrderOf(sku)) &&
          auth['x-api-key'] === OPERATOR_KEY &&
          (type === 'application/json' || type === 'application/json; charset=utf-8') &&
          (extra['content-encoding'] === undefined || extra['content-encoding'] === 'identity') &&
          (extra['idempotency-key'] === undefined || /^[\x21-\x7e]{1,255}$/.test(extra['idempotency-key']));
        return { method, path: `${route}${search}`, headers, body: withBody ? sent.bytes : undefined, validOrder };
      },
    );
}

/** A valid order, sent as a client would, sometimes again with the same Idempotency-Key. */
function validOrderRequest(sku: string): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      key: fc.option(fc.constantFrom('fuzz-key-1', 'fuzz-key-2', randomUUID()), { nil: undefined }),
      price: fc.integer({ min: 1, max: 50_000 }),
    })
    .map(({ key, price }) => ({
      method: 'POST',
      path: '/orders',
      headers: {
        'x-api-key': OPERATOR_KEY,
        'content-type': 'application/json',
        ...(key !== undefined && { 'idempotency-key': key }),
      },
      body: new TextEncoder().encode(
        JSON.stringify({
          ...validOrderOf(sku),
          items: [{ sku, quantity: 1, unitPrice: key === undefined ? price : 500 }],
        }),
      ),
      validOrder: true,
    }));
}

/** Sends a drawn request; `where` names it and its answer for failure messages. */
async function send(request: FuzzRequest): Promise<{ response: Response; text: string; where: string }> {
  const response = await fetch(`${stack.api}${request.path}`, {
    method: request.method,
    headers: request.headers,
    ...(request.body && { body: request.body }),
  });
  const text = await response.text();
  return {
    response,
    text,
    where: `${request.method} ${request.path.slice(0, 120)} -> ${response.status} ${text.slice(0, 300)}`,
  };
}

describe('the routes fuzzed', () => {
  it(`when any request arrives, valid or not, then the answer is documented, never a 5xx, an invalid one stores nothing and a valid order is accepted (seed ${SEED}, ${RUNS} runs)`, async () => {
    const accepted = new Set<string>();
    /** Idempotency keys a valid order was sent with: a repeat is answered with the first order. */
    const keysUsed = new Map<string, string>();
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 4, arbitrary: fuzzRequest(stack.sku) }, validOrderRequest(stack.sku)),
        async (request) => {
          const before = await stored();
          const { response, text, where } = await send(request);
          expect(response.status, where).toBeLessThan(500);
          if (response.status === 405) {
            // Allow names the path's methods as the contract documents them, and not the one refused.
            const allow = (response.headers.get('allow') ?? '').split(', ');
            expect(allow, where).toEqual(documentedMethods(request.path));
            expect(allow, where).not.toContain(request.method);
          }
          if (response.status >= 400 && request.method !== 'HEAD') {
            expect(response.headers.get('content-type'), where).toContain('application/problem+json');
            const problem = JSON.parse(text) as { status: number; detail: string };
            expect(problem.status, where).toBe(response.status);
            expect(problem.detail.length, where).toBeGreaterThan(10);
          }
          const after = await stored();
          const key = request.headers['idempotency-key'];
          const placing = request.method === 'POST' && request.path.split('?')[0] === '/orders';
          if (request.validOrder) {
            valid += 1;
            expect(response.status, where).toBe(202);
          }
          if (placing && response.status === 202) {
            // Accepted (also an order the generator broke into another valid one): stored once.
            const { orderId } = JSON.parse(text) as { orderId: string };
            const repeat = key !== undefined && keysUsed.has(key);
            if (repeat) expect(orderId, where).toBe(keysUsed.get(key));
            else accepted.add(orderId);
            if (key !== undefined) keysUsed.set(key, orderId);
            expect(after.orders - before.orders, where).toBe(repeat ? 0 : 1);
          } else {
            // Refused, or not an order at all: nothing in ORDERS, no idempotency record.
            expect(after, `${where}: stored something`).toEqual(before);
          }
        },
      ),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    // The generator reaches valid orders too, not only refusals.
    expect(valid).toBeGreaterThan(0);
    // Every accepted order's saga appears; the ingress still serves.
    for (const orderId of accepted)
      await expect
        .poll(
          async () =>
            (await fetch(`${stack.api}/orders/${orderId}`, { headers: { 'x-api-key': OPERATOR_KEY } })).status,
          { timeout: 30_000 },
        )
        .toBe(200);
    expect((await fetch(`${stack.api}/health`)).status).toBe(200);
  }, 600_000);

  it(`when NATS is down, then any request is answered without a 5xx but a documented 503, nothing is stored, and orders are taken again once it is back (seed ${SEED})`, async () => {
    const before = await stored();
    await stack.nats.stop();
    let unavailable = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fuzzRequest(stack.sku), validOrderRequest(stack.sku)), async (request) => {
          const { response, where } = await send(request);
          if (response.status === 503) unavailable += 1;
          else expect(response.status, where).toBeLessThan(500);
          // Nothing can be stored: an order is accepted only once JetStream has it.
          if (request.validOrder) expect(response.status, where).toBe(503);
        }),
        { seed: SEED, numRuns: Math.ceil(RUNS / 3), endOnFailure: true },
      );
    } finally {
      await stack.nats.restart();
    }
    expect(unavailable).toBeGreaterThan(0);
    // Once NATS is back (its streams readable again), nothing was stored meanwhile, nor later.
    await expect.poll(async () => (await stored().catch(() => undefined))?.orders, { timeout: 15_000 }).toBeDefined();
    expect(await stored()).toEqual(before);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await stored()).toEqual(before);
    await expect
      .poll(
        async () =>
          (
            await fetch(`${stack.api}/orders`, {
              method: 'POST',
              headers: { 'x-api-key': OPERATOR_KEY, 'content-type': 'application/json' },
              body: JSON.stringify(validOrderOf(stack.sku)),
            })
          ).status,
        { timeout: 30_000, interval: 500 },
      )
      .toBe(202);
  }, 300_000);
});
