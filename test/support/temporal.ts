// Test helpers for the real Temporal dev server started by the harness.
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import type { ActivityClients } from '../../activities/index.js';
import { createOrderWorker } from '../../workers/order-worker.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import type { WorkerVersioningConfig } from '../../lib/config.js';
import { joinDeployment, type WorkerBuild } from '../../workers/worker-versioning.js';
import { pino, type Logger } from 'pino';

// The SDK logs every worker state change at INFO; tests want its warnings only.
Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] }); // Ctrl-C must end a test run, not drain its workers

/** Saga timings small enough for tests to finish in seconds. */
export function fastSagaSettings(overrides: Partial<SagaSettings> = {}): SagaSettings {
  return {
    approvalThreshold: 1_000_000,
    approvalTimeoutMs: 60_000,
    activityTimeoutMs: 2_000,
    retryInitialIntervalMs: 100,
    retryMaxIntervalMs: 500,
    stepMaxAttempts: 5,
    compensationMaxAttempts: 3,
    ...overrides,
  };
}

export async function connectClient(): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  return { client: new Client({ connection, namespace: 'default' }), close: () => connection.close() };
}

export interface RunningWorker {
  taskQueue: string;
  worker: Worker;
  /** A versioned worker's build (undefined: unversioned). */
  build: WorkerBuild | undefined;
  stop: () => Promise<void>;
}

/**
 * Starts an order worker on its own task queue (one per test file keeps files independent), on
 * the harness's workflow bundle or on `workflowBundlePath` (a bundle with a test's own interceptors),
 * in the `default` namespace or in `namespace`, on `taskQueue` when given; unversioned unless
 * `versioning` says otherwise (then it joins its deployment as the worker process does, logging to `logger`).
 */
export async function startInProcessWorker(
  clients: ActivityClients,
  {
    workflowBundlePath = inject('workflowBundlePath'),
    namespace = 'default',
    taskQueue = `orders-test-${randomUUID()}`,
    versioning = { mode: 'unversioned' },
    logger = pino({ level: 'silent' }),
  }: {
    workflowBundlePath?: string;
    namespace?: string;
    taskQueue?: string;
    versioning?: WorkerVersioningConfig;
    logger?: Logger;
  } = {},
): Promise<RunningWorker> {
  const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  const worker = await createOrderWorker({
    connection,
    config: {
      temporal: { address: inject('temporalAddress'), namespace, taskQueue, tls: undefined },
      worker: { maxConcurrentActivities: 50, maxConcurrentWorkflowTasks: 50, shutdownGraceMs: 1_000 },
      versioning,
    },
    clients,
    workflowBundlePath,
  });
  const running = worker.run();
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    })());
  let build: WorkerBuild | undefined;
  if (versioning.mode === 'versioned') {
    const client = await Connection.connect({ address: inject('temporalAddress') });
    try {
      build = await joinDeployment(worker, client.workflowService, { namespace, versioning, logger });
    } catch (error) {
      await stop();
      throw error;
    } finally {
      await client.close();
    }
  }
  return { taskQueue, worker, build, stop };
}
