// A new build of the saga rolls out while orders are in flight, and back, on a real Temporal with
// Worker Versioning. Build A and build B are two builds of the product as an image holds them
// (compiled dist/ with its prebuilt workflow bundle); B's saga has a step A's does not (a timer
// before the first step), so a saga A started would fail to replay on B. A's sagas wait at every
// waiting point (approval, a slow charge, COMPENSATION_FAILED) while B registers, takes a ramped
// share of new orders and is promoted; the old sagas then finish on A, A drains and stops; a
// rollback with orders of both builds in flight follows; the reconciliation finds nothing, and no
// workflow task of any saga failed. Rollouts go through `npm run saga-builds`, as an operator's do.
import { cpSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../workers/order-worker.js';
import { buildIdOfBundle } from '../../workers/worker-versioning.js';
import { orderWorkflowId, retryCompensationSignal } from '../../workflows/contract.js';
import type { OrderStatus, OrderStatusDocument } from '../../workflows/contract.js';
import { startChaosTier, type ChaosTier } from '../chaos/chaos-tier.js';
import type { ChaosProcess } from '../support/processes.js';
import { runOpsCommand } from '../support/commands.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SAGA_WITH_ADDED_STEP = fileURLToPath(
  new URL('../support/workflow-builds/saga-with-added-timer.ts', import.meta.url),
);
/** Each step waits on several sagas, each a few seconds (two workers and the servers share two cores). */
const STEP_TIMEOUT_MS = 180_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Two workers of different builds share the inventory: the embedded database lives inside one
// worker process, so this needs PostgreSQL, like the chaos tier it runs on.
const postgresUrl = inject('postgresUrl');

let tier: ChaosTier;
let stage: string;
const builds = { a: { entry: '', buildId: '' }, b: { entry: '', buildId: '' } };
let workerA: ChaosProcess | undefined;
let workerB: ChaosProcess | undefined;
/** Every order placed, with the build it must end on. */
const placed = new Map<string, 'a' | 'b'>();

/** Compiles the product into `dir`/dist as the image's build stage does; `bundle` replaces its workflow bundle. */
function buildInto(dir: string, bundle?: string): { entry: string; buildId: string } {
  const bundlePath = join(dir, 'dist/workers/workflow-bundle.js');
  if (bundle) writeFileSync(bundlePath, bundle);
  return { entry: join(dir, 'dist/workers/main.js'), buildId: buildIdOfBundle(readFileSync(bundlePath, 'utf8')) };
}

async function sagaBuilds(...args: string[]): Promise<{ code: number; out: string }> {
  return runOpsCommand('ops/saga-builds.ts', args, {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    TEMPORAL_ADDRESS: tier.temporalAddress,
    TEMPORAL_DEPLOYMENT_NAME: tier.taskQueue,
    TEMPORAL_TASK_QUEUE: tier.taskQueue,
    ORDER_SAGA_LOCAL_STACK_FILE: '/nonexistent/local-stack.json',
  });
}

interface StatusReport {
  currentBuildId: string | null;
  ramping: { buildId: string; percentage: number } | null;
  builds: { buildId: string; status: string; runningSagas: number }[];
}

async function deploymentStatus(): Promise<StatusReport> {
  const { code, out } = await sagaBuilds('status', '--json');
  expect(code, out).toBe(0);
  return JSON.parse(out) as StatusReport;
}

const runningOn = (report: StatusReport, build: 'a' | 'b') =>
  report.builds.find((known) => known.buildId === builds[build].buildId)?.runningSagas;

/** Places an order of `quantity` units at 30.00 (approval above 50.00: the tier's APPROVAL_THRESHOLD). */
async function placeOrder(quantity: number, paymentToken = 'tok_visa'): Promise<string> {
  const response = await fetch(`${tier.apis[0]}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      customerId: 'c-upgrade',
      items: [{ sku: tier.sku, quantity, unitPrice: 3_000 }],
      currency: 'EUR',
      paymentToken,
    }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { orderId: string }).orderId;
}

async function statusOf(orderId: string): Promise<OrderStatusDocument | undefined> {
  const response = await fetch(`${tier.apis[0]}/orders/${orderId}`);
  return response.ok ? ((await response.json()) as OrderStatusDocument) : undefined;
}

async function waitForStatus(orderId: string, status: OrderStatus, timeoutMs = 60_000): Promise<void> {
  await expect.poll(async () => (await statusOf(orderId))?.status, { timeout: timeoutMs, interval: 250 }).toBe(status);
}

/**
 * The build a saga runs on ('a', 'b', or the version Temporal names when neither), as the Web UI
 * shows it: the TemporalWorkerDeploymentVersion search attribute.
 */
async function buildOf(orderId: string): Promise<string | undefined> {
  const { searchAttributes } = await tier.temporalClient.workflow.getHandle(orderWorkflowId(orderId)).describe();
  const version = searchAttributes.TemporalWorkerDeploymentVersion?.[0] as string | undefined;
  if (version === `${tier.taskQueue}:${builds.a.buildId}`) return 'a';
  if (version === `${tier.taskQueue}:${builds.b.buildId}`) return 'b';
  return version;
}

async function approve(orderId: string): Promise<void> {
  const response = await fetch(`${tier.apis[0]}/orders/${orderId}/approve`, { method: 'POST' });
  expect(response.status, await response.text()).toBe(202);
}

/** Workflow tasks that failed in a saga's history (a nondeterminism error is one). */
async function failedWorkflowTasks(orderId: string): Promise<string[]> {
  const history = await tier.temporalClient.workflow.getHandle(orderWorkflowId(orderId)).fetchHistory();
  return (history.events ?? [])
    .filter((event) => event.workflowTaskFailedEventAttributes)
    .map((event) => event.workflowTaskFailedEventAttributes?.failure?.message ?? 'failed');
}

async function placeWaiting(build: 'a' | 'b'): Promise<string> {
  const orderId = await placeOrder(2);
  await waitForStatus(orderId, 'AWAITING_APPROVAL');
  expect(await buildOf(orderId)).toBe(build);
  placed.set(orderId, build);
  return orderId;
}

const waiting = { approval: '', slowCharge: '', compensationFailed: '' };
const rampedOn = { a: [] as string[], b: [] as string[] };

beforeAll(async () => {
  if (!postgresUrl) return;
  mkdirSync(join(ROOT, '.data'), { recursive: true });
  // Inside the checkout, so the builds find its node_modules as an image finds its own.
  stage = mkdtempSync(join(ROOT, '.data', 'live-upgrade-'));
  const [dirA, dirB] = [join(stage, 'a'), join(stage, 'b')];
  await exec(`${ROOT}node_modules/.bin/tsc`, ['-p', 'tsconfig.build.json', '--outDir', join(dirA, 'dist')], {
    cwd: ROOT,
  });
  await exec(process.execPath, ['--import', 'tsx', 'workers/bundle-workflows.ts', join(dirA, 'dist')], { cwd: ROOT });
  copyFileSync(join(ROOT, 'package.json'), join(dirA, 'package.json'));
  cpSync(dirA, dirB, { recursive: true });
  const { code: withAddedStep } = await bundleWorkflowCode({
    workflowsPath: SAGA_WITH_ADDED_STEP,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  builds.a = buildInto(dirA);
  builds.b = buildInto(dirB, withAddedStep);
  tier = await startChaosTier(
    'upgrade',
    { temporal: 'dev', natsNodes: 1, ingresses: 1, workers: 0 },
    // A slow charge keeps retrying through the rollout instead of giving up; a failing refund parks
    // its saga in COMPENSATION_FAILED after a few attempts.
    { STEP_MAX_ATTEMPTS: '100', COMPENSATION_MAX_ATTEMPTS: '3', TEMPORAL_WORKER_BECOME_CURRENT: 'never' },
  );
}, 300_000);

afterAll(async () => {
  await tier?.close();
  if (stage) rmSync(stage, { recursive: true, force: true });
});

describe.skipIf(!postgresUrl)('a new build of the saga while orders are in flight', () => {
  it(
    'build A, the first of its deployment, becomes current and takes orders into every waiting point',
    async () => {
      expect(builds.a.buildId).not.toBe(builds.b.buildId);
      workerA = await tier.addWorker('worker-a', builds.a.entry as never, {
        TEMPORAL_WORKER_BECOME_CURRENT: 'if-none',
      });
      expect((await deploymentStatus()).currentBuildId).toBe(builds.a.buildId);

      waiting.approval = await placeWaiting('a');
      const declined = await placeOrder(1, 'tok_decline');
      waiting.compensationFailed = declined;
      await tier.gateway.setFaults({ refundOutage: true });
      await waitForStatus(declined, 'COMPENSATION_FAILED');
      placed.set(declined, 'a');
      // Each charge attempt outlives the client's timeout (PAYMENT_TIMEOUT 1s): the saga keeps retrying.
      await tier.gateway.setFaults({ chargeLatencyMs: 5_000 });
      waiting.slowCharge = await placeOrder(1);
      await waitForStatus(waiting.slowCharge, 'CHARGING_PAYMENT');
      placed.set(waiting.slowCharge, 'a');
      // Counted from the search index, which follows the histories: the fresh-clone CI's Node 24 pass read
      // it before it had all three.
      await expect.poll(async () => runningOn(await deploymentStatus(), 'a'), { timeout: 20_000 }).toBe(3);
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'build B registers beside A without taking orders, then a ramp sends a share of new orders to it',
    async () => {
      workerB = await tier.addWorker('worker-b', builds.b.entry as never);
      const registered = await deploymentStatus();
      expect(registered.currentBuildId).toBe(builds.a.buildId);
      expect(registered.builds.map((build) => build.buildId).sort()).toEqual(
        [builds.a.buildId, builds.b.buildId].sort(),
      );
      expect(workerB).toBeDefined();

      const ramp = await sagaBuilds('ramp', builds.b.buildId, '50');
      expect(ramp.code, ramp.out).toBe(0);
      expect(ramp.out).toContain(`50% of new orders now start on ${builds.b.buildId}`);
      const ramping = await deploymentStatus();
      expect(ramping.ramping).toEqual({ buildId: builds.b.buildId, percentage: 50 });
      // Which build a new saga gets depends on its id: place orders until each build has one.
      for (let n = 0; n < 20 && (rampedOn.a.length === 0 || rampedOn.b.length === 0); n += 1) {
        const orderId = await placeOrder(2);
        await waitForStatus(orderId, 'AWAITING_APPROVAL');
        const build = await buildOf(orderId);
        expect(['a', 'b']).toContain(build);
        rampedOn[build as 'a' | 'b'].push(orderId);
        placed.set(orderId, build as 'a' | 'b');
      }
      expect(rampedOn.a.length).toBeGreaterThan(0);
      expect(rampedOn.b.length).toBeGreaterThan(0);
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'promoted, B takes every new order, and the sagas A started finish on A',
    async () => {
      const promote = await sagaBuilds('promote', builds.b.buildId);
      expect(promote.code, promote.out).toBe(0);
      expect(promote.out).toContain(`sagas running on ${builds.a.buildId} finish there`);
      const promoted = await deploymentStatus();
      expect(promoted).toMatchObject({ currentBuildId: builds.b.buildId, ramping: null });

      // Both builds' workers still run, each with its starter (which starts sagas eagerly, on its own
      // worker): every new saga must still go to the current build.
      for (let n = 0; n < 6; n += 1) rampedOn.b.push(await placeWaiting('b'));
      await tier.gateway.setFaults({ chargeLatencyMs: 0 });
      const fresh = await placeOrder(1);
      placed.set(fresh, 'b');
      await waitForStatus(fresh, 'COMPLETED');
      expect(await buildOf(fresh)).toBe('b');

      // The old sagas go on where they waited: approved, retried by the operator, the charge answered.
      await approve(waiting.approval);
      for (const orderId of rampedOn.a) await approve(orderId);
      await tier.gateway.setFaults({ refundOutage: false });
      await tier.temporalClient.workflow
        .getHandle(orderWorkflowId(waiting.compensationFailed))
        .signal(retryCompensationSignal, {});
      await waitForStatus(waiting.approval, 'COMPLETED');
      await waitForStatus(waiting.slowCharge, 'COMPLETED');
      await waitForStatus(waiting.compensationFailed, 'COMPENSATED');
      for (const orderId of rampedOn.a) await waitForStatus(orderId, 'COMPLETED');
      for (const orderId of [waiting.approval, waiting.slowCharge, waiting.compensationFailed, ...rampedOn.a])
        expect(await buildOf(orderId), orderId).toBe('a');
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'A drains: no saga runs on it, its workers stop, and a build still taking orders or running sagas cannot be retired',
    async () => {
      await expect.poll(async () => runningOn(await deploymentStatus(), 'a'), { timeout: 20_000 }).toBe(0);
      const { out } = await sagaBuilds('status');
      // Temporal confirms drainage minutes later; the visibility count already says 0.
      expect(out).toContain(`No saga counted on ${builds.a.buildId}`);
      await workerA!.stop();

      const current = await sagaBuilds('retire', builds.b.buildId);
      expect(current.code, current.out).toBe(1);
      expect(current.out).toContain('still takes new orders (current)');
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'rolled back to A with orders of both builds in flight, each saga ends on the build it started on',
    async () => {
      const onB = await placeWaiting('b');
      // A's workers come back (the same build: the same image), then the routing goes back to A.
      workerA = await tier.addWorker('worker-a-again', builds.a.entry as never);
      const rollback = await sagaBuilds('rollback');
      expect(rollback.code, rollback.out).toBe(0);
      expect(rollback.out).toContain(`Every new order now starts on ${builds.a.buildId}`);
      expect((await deploymentStatus()).currentBuildId).toBe(builds.a.buildId);

      const retireB = await sagaBuilds('retire', builds.b.buildId);
      expect(retireB.code, retireB.out).toBe(1);
      expect(retireB.out).toMatch(/saga\(s\) still run on/);

      const onA: string[] = [];
      for (let n = 0; n < 4; n += 1) onA.push(await placeWaiting('a'));
      for (const orderId of [onB, ...rampedOn.b, ...onA]) await approve(orderId);
      for (const orderId of [onB, ...rampedOn.b, ...onA]) await waitForStatus(orderId, 'COMPLETED');
      expect(await buildOf(onB)).toBe('b');
      for (const orderId of rampedOn.b) expect(await buildOf(orderId), orderId).toBe('b');
      for (const orderId of onA) expect(await buildOf(orderId), orderId).toBe('a');
      await expect.poll(async () => runningOn(await deploymentStatus(), 'b'), { timeout: 20_000 }).toBe(0);
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'leaves no failed workflow task in any saga, every order on the build it started on, and nothing to reconcile',
    async () => {
      for (const [orderId, build] of placed) {
        expect(await failedWorkflowTasks(orderId), orderId).toEqual([]);
        expect(await buildOf(orderId), orderId).toBe(build);
      }
      await sleep(1_000);
      const reconcile = await runOpsCommand('ops/reconcile.ts', ['--since', '1h', '--settle', '0s'], {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        TEMPORAL_ADDRESS: tier.temporalAddress,
        NATS_URL: tier.natsUrls.join(','),
        PAYMENT_GATEWAY_URL: tier.gateway.url,
        ORDER_SAGA_LOCAL_STACK_FILE: '/nonexistent/local-stack.json',
      });
      expect(reconcile.code, reconcile.out).toBe(0);
      expect(tier.unexpectedExits).toEqual([]);
    },
    STEP_TIMEOUT_MS,
  );
});
