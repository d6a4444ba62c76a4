// `npm run saga-builds` as an operator runs it, against the harness's real Temporal: what it
// refuses (a typo, a build Temporal does not know, a change that would strand sagas) and how it
// moves a saga stuck on a build whose workers are gone to another build, and back.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { WorkerVersioningConfig } from '../../lib/config.js';
import { approveOrderSignal, getStatusQuery } from '../../workflows/contract.js';
import { runningSagasQuery } from '../../workers/worker-deployments.js';
import { startActivityTier, type ActivityTier } from '../support/activity-tier.js';
import { runOpsCommand } from '../support/commands.js';
import { startTestSaga } from '../support/orders.js';
import { connectClient, startInProcessWorker, type RunningWorker } from '../support/temporal.js';

let stack: ActivityTier;
let client: Client;
let closeClient: () => Promise<void>;
const workers: RunningWorker[] = [];
const deploymentName = `orders-builds-${randomUUID()}`;
const taskQueue = deploymentName;

function sagaBuilds(...args: string[]) {
  return runOpsCommand('ops/saga-builds.ts', args, {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_DEPLOYMENT_NAME: deploymentName,
    TEMPORAL_TASK_QUEUE: taskQueue,
    ORDER_SAGA_LOCAL_STACK_FILE: '/nonexistent/local-stack.json',
  });
}

/**
 * How many sagas run on `buildId` as `saga-builds` counts them (its status and retire): from
 * Temporal's search index, which follows the sagas by a moment.
 */
async function runningOn(buildId: string): Promise<number> {
  return (await client.workflow.count(runningSagasQuery(deploymentName, buildId))).count;
}

/** A worker of `buildId` (the same saga code under another build id: another image of the same code). */
async function startBuild(buildId: string, becomeCurrent: 'never' | 'if-none' | 'always'): Promise<RunningWorker> {
  const versioning: WorkerVersioningConfig = { mode: 'versioned', deploymentName, buildId, becomeCurrent };
  const worker = await startInProcessWorker(stack.clients, { taskQueue, versioning });
  workers.push(worker);
  return worker;
}

beforeAll(async () => {
  stack = await startActivityTier();
  ({ client, close: closeClient } = await connectClient());
});

afterAll(async () => {
  for (const worker of workers) await worker.stop();
  await closeClient?.();
  await stack?.close();
});

describe('npm run saga-builds', () => {
  it('refuses a bad command line with exit 2 and says what it takes', async () => {
    for (const [args, says] of [
      [[], 'a command is needed'],
      [['promte', 'b1'], 'unknown command promte'],
      [['ramp', 'b1'], 'ramp takes 2 argument(s), got 1'],
      [
        ['ramp', 'b1', '100'],
        'ramp takes a whole percentage from 0 to 99 (got 100); to send every new order to a build, promote it',
      ],
      [['ramp', 'b1', 'half'], 'ramp takes a whole percentage from 0 to 99 (got half)'],
      [['promote', 'order-saga:b1'], 'is not a build id or workflow id'],
      [['status', '--force'], 'unknown option --force'],
    ] as const) {
      const { code, out } = await sagaBuilds(...args);
      expect(code, out).toBe(2);
      expect(out).toContain(says);
      expect(out).toContain('usage: npm run saga-builds');
    }
    const help = await sagaBuilds('--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('rollback [BUILD]');
  });

  it('says so, exit 1, when no worker of the deployment has polled yet', async () => {
    const { code, out } = await sagaBuilds('status');
    expect(code, out).toBe(1);
    expect(out).toContain(`Temporal has no Worker Deployment ${deploymentName} in namespace default`);
  });

  it('refuses what would not do what the operator meant: an unknown build, a ramp of the current one, retiring one that takes orders', async () => {
    await startBuild('build-x', 'if-none');
    const unknown = await sagaBuilds('promote', 'build-typo');
    expect(unknown.code, unknown.out).toBe(1);
    expect(unknown.out).toContain('Temporal does not know build build-typo');
    expect(unknown.out).toContain('known: build-x');
    const rampCurrent = await sagaBuilds('ramp', 'build-x', '10');
    expect(rampCurrent.code, rampCurrent.out).toBe(1);
    expect(rampCurrent.out).toContain('build-x is the current build already');
    const retireCurrent = await sagaBuilds('retire', 'build-x');
    expect(retireCurrent.code, retireCurrent.out).toBe(1);
    expect(retireCurrent.out).toContain('build-x still takes new orders (current)');
    const promoteAgain = await sagaBuilds('promote', 'build-x');
    expect(promoteAgain).toMatchObject({
      code: 0,
      out: expect.stringContaining('build-x is the current build already'),
    });
  });

  it('moves a saga stuck on a build whose workers are gone to another build, where it finishes; unpin removes the override', async () => {
    const [buildX] = workers;
    const stuck = await startTestSaga(
      { client, taskQueue, inventory: stack.inventory },
      { settings: { approvalThreshold: 1 } },
    );
    const other = await startTestSaga(
      { client, taskQueue, inventory: stack.inventory },
      { settings: { approvalThreshold: 1 } },
    );
    for (const { handle } of [stuck, other])
      await expect
        .poll(async () => (await handle.query(getStatusQuery)).status, { timeout: 20_000 })
        .toBe('AWAITING_APPROVAL');
    // build-x is lost (its image will not start, say): its sagas wait for a worker that never comes.
    await buildX!.stop();
    await startBuild('build-y', 'always');
    await stuck.handle.signal(approveOrderSignal, { approvedBy: 'ops' });

    // Both counted by the index before retire reads it (seen through their queries, maybe not there yet).
    await expect.poll(() => runningOn('build-x'), { timeout: 20_000 }).toBe(2);
    const retireX = await sagaBuilds('retire', 'build-x');
    expect(retireX.code, retireX.out).toBe(1);
    expect(retireX.out).toContain('2 saga(s) still run on build-x; retiring it would strand them');

    const moved = await sagaBuilds('move', stuck.handle.workflowId, 'build-y');
    expect(moved.code, moved.out).toBe(0);
    expect(moved.out).toContain(`${stuck.handle.workflowId} now runs on build-y`);
    expect((await stuck.handle.result()).status).toBe('COMPLETED');
    const { raw } = await stuck.handle.describe();
    expect(raw.workflowExecutionInfo?.versioningInfo?.versioningOverride?.pinned?.version).toMatchObject({
      deploymentName,
      buildId: 'build-y',
    });

    const movedOther = await sagaBuilds('move', other.handle.workflowId, 'build-y');
    expect(movedOther.code, movedOther.out).toBe(0);
    const unpinned = await sagaBuilds('unpin', other.handle.workflowId);
    expect(unpinned.code, unpinned.out).toBe(0);
    const afterUnpin = await other.handle.describe();
    expect(afterUnpin.raw.workflowExecutionInfo?.versioningInfo?.versioningOverride ?? null).toBeNull();

    // The index has the moved saga's end, and counts the other one back on build-x, before status reads it.
    const stuckEnded = `WorkflowId = '${stuck.handle.workflowId}' AND ExecutionStatus = 'Completed'`;
    await expect.poll(async () => (await client.workflow.count(stuckEnded)).count, { timeout: 20_000 }).toBe(1);
    await expect.poll(() => runningOn('build-x'), { timeout: 20_000 }).toBe(1);
    const status = await sagaBuilds('status');
    expect(status.code, status.out).toBe(0);
    expect(status.out).toContain('new orders start on: build-y');
    expect(status.out).toMatch(/build-x\s+draining\s+1\s/);
    await other.handle.terminate('test: its build is gone');
  });

  it("ends another build's ramp when it promotes, ends only the ramp it names, and asks which build when a rollback has several", async () => {
    await startBuild('build-z', 'never');
    await startBuild('build-w', 'never');
    const ramp = await sagaBuilds('ramp', 'build-z', '50');
    expect(ramp.code, ramp.out).toBe(0);
    const wrongEnd = await sagaBuilds('ramp', 'build-w', '0');
    expect(wrongEnd.code, wrongEnd.out).toBe(1);
    expect(wrongEnd.out).toContain('build-w is not ramping (build-z is, at 50%): nothing ended.');

    const promote = await sagaBuilds('promote', 'build-w');
    expect(promote.code, promote.out).toBe(0);
    expect(promote.out).toContain('Ended the ramp of build-z (50%). Every new order now starts on build-w');
    const status = await sagaBuilds('status', '--json');
    expect(JSON.parse(status.out)).toMatchObject({ currentBuildId: 'build-w', ramping: null });

    // build-x, build-y (current before) and build-z (ramped) all took orders once.
    const ambiguous = await sagaBuilds('rollback');
    expect(ambiguous.code, ambiguous.out).toBe(1);
    expect(ambiguous.out).toContain('Several builds took orders before');
    const rollback = await sagaBuilds('rollback', 'build-y');
    expect(rollback.code, rollback.out).toBe(0);
    expect(rollback.out).toContain('Every new order now starts on build-y; sagas running on build-w finish there');
  });
});
