// Activities alone, in the SDK's mock activity environment, with real clients: the sandbox
// gateway over HTTP, NATS from the harness, the embedded inventory store. What is checked is
// how each outcome reaches Temporal: business failures non-retryable, infrastructure retryable.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type OrderActivities } from '../../activities/index.js';
import { startActivityTier, type ActivityTier } from '../support/activity-tier.js';
import { readStream } from '../support/streams.js';
import { newTraceId } from '../../lib/envelope.js';
import { NO_FAULTS } from '../../sandbox/payment-gateway/server.js';

let stack: ActivityTier;
let activities: OrderActivities;
const env = new MockActivityEnvironment();

beforeAll(async () => {
  stack = await startActivityTier({ breaker: { threshold: 2, halfOpenAfterMs: 60_000 }, paymentTimeoutMs: 300 });
  activities = createActivities(stack.clients);
});
afterAll(async () => stack?.close());
beforeEach(async () => stack.gateway.setFaults(NO_FAULTS));

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

describe('activities', () => {
  it('when the card is declined, then chargePayment fails non-retryable with the decline code', async () => {
    const failure = await failureOf(
      env.run(activities.chargePayment, {
        orderId: randomUUID(),
        amount: 100,
        currency: 'EUR',
        paymentToken: 'tok_insufficient_funds',
      }),
    );
    expect(failure.type).toBe('PaymentDeclined');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('insufficient_funds');
  });

  it('when charged twice for one order, then the gateway returns the first charge', async () => {
    const request = { orderId: randomUUID(), amount: 4_200, currency: 'EUR', paymentToken: 'tok_visa' };
    type Charge = (typeof activities)['chargePayment'];
    const first = await env.run<Parameters<Charge>, Awaited<ReturnType<Charge>>, Charge>(
      activities.chargePayment,
      request,
    );
    const second = await env.run<Parameters<Charge>, Awaited<ReturnType<Charge>>, Charge>(
      activities.chargePayment,
      request,
    );
    expect(second.chargeId).toBe(first.chargeId);
    expect((await stack.gateway.ledger(request.orderId)).charges).toHaveLength(1);
  });

  it('when nothing was charged, then refundPayment is a harmless no-op', async () => {
    expect(await env.run(activities.refundPayment, { orderId: randomUUID(), amount: 100, currency: 'EUR' })).toEqual({
      refunded: false,
    });
  });

  it('when an item is out of stock, then reserveInventory fails non-retryable naming the SKU', async () => {
    const failure = await failureOf(
      env.run(activities.reserveInventory, {
        orderId: randomUUID(),
        items: [{ sku: 'SKU-NONE', quantity: 1, unitPrice: 1 }],
      }),
    );
    expect(failure.type).toBe('OutOfStock');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.details).toEqual([{ sku: 'SKU-NONE' }]);
  });

  it('when the gateway keeps failing, then the breaker opens and the failure carries the delay before the next try', async () => {
    await stack.gateway.setFaults({ outage: true });
    const request = { orderId: randomUUID(), amount: 100, currency: 'EUR', paymentToken: 'tok_visa' };
    for (let i = 0; i < 2; i += 1) {
      await expect(env.run(activities.chargePayment, request)).rejects.toThrow(/503/);
    }
    const callsBefore = (await stack.gateway.ledger(request.orderId)).calls.charges;
    const failure = await failureOf(env.run(activities.chargePayment, request));
    expect(failure.type).toBe('CircuitOpen');
    expect(failure.nonRetryable).toBe(false);
    expect(Number(failure.nextRetryDelay)).toBeGreaterThan(50_000);
    expect((await stack.gateway.ledger(request.orderId)).calls.charges).toBe(callsBefore);
  });

  it('when a notice is sent twice, then NOTIFICATIONS holds it once', async () => {
    const input = {
      orderId: randomUUID(),
      kind: 'confirmation' as const,
      customerId: 'c-1',
      total: 1,
      currency: 'EUR',
      traceId: newTraceId(),
    };
    await env.run(activities.sendNotification, input);
    await env.run(activities.sendNotification, input);
    const notices = (await readStream(stack.js, stack.jsm, 'NOTIFICATIONS')).filter(
      (n) => n.aggregate_id === input.orderId,
    );
    expect(notices).toHaveLength(1);
    expect(notices[0]!.headers.traceparent).toContain(input.traceId);
  });
});
