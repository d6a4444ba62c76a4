// A worker paused while its workflow thread runs a saga's activation (SIGSTOP: a container
// frozen or throttled, a VM descheduled). The SDK runs each call into the workflow sandbox under
// a wall-clock deadline (its deadlock detection); a pause longer than that deadline makes it fire
// the moment the worker runs again, and Node then aborts the whole process ("async hook stack has
// become corrupted": the deadline stops the workflow's microtasks inside an AsyncLocalStorage
// scope) instead of failing the one workflow task. That was the worker crash seen in the chaos
// runs. The worker now gives a call ISOLATE_EXECUTION_TIMEOUT (60 s, workers/order-worker.ts).
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startChaosTier, type ChaosTier } from '../chaos/chaos-tier.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const postgresUrl = inject('postgresUrl');
let tier: ChaosTier | undefined;

afterAll(async () => {
  await tier?.close();
});

const ORDERS = Number(process.env.WORKER_PAUSE_ORDERS ?? 60);
const ROUNDS = Number(process.env.WORKER_PAUSE_ROUNDS ?? 3);
/** Longer than the SDK's default deadline (5 s), shorter than the worker's. */
const PAUSE_MS = 7_000;

describe.skipIf(!postgresUrl)('a worker paused mid-activation', () => {
  it('when the worker is frozen for 7 s while its sagas run, then it goes on without dying and every order completes', async () => {
    tier = await startChaosTier('worker-pause', { temporal: 'dev', natsNodes: 1, ingresses: 1, workers: 1 });
    const { sku, workers, unexpectedExits } = tier;
    const [api] = tier.apis;
    const [worker] = workers;
    const orderIds: string[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const placed = Array.from({ length: ORDERS }, async (_, i) => {
        const response = await fetch(`${api}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `worker-pause-${sku}-${round}-${i}` },
          body: JSON.stringify({
            customerId: 'worker-pause-customer',
            items: [{ sku, quantity: 1, unitPrice: 1_000 }],
            currency: 'EUR',
            paymentToken: 'tok_visa',
          }),
        });
        expect(response.status).toBe(202);
        orderIds.push(((await response.json()) as { orderId: string }).orderId);
      });
      // Freeze the worker while its starter starts these sagas and their activations run.
      await sleep(500);
      worker!.freeze();
      await sleep(PAUSE_MS);
      worker!.thaw();
      await Promise.all(placed);
      await sleep(3_000);
    }

    const statusOf = async (orderId: string) =>
      ((await (await fetch(`${api}/orders/${orderId}`)).json()) as { status?: string }).status;
    for (const orderId of orderIds)
      await expect.poll(() => statusOf(orderId), { timeout: 60_000, interval: 500 }).toBe('COMPLETED');
    expect(unexpectedExits.map(({ summary, lastOutput }) => `${summary}\n${lastOutput}`)).toEqual([]);
  }, 300_000);
});
