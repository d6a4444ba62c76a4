// Worker Versioning at the worker's start, on the harness's real Temporal: how a deployment's
// first versioned build takes over the sagas unversioned workers started (the day versioning is
// turned on), and what TEMPORAL_WORKER_BECOME_CURRENT does when another build is current.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflowCode } from '@temporalio/worker';
import { pino } from 'pino';
import type { Client } from '@temporalio/client';
import type { WorkerVersioningConfig } from '../../lib/config.js';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../workers/order-worker.js';
import { describeDeployment } from '../../workers/worker-deployments.js';
import { approveOrderUpdate, getStatusQuery } from '../../workflows/contract.js';
import { startActivityTier, type ActivityTier } from '../support/activity-tier.js';
import { startTestSaga } from '../support/orders.js';
import { connectClient, startInProcessWorker, type RunningWorker } from '../support/temporal.js';

const SAGA_WITH_ADDED_STEP = fileURLToPath(
  new URL('../support/workflow-builds/saga-with-added-timer.ts', import.meta.url),
);

let stack: ActivityTier;
let client: Client;
let closeClient: () => Promise<void>;
let otherBundlePath: string;
const workers: RunningWorker[] = [];

const versioned = (deploymentName: string, becomeCurrent: 'never' | 'if-none' | 'always'): WorkerVersioningConfig => ({
  mode: 'versioned',
  deploymentName,
  buildId: undefined,
  becomeCurrent,
});

/** A logger whose lines the test reads. */
function capturedLogger() {
  const lines: { msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as { msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

async function start(options: Parameters<typeof startInProcessWorker>[1]): Promise<RunningWorker> {
  const worker = await startInProcessWorker(stack.clients, options);
  workers.push(worker);
  return worker;
}

beforeAll(async () => {
  stack = await startActivityTier();
  ({ client, close: closeClient } = await connectClient());
  const { code } = await bundleWorkflowCode({
    workflowsPath: SAGA_WITH_ADDED_STEP,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  otherBundlePath = join(mkdtempSync(join(tmpdir(), 'worker-versioning-')), 'workflow-bundle.js');
  writeFileSync(otherBundlePath, code);
}, 120_000);

afterAll(async () => {
  for (const worker of workers) await worker.stop();
  await closeClient?.();
  await stack?.close();
});

describe('a versioned worker at start', () => {
  it('as the first build of its deployment, becomes current and takes over a saga an unversioned worker started, pinned from then on', async () => {
    const taskQueue = `orders-versioning-${randomUUID()}`;
    const unversioned = await start({ taskQueue });
    const { handle } = await startTestSaga(
      { client, taskQueue, inventory: stack.inventory },
      { settings: { approvalThreshold: 1 } },
    );
    await expect
      .poll(async () => (await handle.query(getStatusQuery)).status, { timeout: 20_000 })
      .toBe('AWAITING_APPROVAL');
    await unversioned.stop();

    const { logger, lines } = capturedLogger();
    const first = await start({ taskQueue, versioning: versioned(taskQueue, 'if-none'), logger });
    expect(lines.map((line) => line.msg)).toContain('made this build current: new sagas start on it');
    const routing = await describeDeployment(client.workflowService, 'default', taskQueue);
    expect(routing?.currentBuildId).toBe(first.build?.buildId);

    await handle.executeUpdate(approveOrderUpdate, { args: [{ approvedBy: 'ops' }] });
    expect((await handle.result()).status).toBe('COMPLETED');
    const { searchAttributes } = await handle.describe();
    expect(searchAttributes.TemporalWorkerDeploymentVersion).toEqual([`${taskQueue}:${first.build?.buildId}`]);
    expect(searchAttributes.TemporalWorkflowVersioningBehavior).toEqual(['Pinned']);
    const history = await handle.fetchHistory();
    expect((history.events ?? []).filter((event) => event.workflowTaskFailedEventAttributes)).toEqual([]);
  });

  it('leaves another current build in place with if-none or never (and says how to promote), and takes its place with always', async () => {
    const taskQueue = `orders-versioning-${randomUUID()}`;
    const current = await start({ taskQueue, versioning: versioned(taskQueue, 'if-none') });

    const ifNone = capturedLogger();
    const second = await start({
      taskQueue,
      workflowBundlePath: otherBundlePath,
      versioning: versioned(taskQueue, 'if-none'),
      logger: ifNone.logger,
    });
    expect(second.build?.buildId).not.toBe(current.build?.buildId);
    expect(ifNone.lines.map((line) => line.msg)).toContain(
      `this build is not current: new sagas start on build ${current.build?.buildId}; ramp or promote this one with npm run saga-builds`,
    );
    await start({ taskQueue, workflowBundlePath: otherBundlePath, versioning: versioned(taskQueue, 'never') });
    expect((await describeDeployment(client.workflowService, 'default', taskQueue))?.currentBuildId).toBe(
      current.build?.buildId,
    );
    const { handle: onCurrent } = await startTestSaga({ client, taskQueue, inventory: stack.inventory });
    expect((await onCurrent.result()).status).toBe('COMPLETED');
    expect((await onCurrent.describe()).searchAttributes.TemporalWorkerDeploymentVersion).toEqual([
      `${taskQueue}:${current.build?.buildId}`,
    ]);

    await start({ taskQueue, workflowBundlePath: otherBundlePath, versioning: versioned(taskQueue, 'always') });
    expect((await describeDeployment(client.workflowService, 'default', taskQueue))?.currentBuildId).toBe(
      second.build?.buildId,
    );
    const { handle: onSecond } = await startTestSaga({ client, taskQueue, inventory: stack.inventory });
    expect((await onSecond.result()).status).toBe('COMPLETED');
    expect((await onSecond.describe()).searchAttributes.TemporalWorkerDeploymentVersion).toEqual([
      `${taskQueue}:${second.build?.buildId}`,
    ]);
  });

  it('stays out of the routing when its task queue takes sagas from another Worker Deployment (a mistyped TEMPORAL_DEPLOYMENT_NAME), even with always', async () => {
    const taskQueue = `orders-versioning-${randomUUID()}`;
    const routed = await start({ taskQueue, versioning: versioned(taskQueue, 'if-none') });
    const typo = `${taskQueue}-typo`;
    const { logger, lines } = capturedLogger();
    await start({ taskQueue, workflowBundlePath: otherBundlePath, versioning: versioned(typo, 'always'), logger });
    expect((await describeDeployment(client.workflowService, 'default', typo))?.currentBuildId).toBeUndefined();
    const { handle } = await startTestSaga({ client, taskQueue, inventory: stack.inventory });
    expect((await handle.result()).status).toBe('COMPLETED');
    expect((await handle.describe()).searchAttributes.TemporalWorkerDeploymentVersion).toEqual([
      `${taskQueue}:${routed.build?.buildId}`,
    ]);
    expect(lines.map((line) => line.msg)).toContainEqual(
      expect.stringContaining(
        `task queue ${taskQueue} takes its sagas from Worker Deployment ${taskQueue} (build ${routed.build?.buildId}), not from ${typo}`,
      ),
    );
  });
});
