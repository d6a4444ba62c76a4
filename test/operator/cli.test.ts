// Operators act on sagas from the command line: the real `temporal` and `tctl` binaries the
// toolchain provides, against the test server. Each test checks the saga's reaction.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { Client } from '@temporalio/client';
import { ensureTool } from '../../scripts/toolchain.mjs';
import { getStatusQuery, type OrderStatus } from '../../workflows/contract.js';
import type { Order } from '../../domain/order.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import { auditEventsOf } from '../support/streams.js';
import { startTestSaga } from '../support/orders.js';
import type { ActivityTier } from '../support/activity-tier.js';
import type { RunningWorker } from '../support/temporal.js';
import { startSagaTier, type SagaTier } from '../support/saga-tier.js';

const run = promisify(execFile);
let temporalCli: string;
let tctl: string;
let stack: ActivityTier;
let worker: RunningWorker;
let client: Client;
let environment: SagaTier;

beforeAll(async () => {
  [temporalCli, tctl] = [inject('temporalBinary'), await ensureTool('tctl')];
  environment = await startSagaTier();
  ({ stack, worker, client } = environment);
});
afterAll(() => environment?.close());

/** `temporal <args> --address <test server>`; resolves with stdout. */
async function temporal(...args: string[]): Promise<string> {
  const { stdout } = await run(temporalCli, [
    ...args,
    '--address',
    inject('temporalAddress'),
    '--namespace',
    'default',
  ]);
  return stdout;
}

/** `tctl --address <test server> <args>`; resolves with stdout. */
async function tctlRun(...args: string[]): Promise<string> {
  const { stdout } = await run(tctl, ['--address', inject('temporalAddress'), '--namespace', 'default', ...args]);
  return stdout;
}

/** `temporal workflow signal` as an operator types it. */
function temporalSignal(workflowId: string, name: string, input: string): Promise<string> {
  return temporal('workflow', 'signal', '--workflow-id', workflowId, '--name', name, '--input', input);
}

/** `tctl workflow signal` as an operator types it. */
function tctlSignal(workflowId: string, name: string, input: string): Promise<string> {
  return tctlRun('workflow', 'signal', '--workflow_id', workflowId, '--name', name, '--input', input);
}

function startSaga(order: Partial<Order> = {}, settings: Partial<SagaSettings> = {}) {
  return startTestSaga({ client, taskQueue: worker.taskQueue, inventory: stack.inventory }, { order, settings });
}

async function waitForStatus(workflowId: string, status: OrderStatus) {
  await expect
    .poll(async () => (await client.workflow.getHandle(workflowId).query(getStatusQuery)).status, { timeout: 20_000 })
    .toBe(status);
}

describe('operator CLI', () => {
  it('temporal workflow signal approveOrder, then temporal workflow query getStatus shows it completed', async () => {
    const { handle } = await startSaga({}, { approvalThreshold: 1_000 });
    await waitForStatus(handle.workflowId, 'AWAITING_APPROVAL');
    await temporalSignal(handle.workflowId, 'approveOrder', '{"approvedBy": "night-shift"}');
    expect((await handle.result()).status).toBe('COMPLETED');

    const output = await temporal(
      'workflow',
      'query',
      '--workflow-id',
      handle.workflowId,
      '--name',
      'getStatus',
      '--output',
      'json',
    );
    const document = JSON.parse(output).queryResult[0];
    expect(document).toMatchObject({ status: 'COMPLETED', approval: { required: true, approvedBy: 'night-shift' } });
  });

  it('tctl workflow signal cancelOrder, then tctl workflow query getStatus shows it cancelled', async () => {
    const { handle } = await startSaga({}, { approvalThreshold: 1_000 });
    await waitForStatus(handle.workflowId, 'AWAITING_APPROVAL');
    await tctlSignal(handle.workflowId, 'cancelOrder', '{"reason": "fraud check failed"}');
    expect((await handle.result()).status).toBe('CANCELLED');

    const output = await tctlRun('workflow', 'query', '--workflow_id', handle.workflowId, '--query_type', 'getStatus');
    expect(output).toContain('"status":"CANCELLED"');
    expect(output).toContain('"reason":"fraud check failed"');
  });

  it('tctl workflow signal approveOrder works too', async () => {
    const { handle } = await startSaga({}, { approvalThreshold: 1_000 });
    await waitForStatus(handle.workflowId, 'AWAITING_APPROVAL');
    await tctlSignal(handle.workflowId, 'approveOrder', '{"approvedBy": "tctl-user"}');
    expect((await handle.result()).approval.approvedBy).toBe('tctl-user');
  });

  it('temporal workflow signal cancelOrder cancels a running saga', async () => {
    const { handle } = await startSaga({}, { approvalThreshold: 1_000 });
    await waitForStatus(handle.workflowId, 'AWAITING_APPROVAL');
    await temporalSignal(handle.workflowId, 'cancelOrder', '{"reason": "duplicate order"}');
    expect((await handle.result()).cancellation).toEqual({ reason: 'duplicate order' });
  });

  it('a COMPENSATION_FAILED saga is found by search attribute and finished with tctl retryCompensation', async () => {
    await stack.gateway.setFaults({ refundOutage: true });
    const { handle, order } = await startSaga({ paymentToken: 'tok_decline' });
    await waitForStatus(handle.workflowId, 'COMPENSATION_FAILED');

    await expect
      .poll(
        async () =>
          temporal(
            'workflow',
            'list',
            '--query',
            `OrderStatus = 'COMPENSATION_FAILED' AND CustomerId = '${order.customerId}'`,
          ),
        { timeout: 20_000 },
      )
      .toContain(handle.workflowId);
    await stack.gateway.setFaults({ refundOutage: false });
    await tctlSignal(handle.workflowId, 'retryCompensation', '{}');
    expect((await handle.result()).status).toBe('COMPENSATED');
  });

  it('temporal workflow reset runs the saga again, and the new run is audited under its own ids: nothing dropped, one charge', async () => {
    const { handle, order, sku } = await startSaga();
    expect((await handle.result()).status).toBe('COMPLETED');
    await temporal(
      'workflow',
      'reset',
      '--workflow-id',
      handle.workflowId,
      '--type',
      'FirstWorkflowTask',
      '--reason',
      'test',
    );
    const resetRun = client.workflow.getHandle(handle.workflowId); // the newest run
    await expect
      .poll(async () => (await resetRun.describe()).runId, { timeout: 10_000 })
      .not.toBe(handle.firstExecutionRunId);
    expect((await resetRun.result()).status).toBe('COMPLETED');

    const audit = await auditEventsOf(stack, order.orderId);
    expect(audit.filter((event) => event.type === 'OrderCompleted')).toHaveLength(2); // the reset run's too
    expect(new Set(audit.map((event) => event.id.split(':')[1])).size).toBe(2); // under two run ids
    expect(new Set(audit.map((event) => event.id)).size).toBe(audit.length);
    expect((await stack.gateway.ledger(order.orderId)).charges).toHaveLength(1);
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 9, reserved: 1 }]);
  });

  it('a COMPENSATION_FAILED saga is closed with temporal resolveManually, keeping the note', async () => {
    await stack.gateway.setFaults({ refundOutage: true });
    const { handle, sku } = await startSaga({ paymentToken: 'tok_decline' });
    await waitForStatus(handle.workflowId, 'COMPENSATION_FAILED');
    await temporalSignal(handle.workflowId, 'resolveManually', '{"note": "refund issued by hand, OPS-12"}');
    const result = await handle.result();
    await stack.gateway.setFaults({ refundOutage: false });
    expect(result.status).toBe('COMPENSATED');
    expect(result.resolution).toEqual({ note: 'refund issued by hand, OPS-12', step: 'refund' });
    expect(await stack.inventory.levels(sku)).toEqual([{ sku, available: 10, reserved: 0 }]);
  });
});

describe('operator CLI input that does not fit', () => {
  it('when temporal and tctl send decision signals with wrong types, then the saga drops each and takes the valid approval after them', async () => {
    const { handle } = await startSaga({}, { approvalThreshold: 1_000 });
    await waitForStatus(handle.workflowId, 'AWAITING_APPROVAL');
    // As operators mistype them. Each used to fail every workflow task of the saga from then on.
    await temporalSignal(handle.workflowId, 'resolveManually', '{"note": 5}');
    await temporalSignal(handle.workflowId, 'cancelOrder', '{"reason": 1}');
    await tctlSignal(handle.workflowId, 'approveOrder', '{"approvedBy": 1}');
    await temporalSignal(handle.workflowId, 'approveOrder', '[1, 2]');
    await tctlSignal(handle.workflowId, 'cancelOrder', '"stop it"');
    await temporalSignal(handle.workflowId, 'retryCompensation', '7');
    await waitForStatus(handle.workflowId, 'AWAITING_APPROVAL'); // queries still answer: no task failed

    await temporalSignal(handle.workflowId, 'approveOrder', '{"approvedBy": "night-shift"}');
    const result = await Promise.race([
      handle.result(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the saga did not finish: a bad signal wedged it')), 20_000),
      ),
    ]);
    expect(result).toMatchObject({ status: 'COMPLETED', approval: { approvedBy: 'night-shift' } });
    expect(result.cancellation).toBeUndefined();
    const { events } = await handle.fetchHistory();
    expect(events?.filter((event) => event.workflowTaskFailedEventAttributes)).toEqual([]);
  });

  it('when temporal sends a cancel whose reason is 1.5 MB (from a file), then the saga drops it: its audit events stay within the NATS payload limit and it goes on', async () => {
    const { handle, order } = await startSaga({}, { approvalThreshold: 1_000 });
    await waitForStatus(handle.workflowId, 'AWAITING_APPROVAL');
    const inputFile = join(mkdtempSync(join(tmpdir(), 'cli-input-')), 'cancel.json');
    writeFileSync(inputFile, JSON.stringify({ reason: 'x'.repeat(1_500_000) }));
    await temporal(
      'workflow',
      'signal',
      '--workflow-id',
      handle.workflowId,
      '--name',
      'cancelOrder',
      '--input-file',
      inputFile,
    );
    await waitForStatus(handle.workflowId, 'AWAITING_APPROVAL');

    await tctlSignal(handle.workflowId, 'approveOrder', '{"approvedBy": "night-shift"}');
    expect((await handle.result()).status).toBe('COMPLETED');
    const audit = await auditEventsOf(stack, order.orderId);
    expect(audit.map((event) => event.type)).toContain('OrderCompleted');
    expect(Math.max(...audit.map((event) => JSON.stringify(event).length))).toBeLessThan(10_000);
  });
});
