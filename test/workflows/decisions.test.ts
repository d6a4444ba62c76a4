// The saga's decisions as operators and the HTTP routes send them, against the real Temporal
// server: an update whose input does not fit is refused by its validator with the reason (it
// used to fail the workflow task, and the saga with it), and an approval that arrives once the
// saga has decided to reject is refused (it used to be accepted while the order ended REJECTED).
// The saga's notices go through a gate this file holds closed, so a test can act while the saga
// is between its decision and its final status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { JetStreamClient } from '@nats-io/jetstream';
import {
  approveOrderSignal,
  approveOrderUpdate,
  cancelOrderUpdate,
  getStatusQuery,
  type OrderStatus,
} from '../../workflows/contract.js';
import type { orderSaga } from '../../workflows/order-saga.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import { FailureType } from '../../domain/failures.js';
import { startActivityTier, type ActivityTier } from '../support/activity-tier.js';
import { startTestSaga } from '../support/orders.js';
import { connectClient, startInProcessWorker, type RunningWorker } from '../support/temporal.js';

let stack: ActivityTier;
let client: Client;
let closeClient: () => Promise<void>;
let worker: RunningWorker;
/** Orders whose customer notices wait until their gate opens. */
const noticeGates = new Map<string, { opened: Promise<void>; open: () => void }>();

/** Holds the notices of `orderId` until the returned function is called. */
function holdNotices(orderId: string): () => void {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  noticeGates.set(orderId, { opened, open });
  return open;
}

/** The JetStream client the activities use, with the notices of gated orders held back. */
function withNoticeGates(js: JetStreamClient): JetStreamClient {
  return new Proxy(js, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (property !== 'publish' || typeof value !== 'function') return value;
      return async (subject: string, data: Uint8Array, options?: unknown) => {
        if (subject.startsWith('notifications.')) {
          const text = new TextDecoder().decode(data);
          for (const [orderId, gate] of noticeGates) if (text.includes(orderId)) await gate.opened;
        }
        return (value as (...args: unknown[]) => unknown).call(target, subject, data, options);
      };
    },
  });
}

beforeAll(async () => {
  stack = await startActivityTier();
  ({ client, close: closeClient } = await connectClient());
  worker = await startInProcessWorker({ ...stack.clients, js: withNoticeGates(stack.js) });
}, 60_000);

afterAll(async () => {
  for (const gate of noticeGates.values()) gate.open();
  await worker?.stop();
  await closeClient?.();
  await stack?.close();
});

async function startSaga(settings: Partial<SagaSettings>): Promise<WorkflowHandle<typeof orderSaga>> {
  const inventory = stack.inventory;
  return (await startTestSaga({ client, taskQueue: worker.taskQueue, inventory }, { settings })).handle;
}

async function statusOf(handle: WorkflowHandle): Promise<OrderStatus> {
  return (await handle.query(getStatusQuery)).status;
}

/** The failure a refused update carries: its type and message. */
async function refusal(update: Promise<unknown>): Promise<{ type?: string; message: string }> {
  const error = await update.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (error as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return { type: (cause as ApplicationFailure).type ?? undefined, message: (cause as ApplicationFailure).message };
}

/** No workflow task of the saga failed: nothing it was sent wedged it, even for a moment. */
async function expectNoFailedWorkflowTask(handle: WorkflowHandle): Promise<void> {
  const { events } = await handle.fetchHistory();
  expect(events?.filter((event) => event.workflowTaskFailedEventAttributes)).toEqual([]);
}

describe('update inputs that do not fit', () => {
  for (const { name, send, field } of [
    {
      name: 'cancelOrder {"reason": 1}',
      send: (h: WorkflowHandle) => h.executeUpdate(cancelOrderUpdate, { args: [{ reason: 1 as never }] }),
      field: 'reason',
    },
    {
      name: 'approveOrder {"approvedBy": {"name": "x"}}',
      send: (h: WorkflowHandle) =>
        h.executeUpdate(approveOrderUpdate, { args: [{ approvedBy: { name: 'x' } as never }] }),
      field: 'approvedBy',
    },
    {
      name: 'cancelOrder with a 100,000-character reason',
      send: (h: WorkflowHandle) => h.executeUpdate(cancelOrderUpdate, { args: [{ reason: 'x'.repeat(100_000) }] }),
      field: 'reason',
    },
    {
      name: 'approveOrder [1, 2]',
      send: (h: WorkflowHandle) => h.executeUpdate(approveOrderUpdate, { args: [[1, 2] as never] }),
      field: 'JSON object',
    },
  ])
    it(`when ${name} is sent, then the validator refuses it naming what is wrong, and the saga goes on`, async () => {
      const handle = await startSaga({ approvalThreshold: 1_000 });
      await expect.poll(() => statusOf(handle), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');

      const refused = await refusal(send(handle));
      expect(refused.type).toBe(FailureType.decisionInputInvalid);
      expect(refused.message).toContain(field);
      expect(await statusOf(handle)).toBe('AWAITING_APPROVAL');
      await handle.executeUpdate(approveOrderUpdate, { args: [{ approvedBy: 'ops-lead' }] });
      expect((await handle.result()).status).toBe('COMPLETED');
      await expectNoFailedWorkflowTask(handle);
    }, 60_000);
});

describe('an approval after the saga decided to reject', () => {
  it('when the approval arrives while the rejection is under way, then the update is refused and the signal dropped, and the order ends REJECTED', async () => {
    const handle = await startSaga({ approvalThreshold: 1_000, approvalTimeoutMs: 1_000 });
    const orderId = handle.workflowId.slice('order-'.length);
    const releaseNotice = holdNotices(orderId);
    // The approval timed out: the saga has decided and waits for its rejection notice to go out.
    await expect
      .poll(async () => (await handle.query(getStatusQuery)).failure?.type, { timeout: 15_000 })
      .toBe(FailureType.approvalTimedOut);

    const refused = await refusal(handle.executeUpdate(approveOrderUpdate, { args: [{ approvedBy: 'late-ops' }] }));
    expect(refused.type).toBe(FailureType.updateRefused);
    expect(refused.message).toContain('being rejected');
    await handle.signal(approveOrderSignal, { approvedBy: 'late-ops-by-cli' });
    releaseNotice();

    const result = await handle.result();
    expect(result.status).toBe('REJECTED');
    expect(result.approval).toEqual({ required: true });
    await expectNoFailedWorkflowTask(handle);
  }, 60_000);
});
