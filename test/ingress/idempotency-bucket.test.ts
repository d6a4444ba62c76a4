// The idempotency bucket across ingress restarts with another IDEMPOTENCY_TTL, against a real
// nats-server (one of this file's own, so reopening the bucket with other settings cannot touch
// another file's): the bucket is opened as a restarted ingress opens it, and orders go through
// OrderIntake as POST /orders sends them, so "a key behaves by the new TTL" is what a client sees.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { connectNats, ensureStreams } from '../../lib/nats.js';
import { Keyring } from '../../lib/encryption.js';
import { IDEMPOTENCY_BUCKET, OrderIntake, openIdempotencyBucket } from '../../ingress/order-intake.js';
import type { OrderRequest } from '../../ingress/order-request.js';
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
  const idempotency = await openIdempotencyBucket(js, jsm, { ttlMs, replicas: 1, maxBytes: 64 * 1024 ** 2 });
  return new OrderIntake({ js, idempotency, connected: () => true, keyring: new Keyring([]) });
}

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
    const first = await before.accept(request, key);

    const after = await ingressStartedWith(HOUR_MS);
    const config = await bucketStream();
    expect(config.max_age).toBe(nanos(HOUR_MS));
    await sleep(SHORT_TTL_MS + 1_500); // past the TTL the key was stored under
    const retry = await after.accept(request, key);

    expect(retry).toMatchObject({ orderId: first.orderId, replayed: true });
  });

  it('when the TTL is lowered, then keys older than the new TTL are gone at once and a new key expires after the new TTL', async () => {
    await jsm.streams.delete(`KV_${IDEMPOTENCY_BUCKET}`).catch(() => undefined);
    const before = await ingressStartedWith(HOUR_MS);
    const oldKey = randomUUID();
    const old = await before.accept(request, oldKey);
    await sleep(SHORT_TTL_MS + 500);

    const after = await ingressStartedWith(SHORT_TTL_MS);
    const config = await bucketStream();
    expect(config.max_age).toBe(nanos(SHORT_TTL_MS));
    // JetStream refuses a stream whose duplicate window is longer than its max age.
    expect(config.duplicate_window).toBeLessThanOrEqual(config.max_age);
    // The key stored under the old TTL is older than the new one: it names no order any more.
    const oldReused = await after.accept(request, oldKey);
    expect(oldReused.replayed).toBe(false);
    expect(oldReused.orderId).not.toBe(old.orderId);

    const key = randomUUID();
    const first = await after.accept(request, key);
    expect(await after.accept(request, key)).toMatchObject({ orderId: first.orderId, replayed: true });
    await sleep(SHORT_TTL_MS + 1_500);
    const later = await after.accept(request, key);
    expect(later.replayed).toBe(false);
    expect(later.orderId).not.toBe(first.orderId);
  });
});
