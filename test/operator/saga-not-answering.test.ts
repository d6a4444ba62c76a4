// What the ingress says when a saga does not answer a decision in time while Temporal itself
// answers (no worker completes the saga's workflow task: the worker is down, or the task fails
// on every attempt). It used to log "Temporal unavailable", sending the operator to look at a
// server that was fine; it now names the saga and where to look. Real worker and ingress.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProductProcess } from '../support/processes.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

let stack: ProcessTier;
let worker: ProductProcess;
let ingress: ProductProcess;

beforeAll(async () => {
  stack = await startProcessTier('saga-not-answering');
  [worker, ingress] = await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
});
afterAll(async () => {
  await stack?.close();
});

describe('a decision the saga does not answer in time', () => {
  it('is answered 503 saying the saga did not answer (not that Temporal is unavailable), and logged so', async () => {
    // Above the approval threshold: the saga waits for an approval.
    const orderId = await stack.placeOrder({ unitPrice: 250_000 });
    await expect.poll(() => stack.statusOf(orderId), { timeout: 30_000 }).toBe('AWAITING_APPROVAL');
    await worker.stop(); // nobody can complete the workflow task the approval needs

    const response = await fetch(`${stack.api}/orders/${orderId}/approve`, { method: 'POST' });
    const body = (await response.json()) as { detail: string };
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(body.detail).toContain(`the saga of order ${orderId} did not answer in time`);
    expect(body.detail).toContain('Temporal answers');
    expect(body.detail).toContain('Web UI');

    // The log line reaches us through the process's pipe, which may trail its HTTP answer.
    await expect
      .poll(() => ingress.output(), { timeout: 5_000 })
      .toContain('the saga did not answer in time (its workflow task may be failing; see the Web UI)');
    expect(ingress.output()).not.toContain('Temporal unavailable');
  }, 60_000);
});
