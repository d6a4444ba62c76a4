// Builds the Temporal worker of the orders task queue: the saga's workflow code (a
// prebuilt bundle in production, bundled on the fly in development) and its activities.
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { Config } from '../lib/config.js';
import { createActivities, type ActivityClients } from '../activities/index.js';

/**
 * The prebuilt workflow bundle, next to this module: `npm run build` writes it beside the
 * compiled worker (dist/workers/). Run from source, there is none and workflows are bundled at start-up.
 */
export const WORKFLOW_BUNDLE_PATH = fileURLToPath(new URL('./workflow-bundle.js', import.meta.url));
/** The workflow entry point bundled for the worker. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface OrderWorkerOptions {
  connection: NativeConnection;
  config: Pick<Config, 'temporal' | 'worker'>;
  clients: ActivityClients;
  /** A prebuilt bundle's code path; default: dist/workflow-bundle.js when present, else bundle workflows/ now. */
  workflowBundlePath?: string;
  identity?: string;
}

export async function createOrderWorker({
  connection,
  config,
  clients,
  workflowBundlePath,
  identity,
}: OrderWorkerOptions): Promise<Worker> {
  const bundlePath = workflowBundlePath ?? (existsSync(WORKFLOW_BUNDLE_PATH) ? WORKFLOW_BUNDLE_PATH : undefined);
  const workflowSource: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> = bundlePath
    ? { workflowBundle: { codePath: bundlePath } }
    : { workflowsPath: WORKFLOWS_PATH };
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...workflowSource,
    activities: createActivities(clients),
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: config.worker.maxConcurrentWorkflowTasks,
    maxConcurrentLocalActivityExecutions: config.worker.maxConcurrentActivities,
    shutdownGraceTime: config.worker.shutdownGraceMs,
    ...(identity && { identity }),
  });
}
