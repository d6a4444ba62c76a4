// `npm run replay-gate`: real sagas run on the harness's Temporal (completed, compensated, waiting
// for approval, terminated), then the command, as a process of its own, replays them against a
// bundle: the harness's (the build they ran on) passes with every status counted; a build whose
// saga adds a step before its first one fails, naming each saga that would break; nothing to
// replay and bad command lines are told apart. Each run is narrowed to this file's task queue
// (--query), since other test files share the server.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, inject, vi } from 'vitest';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { newTraceId } from '../../lib/envelope.js';
import type { Order } from '../../domain/order.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import { getStatusQuery, orderWorkflowId } from '../../workflows/contract.js';
import type { orderSaga } from '../../workflows/order-saga.js';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../workers/order-worker.js';
import { runOpsCommand } from '../support/commands.js';
import { startSagaTier, type SagaTier } from '../support/saga-tier.js';
import { fastSagaSettings } from '../support/temporal.js';

const SAGA_WITH_ADDED_TIMER = fileURLToPath(
  new URL('../support/workflow-builds/saga-with-added-timer.ts', import.meta.url),
);
let tier: SagaTier;
let brokenBundlePath: string;
/** This file's sagas by how they ended up. */
const sagas: Record<'completed' | 'compensated' | 'awaitingApproval' | 'terminated', string> = {
  completed: '',
  compensated: '',
  awaitingApproval: '',
  terminated: '',
};

async function startSaga(
  overrides: Partial<Order> = {},
  settings: Partial<SagaSettings> = {},
): Promise<WorkflowHandle<typeof orderSaga>> {
  const sku = `SKU-${randomUUID().slice(0, 8)}`;
  await tier.stack.inventory.restock(sku, 10);
  const order: Order = {
    orderId: randomUUID(),
    customerId: 'c-replay-gate',
    items: [{ sku, quantity: 1, unitPrice: 5_000 }],
    currency: 'EUR',
    total: 5_000,
    paymentToken: 'tok_visa',
    createdAt: new Date().toISOString(),
    traceId: newTraceId(),
    ...overrides,
  };
  return tier.client.workflow.start<typeof orderSaga>('orderSaga', {
    workflowId: orderWorkflowId(order.orderId),
    taskQueue: tier.worker.taskQueue,
    args: [{ order, settings: fastSagaSettings(settings) }],
  });
}

async function awaitingApproval(): Promise<WorkflowHandle<typeof orderSaga>> {
  const handle = await startSaga({}, { approvalThreshold: 1_000 });
  await vi.waitFor(async () => expect((await handle.query(getStatusQuery)).status).toBe('AWAITING_APPROVAL'), {
    timeout: 20_000,
    interval: 200,
  });
  return handle;
}

/** This file's sagas only: the harness's server holds every other test file's too. */
const ownSagas = () => `TaskQueue = '${tier.worker.taskQueue}'`;

/** `npm run replay-gate -- <args>` against the harness's server. */
function replayGate(...args: string[]): Promise<{ code: number; out: string }> {
  return runOpsCommand('ops/replay-gate.ts', args, {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    ORDER_SAGA_LOCAL_STACK_FILE: '/nonexistent/local-stack.json',
  });
}

beforeAll(async () => {
  tier = await startSagaTier();
  const { code } = await bundleWorkflowCode({
    workflowsPath: SAGA_WITH_ADDED_TIMER,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  brokenBundlePath = join(mkdtempSync(join(tmpdir(), 'replay-gate-')), 'workflow-bundle.js');
  writeFileSync(brokenBundlePath, code);

  const completed = await startSaga();
  const compensated = await startSaga({ paymentToken: 'tok_decline' });
  expect((await completed.result()).status).toBe('COMPLETED');
  expect((await compensated.result()).status).toBe('COMPENSATED');
  const waiting = await awaitingApproval();
  const terminated = await awaitingApproval();
  await terminated.terminate('replay-gate test: a saga an operator terminated');
  Object.assign(sagas, {
    completed: completed.workflowId,
    compensated: compensated.workflowId,
    awaitingApproval: waiting.workflowId,
    terminated: terminated.workflowId,
  });
  // Visibility is updated after the fact: the gate lists what it shows.
  await vi.waitFor(
    async () => {
      const statuses: string[] = [];
      for await (const run of tier.client.workflow.list({ query: ownSagas() })) statuses.push(run.status.name);
      expect(statuses.sort()).toEqual(['COMPLETED', 'COMPLETED', 'RUNNING', 'TERMINATED']);
    },
    { timeout: 20_000, interval: 250 },
  );
}, 120_000);

afterAll(() => tier?.close());

describe('npm run replay-gate', () => {
  it('replays every saga, open and closed, against the build that ran them: exit 0 with the count of each status', async () => {
    const { code, out } = await replayGate(
      '--bundle',
      inject('workflowBundlePath'),
      '--since',
      '1h',
      '--query',
      ownSagas(),
      '--json',
    );
    expect(code, out).toBe(0);
    const result = JSON.parse(out);
    expect(result).toMatchObject({ replayed: 4, failed: 0, failures: [], bundle: inject('workflowBundlePath') });
    const counts = Object.fromEntries(
      Object.entries(result.statuses as Record<string, { replayed: number; failed: number }>).map(([status, n]) => [
        status,
        [n.replayed, n.failed],
      ]),
    );
    expect(counts).toEqual({
      Running: [1, 0],
      Completed: [2, 0],
      Failed: [0, 0],
      Canceled: [0, 0],
      Terminated: [1, 0],
      TimedOut: [0, 0],
      ContinuedAsNew: [0, 0],
    });
  });

  it('fails a build whose saga adds a step before its first one: exit 1, each saga named with its nondeterminism', async () => {
    const { code, out } = await replayGate('--bundle', brokenBundlePath, '--query', ownSagas());
    expect(code, out).toBe(1);
    expect(out).toContain('4 histories of 4 do not replay against this bundle');
    for (const workflowId of Object.values(sagas))
      expect(out).toMatch(new RegExp(`${workflowId}  run \\S+  \\(\\w+\\)  NONDETERMINISM`));
    expect(out).toMatch(/Running\s+0 replayed, 1 FAILED/);
    expect(out).toMatch(/Completed\s+0 replayed, 2 FAILED/);
    expect(out).toMatch(/Terminated\s+0 replayed, 1 FAILED/);
    expect(out.match(/Nondeterminism error/g)).toHaveLength(4);
    expect(out).toContain('Do not make this build current');
  });

  it('without --bundle, bundles the saga of this checkout and replays against it', async () => {
    const { code, out } = await replayGate('--query', ownSagas());
    expect(code, out).toBe(0);
    expect(out).toContain('Against: workflows/ bundled now from this checkout');
    expect(out).toMatch(/Completed\s+2 replayed\n/);
    expect(out).toContain('All 4 histories replay against this bundle.');
  });

  it('replays at most --limit sagas of each status and says where it left some out', async () => {
    const { code, out } = await replayGate(
      '--bundle',
      inject('workflowBundlePath'),
      '--limit',
      '1',
      '--query',
      ownSagas(),
      '--json',
    );
    expect(code, out).toBe(0);
    const { statuses, replayed } = JSON.parse(out);
    expect(replayed).toBe(3);
    expect(statuses.Completed).toEqual({ replayed: 1, failed: 0, moreNotChecked: true });
    expect(statuses.Running).toEqual({ replayed: 1, failed: 0, moreNotChecked: false });
    expect(statuses.Terminated).toEqual({ replayed: 1, failed: 0, moreNotChecked: false });
  });

  it('says when it found nothing to replay: exit 0, or 1 with --require-histories', async () => {
    const nothing = `${ownSagas()} AND WorkflowId = 'order-${randomUUID()}'`;
    const found = await replayGate('--bundle', inject('workflowBundlePath'), '--query', nothing);
    expect(found.code, found.out).toBe(0);
    expect(found.out).toContain('Nothing to replay: no orderSaga started since');
    expect(found.out).toContain('The bundle was not checked against anything.');

    const required = await replayGate(
      '--bundle',
      inject('workflowBundlePath'),
      '--query',
      nothing,
      '--require-histories',
    );
    expect(required.code, required.out).toBe(1);
    expect(required.out).toContain('Failing (--require-histories)');
  });

  it.each([
    [['--since', 'yesterday'], '--since takes a duration such as 30m, 24h or 7d, at most 3650d (got yesterday)'],
    [['--limit', '0'], '--limit takes a whole number of sagas per status, 1 to 10000 (got 0)'],
    [['--bundle', '/nonexistent/workflow-bundle.js'], '--bundle: there is no file /nonexistent/workflow-bundle.js'],
    [['--query', ' '], '--query takes a visibility filter'],
    [['--query', "TaskQueue = 'x' AND"], `--query: Temporal refused the visibility filter "TaskQueue = 'x' AND"`],
    [['--since'], '--since needs a value'],
    [['--frobnicate'], 'unknown argument --frobnicate'],
  ])('refuses %j with exit 2 and a message naming the option', async (args, message) => {
    const { code, out } = await replayGate(...args);
    expect(code, out).toBe(2);
    expect(out).toContain(message);
    expect(out).toContain('usage: npm run replay-gate');
  });
});
