// How the orders worker joins Temporal's Worker Versioning. A versioned worker polls as one build
// of a Worker Deployment; every saga is pinned to the build it started on (workflows/order-saga.ts),
// so two builds of the saga can run side by side during a rollout. The build id is the
// TEMPORAL_WORKER_BUILD_ID given (the Temporal Worker Controller sets it from the pod template) or,
// unset, one derived from the workflow bundle's content: a change to the saga's code is a new
// build, a change to activities or configuration alone is not.
import { createHash } from 'node:crypto';
import type { Connection } from '@temporalio/client';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { WorkerVersioningConfig } from '../lib/config.js';
import {
  buildNotRegisteredYet,
  describeDeployment,
  describeTaskQueueRouting,
  routingChangedMeanwhile,
  setCurrentBuild,
} from './worker-deployments.js';

/** The build id derived from a workflow bundle: `bundle-` and 16 hex digits of its SHA-256. */
export function buildIdOfBundle(bundleCode: string): string {
  return `bundle-${createHash('sha256').update(bundleCode).digest('hex').slice(0, 16)}`;
}

/** The version a versioned worker polls as, or undefined for an unversioned one. */
export interface WorkerBuild {
  deploymentName: string;
  buildId: string;
}

export function workerBuild(versioning: WorkerVersioningConfig, bundleCode: string): WorkerBuild | undefined {
  if (versioning.mode === 'unversioned') return undefined;
  return { deploymentName: versioning.deploymentName, buildId: versioning.buildId ?? buildIdOfBundle(bundleCode) };
}

/**
 * The worker options of a build: every workflow it runs (orderSaga) is pinned. Declared here, not
 * on the workflow, so the same bundle runs on unversioned workers too.
 */
export function deploymentOptions(build: WorkerBuild | undefined): Pick<WorkerOptions, 'workerDeploymentOptions'> {
  if (!build) return {};
  return {
    workerDeploymentOptions: {
      version: build,
      useWorkerVersioning: true,
      defaultVersioningBehavior: 'PINNED',
    },
  };
}

/**
 * What a versioned worker does once it polls (main.ts, and tests' in-process workers): makes its
 * build current when `versioning.becomeCurrent` asks for it. Returns the build, or undefined for
 * an unversioned worker. With `never` it only says where new sagas go, and a failure to look
 * does not stop the worker (a rollout decides; the worker serves the sagas routed to it).
 */
export async function joinDeployment(
  worker: Worker,
  service: Connection['workflowService'],
  { namespace, versioning, logger }: { namespace: string; versioning: WorkerVersioningConfig; logger: Logger },
): Promise<WorkerBuild | undefined> {
  const build = worker.options.workerDeploymentOptions?.version;
  if (!build || versioning.mode !== 'versioned') return undefined;
  const options = {
    namespace,
    taskQueue: worker.options.taskQueue,
    build,
    becomeCurrent: versioning.becomeCurrent,
    identity: worker.options.identity,
    logger,
  };
  if (versioning.becomeCurrent !== 'never') await becomeCurrentIfAsked(service, options);
  else
    await becomeCurrentIfAsked(service, options).catch((error: unknown) =>
      logger.warn(
        { err: error, ...build },
        'could not read where new sagas go; this worker serves the sagas routed to its build',
      ),
    );
  return build;
}

/** How long a starting worker waits for Temporal to know its build (its first poll registers it). */
const REGISTRATION_DEADLINE_MS = 60_000;

/**
 * Makes this worker's build the one new sagas start on, when `becomeCurrent` asks for it: `always`,
 * or `if-none` and the deployment has no current build yet (its first deploy). Otherwise, and when
 * another build is current, logs how to move the routing. Never when the task queue takes its
 * sagas from another Worker Deployment: a mistyped TEMPORAL_DEPLOYMENT_NAME would otherwise make
 * a deployment of one worker current and take every new order. Call once the worker polls:
 * Temporal knows a build only after one of its workers has asked for a task.
 */
export async function becomeCurrentIfAsked(
  service: Connection['workflowService'],
  {
    namespace,
    taskQueue,
    build,
    becomeCurrent,
    identity,
    logger,
  }: {
    namespace: string;
    taskQueue: string;
    build: WorkerBuild;
    becomeCurrent: 'never' | 'if-none' | 'always';
    identity: string;
    logger: Logger;
  },
): Promise<void> {
  const deadline = Date.now() + REGISTRATION_DEADLINE_MS;
  for (;;) {
    const routing = await describeDeployment(service, namespace, build.deploymentName);
    const current = routing?.currentBuildId;
    if (current === build.buildId) {
      logger.info({ ...build }, 'this build is current: new sagas start on it');
      return;
    }
    // Nothing to change: say where new sagas go (no need to wait for this build to register).
    if (becomeCurrent === 'never' || (becomeCurrent === 'if-none' && current !== undefined)) {
      logger.warn(
        { ...build, currentBuildId: current ?? null, becomeCurrent },
        current
          ? `this build is not current: new sagas start on build ${current}; ramp or promote this one with npm run saga-builds`
          : 'no build of this deployment is current: new sagas wait until one is promoted (npm run saga-builds -- promote)',
      );
      return;
    }
    const registered = routing?.builds.some((known) => known.buildId === build.buildId) ?? false;
    if (registered && routing) {
      const other = (await describeTaskQueueRouting(service, namespace, taskQueue)).current;
      if (other && other.deploymentName !== build.deploymentName) {
        logger.error(
          { ...build, taskQueue, routedTo: other },
          `task queue ${taskQueue} takes its sagas from Worker Deployment ${other.deploymentName} (build ${other.buildId}), ` +
            `not from ${build.deploymentName}, which this worker joined: this build stays out of the routing. ` +
            `Set TEMPORAL_DEPLOYMENT_NAME=${other.deploymentName} (a mistyped name), or promote this build with npm run saga-builds ` +
            'if moving the task queue to another deployment is what you mean',
        );
        return;
      }
      try {
        await setCurrentBuild(service, { namespace, ...build, identity, conflictToken: routing.conflictToken });
        logger.info({ ...build, previousBuildId: current ?? null }, 'made this build current: new sagas start on it');
        return;
      } catch (error) {
        // Not registered on every task queue yet, or another worker changed the routing meanwhile
        // (the conflict token no longer matches): look again.
        if (!(buildNotRegisteredYet(error) || routingChangedMeanwhile(error)) || Date.now() > deadline) throw error;
      }
    } else if (Date.now() > deadline) {
      throw new Error(
        `Temporal does not list build ${build.buildId} of Worker Deployment ${build.deploymentName} ` +
          `${REGISTRATION_DEADLINE_MS / 1000} s after the worker started polling; is Worker Versioning enabled on the namespace?`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
