// The idempotency bucket across ingress restarts with another IDEMPOTENCY_TTL, against a real
// nats-server (one of this file's own, so reopening the bucket with other settings cannot touch
// another file's): the bucket is opened as a restarted ingress opens it, and orders go through
// OrderIntake as POST /orders sends them, so "a key behaves by the new TTL" is what a client sees.
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { Keyring } from '../../lib/encryption.js';
import { IDEMPOTENCY_BUCKET, OrderIntake, openIdempotencyBucket } from '../../ingress/order-intake.js';
import { canonicalRequest, type OrderRequest } from '../../ingress/order-request.js';
import { startPrivateNats, type PrivateNats } from '../support/private-nats.js';

const HOUR_MS = 3_600_000;
const SHORT_TTL_MS = 2_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nats: PrivateNats;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startPrivateNats('idempotency-bucket');
  nc = await connectNats([nats.url], 'idempotency-bucket-test');
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
});

afterAll(async () => {
  await nc?.close();
  await nats?.close();
});

/** What an ingress starting with IDEMPOTENCY_TTL = ttlMs does: open the bucket, then take orders with it. */
async function ingressStartedWith(ttlMs: number): Promise<OrderIntake> {
  return new OrderIntake({ js, idempotency: await openBucket(ttlMs), connected: () => true, keyring: new Keyring([]) });
}

const openBucket = (ttlMs: number) => openIdempotencyBucket(js, jsm, { ttlMs, replicas: 1, maxBytes: 64 * 1024 ** 2 });
const storefront = { id: 'api-key:storefront', via: 'api-key' } as const;
/** A storefront's Idempotency-Key: these tests are about time, so one caller sends every key. */
const keyed = (key: string) => ({ key, caller: storefront });

async function bucketStream() {
  return (await jsm.streams.info(`KV_${IDEMPOTENCY_BUCKET}`)).config;
}

const request: OrderRequest = {
  customerId: 'c-ttl',
  items: [{ sku: 'SKU-TTL', quantity: 1, unitPrice: 1_000 }],
  currency: 'EUR',
  paymentToken: 'tok_visa',
};

describe('IDEMPOTENCY_TTL changed between restarts', () => {
  it('when the TTL is raised, then the bucket keeps keys for the new TTL: a retry past the old TTL names the same order', async () => {
    await jsm.streams.delete(`KV_${IDEMPOTENCY_BUCKET}`).catch(() => undefined);
    const before = await ingressStartedWith(SHORT_TTL_MS);
    const key = randomUUID();
    const first = await before.accept(request, keyed(key));

    const after = await ingressStartedWith(HOUR_MS);
    const config = await bucketStream();
    expect(config.max_age).toBe(nanos(HOUR_MS));
    await sleep(SHORT_TTL_MS + 1_500); // past the TTL the key was stored under
    const retry = await after.accept(request, keyed(key));

    expect(retry).toMatchObject({ orderId: first.orderId, replayed: true });
  });

  it('when the TTL is lowered, then keys older than the new TTL are gone at once and a new key expires after the new TTL', async () => {
    await jsm.streams.delete(`KV_${IDEMPOTENCY_BUCKET}`).catch(() => undefined);
    const before = await ingressStartedWith(HOUR_MS);
    const oldKey = randomUUID();
    const old = await before.accept(request, keyed(oldKey));
    await sleep(SHORT_TTL_MS + 500);

    const after = await ingressStartedWith(SHORT_TTL_MS);
    const config = await bucketStream();
    expect(config.max_age).toBe(nanos(SHORT_TTL_MS));
    // JetStream refuses a stream whose duplicate window is longer than its max age.
    expect(config.duplicate_window).toBeLessThanOrEqual(config.max_age);
    // The key stored under the old TTL is older than the new one: it names no order any more.
    const oldReused = await after.accept(request, keyed(oldKey));
    expect(oldReused.replayed).toBe(false);
    expect(oldReused.orderId).not.toBe(old.orderId);

    const key = randomUUID();
    const first = await after.accept(request, keyed(key));
    expect(await after.accept(request, keyed(key))).toMatchObject({ orderId: first.orderId, replayed: true });
    await sleep(SHORT_TTL_MS + 1_500);
    const later = await after.accept(request, keyed(key));
    expect(later.replayed).toBe(false);
    expect(later.orderId).not.toBe(first.orderId);
  });
});

describe('keys stored before Idempotency-Keys were per caller', () => {
  // Until keys were scoped by caller, a key's record was stored under `key.<sha256 of the key>` for every caller.
  const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
  async function storedByThePreviousVersion(key: string, body: OrderRequest) {
    const bucket = await openBucket(HOUR_MS);
    const record = { fingerprint: sha256(canonicalRequest(body)), orderId: randomUUID(), traceId: 'a'.repeat(32) };
    await bucket.create(`key.${sha256(key)}`, JSON.stringify({ ...record, createdAt: new Date().toISOString() }));
    return record;
  }

  it('when a request the previous version accepted is retried after the upgrade, then it names the same order, not a second one', async () => {
    const key = randomUUID();
    const earlier = await storedByThePreviousVersion(key, request);
    const intake = await ingressStartedWith(HOUR_MS);

    expect(await intake.accept(request, keyed(key))).toMatchObject({ orderId: earlier.orderId, replayed: true });
    expect(await intake.accept(request, keyed(key))).toMatchObject({ orderId: earlier.orderId, replayed: true });
  });

  it('when an old key comes with another body, then it is an order of its own: the old record does not say who sent it', async () => {
    const key = randomUUID();
    const earlier = await storedByThePreviousVersion(key, request);
    const intake = await ingressStartedWith(HOUR_MS);
    const another = { ...request, customerId: 'c-someone-else' };

    const accepted = await intake.accept(another, keyed(key));
    expect(accepted.replayed).toBe(false);
    expect(accepted.orderId).not.toBe(earlier.orderId);
    expect(await intake.accept(another, keyed(key))).toMatchObject({ orderId: accepted.orderId, replayed: true });
  });
});
