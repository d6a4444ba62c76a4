// Temporal's Worker Deployments as the product uses them: which build of the saga new orders start
// on (current, and a ramped share), which builds still hold running sagas, and the calls that move
// the routing. Used by the worker (a build making itself current at start) and by
// `npm run saga-builds` (rollout, ramp, rollback, retire, moving one saga). Every saga is pinned
// (worker-versioning.ts): it finishes on the build it started on, whatever the routing says
// later, unless an operator moves it with a versioning override.
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { ORDER_SAGA_WORKFLOW_TYPE } from '../workflows/contract.js';

type WorkflowService = Connection['workflowService'];
const { temporal } = proto;
const { VersionDrainageStatus, WorkerDeploymentVersionStatus } = temporal.api.enums.v1;

/** gRPC status codes Temporal answers with here. */
const GRPC = { NOT_FOUND: 5, FAILED_PRECONDITION: 9 } as const;

export interface BuildSummary {
  buildId: string;
  /** Temporal's view: current, ramping, draining (no new sagas, some still running), drained, inactive. */
  status: 'current' | 'ramping' | 'draining' | 'drained' | 'inactive' | 'unknown';
  createdAt: Date | undefined;
  /** When it was last current, where the server reports it. */
  lastCurrentAt: Date | undefined;
  /** When its routing last changed (made current or ramping, or no longer). */
  routingChangedAt: Date | undefined;
}

export interface DeploymentRouting {
  deploymentName: string;
  /** The build new sagas start on; undefined: none yet (new sagas wait for unversioned workers). */
  currentBuildId: string | undefined;
  ramping: { buildId: string; percentage: number } | undefined;
  builds: BuildSummary[];
  /** Passed back on a change, so two operators' changes cannot silently overwrite each other. */
  conflictToken: Uint8Array;
  /**
   * Who alone may change the routing, when someone claimed it (the Temporal Worker Controller
   * does): Temporal refuses anyone else's change.
   */
  managerIdentity: string | undefined;
}

const seconds = (timestamp: { seconds?: unknown } | null | undefined): Date | undefined =>
  timestamp?.seconds ? new Date(Number(timestamp.seconds) * 1000) : undefined;

function buildStatus(status: number | null | undefined, drainage: number | null | undefined): BuildSummary['status'] {
  switch (status) {
    case WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT:
      return 'current';
    case WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING:
      return 'ramping';
    case WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING:
      return drainage === VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED ? 'drained' : 'draining';
    case WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED:
      return 'drained';
    case WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE:
      return 'inactive';
    default:
      return 'unknown';
  }
}

/** The deployment's routing and builds, or undefined when no worker of it has polled yet. */
export async function describeDeployment(
  service: WorkflowService,
  namespace: string,
  deploymentName: string,
): Promise<DeploymentRouting | undefined> {
  try {
    const { workerDeploymentInfo: info, conflictToken } = await service.describeWorkerDeployment({
      namespace,
      deploymentName,
    });
    const routing = info?.routingConfig;
    const ramping = routing?.rampingDeploymentVersion?.buildId;
    return {
      deploymentName,
      currentBuildId: routing?.currentDeploymentVersion?.buildId || undefined,
      ramping: ramping ? { buildId: ramping, percentage: routing?.rampingVersionPercentage ?? 0 } : undefined,
      builds: (info?.versionSummaries ?? []).map((summary) => ({
        buildId: summary.deploymentVersion?.buildId ?? '',
        status: buildStatus(summary.status, summary.drainageStatus),
        createdAt: seconds(summary.createTime),
        lastCurrentAt: seconds(summary.lastCurrentTime),
        routingChangedAt: seconds(summary.routingUpdateTime),
      })),
      conflictToken: conflictToken ?? new Uint8Array(),
      managerIdentity: info?.managerIdentity || undefined,
    };
  } catch (error) {
    if (isGrpcServiceError(error) && Number(error.code) === GRPC.NOT_FOUND) return undefined;
    throw error;
  }
}

/** A task queue as Temporal routes it: the build its new workflows go to, and who polls it. */
export interface TaskQueueRouting {
  /** The current build of whichever Worker Deployment routes this task queue (none: unversioned). */
  current: { deploymentName: string; buildId: string } | undefined;
  /** Workers that polled its workflow queue in the last minutes, with their build (none: unversioned). */
  pollers: { identity: string; deploymentName: string | undefined; buildId: string | undefined }[];
}

export async function describeTaskQueueRouting(
  service: WorkflowService,
  namespace: string,
  taskQueue: string,
): Promise<TaskQueueRouting> {
  const { versioningInfo, pollers } = await service.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const current = versioningInfo?.currentDeploymentVersion;
  return {
    current: current?.buildId ? { deploymentName: current.deploymentName ?? '', buildId: current.buildId } : undefined,
    pollers: (pollers ?? []).map((poller) => ({
      identity: poller.identity ?? '',
      deploymentName: poller.deploymentOptions?.deploymentName || undefined,
      buildId: poller.deploymentOptions?.buildId || undefined,
    })),
  };
}

export interface RoutingChange {
  namespace: string;
  deploymentName: string;
  buildId: string;
  /** Who made the change: kept by Temporal as the deployment's last modifier. */
  identity: string;
  /** From describeDeployment: refused when someone changed the routing since. */
  conflictToken?: Uint8Array;
}

/** Makes `buildId` the build new sagas start on (and ends a ramp of that build). */
export async function setCurrentBuild(service: WorkflowService, change: RoutingChange): Promise<void> {
  await service.setWorkerDeploymentCurrentVersion({
    namespace: change.namespace,
    deploymentName: change.deploymentName,
    buildId: change.buildId,
    identity: change.identity,
    ...(change.conflictToken?.length && { conflictToken: change.conflictToken }),
  });
}

/** Sends `percentage` of new sagas to `buildId` (the rest to the current build); 0 ends the ramp. */
export async function setRampingBuild(
  service: WorkflowService,
  change: RoutingChange & { percentage: number },
): Promise<void> {
  await service.setWorkerDeploymentRampingVersion({
    namespace: change.namespace,
    deploymentName: change.deploymentName,
    buildId: change.percentage === 0 ? '' : change.buildId,
    percentage: change.percentage,
    identity: change.identity,
    ...(change.conflictToken?.length && { conflictToken: change.conflictToken }),
  });
}

/** Removes a build from the deployment; Temporal refuses while workers of it still poll. */
export async function deleteBuild(
  service: WorkflowService,
  { namespace, deploymentName, buildId, identity }: Omit<RoutingChange, 'conflictToken'>,
): Promise<void> {
  await service.deleteWorkerDeploymentVersion({
    namespace,
    deploymentVersion: { deploymentName, buildId },
    identity,
  });
}

/**
 * The visibility filter of the running sagas on one build (`buildId`), or of those on no build at
 * all (started by unversioned workers, before versioning was turned on). Temporal keeps the build
 * of a versioned workflow in the TemporalWorkerDeploymentVersion search attribute ("name:buildId").
 */
export function runningSagasQuery(deploymentName: string, buildId: string | undefined): string {
  const running = `WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`;
  return buildId === undefined
    ? `${running} AND TemporalWorkerDeploymentVersion IS NULL`
    : `${running} AND TemporalWorkerDeploymentVersion = '${deploymentName}:${buildId}'`;
}

/** How many sagas are running on `buildId` (undefined: on no build), from visibility (a few seconds behind). */
export async function countRunningSagas(
  service: WorkflowService,
  namespace: string,
  deploymentName: string,
  buildId: string | undefined,
): Promise<number> {
  const { count } = await service.countWorkflowExecutions({
    namespace,
    query: runningSagasQuery(deploymentName, buildId),
  });
  return Number(count ?? 0);
}

/** Pins one saga to `buildId` (a versioning override), or removes its override when `buildId` is undefined. */
export async function moveSaga(
  service: WorkflowService,
  {
    namespace,
    workflowId,
    deploymentName,
    buildId,
    identity,
  }: { namespace: string; workflowId: string; deploymentName: string; buildId: string | undefined; identity: string },
): Promise<void> {
  await service.updateWorkflowExecutionOptions({
    namespace,
    workflowExecution: { workflowId },
    identity,
    workflowExecutionOptions:
      buildId === undefined
        ? {}
        : {
            versioningOverride: {
              pinned: {
                behavior:
                  temporal.api.workflow.v1.VersioningOverride.PinnedOverrideBehavior.PINNED_OVERRIDE_BEHAVIOR_PINNED,
                version: { deploymentName, buildId },
              },
            },
          },
    updateMask: { paths: ['versioning_override'] },
  });
}

/**
 * True when Temporal refused because the build has not registered yet: no worker of it has polled,
 * or not yet on every task queue the current build polls (workflow and activity queues register
 * one by one as the worker's pollers start).
 */
export function buildNotRegisteredYet(error: unknown): boolean {
  return (
    isGrpcServiceError(error) &&
    (Number(error.code) === GRPC.NOT_FOUND || Number(error.code) === GRPC.FAILED_PRECONDITION) &&
    /not (found|exist)|no pollers|not registered|does not have|missing active task queues/i.test(
      error.details ?? error.message,
    )
  );
}

/** True when Temporal refused a routing change because the routing changed since it was read. */
export function routingChangedMeanwhile(error: unknown): boolean {
  return isGrpcServiceError(error) && /conflict token/i.test(error.details ?? error.message);
}
