// `npm run saga-builds`: rolls a new build of the saga out, and back, on a live Temporal with Worker
// Versioning. New orders start on the deployment's current build (and a ramped share on another);
// each saga stays on the build it started on until it ends, so an old build's workers run until
// `status` shows it drained. docs/deployment.md, "Deploying a new build of the saga", is the procedure.
// Reads the processes' variables (TEMPORAL_*, TEMPORAL_DEPLOYMENT_NAME).
// Exit status: 0 done, 1 refused (printed: what and why), 2 a bad command line or Temporal unreachable.
import { hostname, userInfo } from 'node:os';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { loadConfigOrExit, VERSION_PART } from '../lib/config.js';
import { connectTemporalClient } from '../lib/temporal-client.js';
import {
  countRunningSagas,
  deleteBuild,
  describeDeployment,
  describeTaskQueueRouting,
  moveSaga,
  setCurrentBuild,
  setRampingBuild,
  type DeploymentRouting,
} from '../workers/worker-deployments.js';
import { withLocalStackAddresses } from './local-stack.js';

const USAGE = `usage: npm run saga-builds -- COMMAND [ARGUMENTS] [--json]
  status                  the deployment's builds: which is current, which is ramping (its share of new
                          orders), and how many sagas still run on each (a build is drained at 0)
  ramp BUILD PERCENT      send PERCENT (1-99) of new orders to BUILD, the rest to the current build;
                          PERCENT 0 ends the ramp
  promote BUILD           make BUILD the build every new order starts on (ends a ramp)
  rollback [BUILD]        make BUILD current again (default: the build current before this one); sagas
                          already on the newer build finish there, so keep its workers until it drains
  retire BUILD            remove a drained build from the deployment, once its workers are stopped
  move WORKFLOW_ID BUILD  pin one saga to BUILD (a versioning override), e.g. off a broken build; check
                          first that BUILD replays the saga's history (npm run replay-gate --query)
  unpin WORKFLOW_ID       remove a saga's override: it goes back to the build it started on
Reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, TEMPORAL_DEPLOYMENT_NAME (default order-saga;
under the Temporal Worker Controller <namespace>/<release>-worker), TLS settings.
Exit status: 0 done, 1 refused (the reason is printed), 2 a bad command line or Temporal unreachable.`;

class UsageError extends Error {}
/** A change Temporal or this command refused for a reason the operator can act on: exit 1. */
class Refused extends Error {}

type Command =
  | { name: 'status' }
  | { name: 'ramp'; buildId: string; percentage: number }
  | { name: 'promote'; buildId: string }
  | { name: 'rollback'; buildId: string | undefined }
  | { name: 'retire'; buildId: string }
  | { name: 'move'; workflowId: string; buildId: string }
  | { name: 'unpin'; workflowId: string };

const ARITY: Record<Command['name'], [min: number, max: number]> = {
  status: [0, 0],
  ramp: [2, 2],
  promote: [1, 1],
  rollback: [0, 1],
  retire: [1, 1],
  move: [2, 2],
  unpin: [1, 1],
};

function parseCommand(argv: string[]): { command: Command; json: boolean } {
  if (argv.includes('--help') || argv.includes('-h')) throw new UsageError('');
  const json = argv.includes('--json');
  const words = argv.filter((word) => word !== '--json');
  const unknownFlag = words.find((word) => word.startsWith('--'));
  if (unknownFlag) throw new UsageError(`unknown option ${unknownFlag}`);
  const [name, ...args] = words;
  if (!name) throw new UsageError('a command is needed');
  if (!(name in ARITY)) throw new UsageError(`unknown command ${name}`);
  const [min, max] = ARITY[name as Command['name']];
  if (args.length < min || args.length > max)
    throw new UsageError(`${name} takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${args.length}`);
  for (const word of args.slice(0, name === 'ramp' ? 1 : undefined))
    if (!VERSION_PART.test(word))
      throw new UsageError(
        `"${word}" is not a build id or workflow id (1 to 255 letters, digits and . _ - / +; no spaces or colons)`,
      );
  switch (name as Command['name']) {
    case 'status':
      return { command: { name: 'status' }, json };
    case 'ramp': {
      const percentage = /^\d{1,3}$/.test(args[1]!) ? Number(args[1]) : Number.NaN;
      if (!(percentage >= 0 && percentage <= 99))
        throw new UsageError(
          `ramp takes a whole percentage from 0 to 99 (got ${args[1]}); to send every new order to a build, promote it`,
        );
      return { command: { name: 'ramp', buildId: args[0]!, percentage }, json };
    }
    case 'promote':
      return { command: { name: 'promote', buildId: args[0]! }, json };
    case 'rollback':
      return { command: { name: 'rollback', buildId: args[0] }, json };
    case 'retire':
      return { command: { name: 'retire', buildId: args[0]! }, json };
    case 'move':
      return { command: { name: 'move', workflowId: args[0]!, buildId: args[1]! }, json };
    case 'unpin':
      return { command: { name: 'unpin', workflowId: args[0]! }, json };
  }
}

interface Context {
  service: Connection['workflowService'];
  namespace: string;
  deploymentName: string;
  /** The workers' task queue (TEMPORAL_TASK_QUEUE): where a build's workers must be polling. */
  taskQueue: string;
  identity: string;
}

/**
 * Refuses a routing change Temporal would refuse anyway, with what to do: the deployment is managed
 * by someone else (the Temporal Worker Controller claims it).
 */
function mayChangeRouting(ctx: Context, routing: DeploymentRouting): void {
  if (!routing.managerIdentity || routing.managerIdentity === ctx.identity) return;
  throw new Refused(
    `Worker Deployment ${ctx.deploymentName} is managed by "${routing.managerIdentity}" (the Temporal Worker Controller ` +
      'claims its deployments): change the rollout through its resource (worker.versioning.rollout in the chart, ' +
      'e.g. helm upgrade with strategy AllAtOnce for an immediate change). To take the routing over by hand: ' +
      `temporal worker deployment manager-identity set --self --deployment-name ${ctx.deploymentName}.`,
  );
}

/** Refuses to send new orders to a build no worker runs: they would wait, unstarted, for one. */
async function buildIsPolling(ctx: Context, buildId: string): Promise<void> {
  const { pollers } = await describeTaskQueueRouting(ctx.service, ctx.namespace, ctx.taskQueue);
  if (pollers.some((poller) => poller.deploymentName === ctx.deploymentName && poller.buildId === buildId)) return;
  throw new Refused(
    `No worker of build ${buildId} has polled task queue ${ctx.taskQueue} in the last minutes: new orders sent to it ` +
      'would wait for one. Start its workers first (or set TEMPORAL_TASK_QUEUE to the queue they poll).',
  );
}

/** Ends a ramp of another build than `buildId` before `buildId` becomes current (Temporal would keep it). */
async function endOtherRamp(ctx: Context, routing: DeploymentRouting, buildId: string): Promise<string> {
  if (!routing.ramping || routing.ramping.buildId === buildId) return '';
  await setRampingBuild(ctx.service, { ...ctx, buildId: '', percentage: 0, conflictToken: routing.conflictToken });
  return `Ended the ramp of ${routing.ramping.buildId} (${routing.ramping.percentage}%). `;
}

interface BuildReport {
  buildId: string;
  status: string;
  runningSagas: number;
  createdAt: string | undefined;
}

interface StatusReport {
  namespace: string;
  deploymentName: string;
  currentBuildId: string | null;
  ramping: { buildId: string; percentage: number } | null;
  builds: BuildReport[];
  /** Sagas started by unversioned workers (before versioning): they need an unversioned worker to finish. */
  runningUnversionedSagas: number;
}

async function routingOf(ctx: Context): Promise<DeploymentRouting> {
  const routing = await describeDeployment(ctx.service, ctx.namespace, ctx.deploymentName);
  if (!routing)
    throw new Refused(
      `Temporal has no Worker Deployment ${ctx.deploymentName} in namespace ${ctx.namespace}: no versioned worker ` +
        'of it has polled yet. Start the workers (TEMPORAL_WORKER_VERSIONING=versioned), or set TEMPORAL_DEPLOYMENT_NAME.',
    );
  return routing;
}

function knownBuild(routing: DeploymentRouting, buildId: string): void {
  if (routing.builds.some((build) => build.buildId === buildId)) return;
  const known = routing.builds.map((build) => build.buildId).join(', ') || 'none';
  throw new Refused(
    `Temporal does not know build ${buildId} of ${routing.deploymentName} (known: ${known}). A build registers ` +
      'when its workers first poll: start them, then run this again.',
  );
}

async function status(ctx: Context): Promise<StatusReport> {
  const routing = await routingOf(ctx);
  const builds = await Promise.all(
    routing.builds.map(async (build) => ({
      buildId: build.buildId,
      status: build.status,
      runningSagas: await countRunningSagas(ctx.service, ctx.namespace, ctx.deploymentName, build.buildId),
      createdAt: build.createdAt?.toISOString(),
    })),
  );
  builds.sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
  return {
    namespace: ctx.namespace,
    deploymentName: ctx.deploymentName,
    currentBuildId: routing.currentBuildId ?? null,
    ramping: routing.ramping ?? null,
    builds,
    runningUnversionedSagas: await countRunningSagas(ctx.service, ctx.namespace, ctx.deploymentName, undefined),
  };
}

function formatStatus(report: StatusReport): string {
  const lines = [
    `Worker Deployment ${report.deploymentName} in namespace ${report.namespace}`,
    `  new orders start on: ${report.currentBuildId ?? 'no build (none is current: promote one)'}` +
      (report.ramping ? `, ${report.ramping.percentage}% on ${report.ramping.buildId} (ramping)` : ''),
  ];
  const width = Math.max(5, ...report.builds.map((build) => build.buildId.length));
  lines.push(`  ${'BUILD'.padEnd(width)}  ${'STATUS'.padEnd(8)}  RUNNING SAGAS  REGISTERED`);
  for (const build of report.builds)
    lines.push(
      `  ${build.buildId.padEnd(width)}  ${build.status.padEnd(8)}  ${String(build.runningSagas).padStart(13)}  ${build.createdAt ?? ''}`,
    );
  if (report.runningUnversionedSagas > 0)
    lines.push(
      `  ${report.runningUnversionedSagas} saga(s) started before versioning run on no build yet: the current build takes each over at its next workflow task, so it must replay them (keep the patch markers, workflows/README.md).`,
    );
  // Builds that took orders once and now run none (an inactive build never took any: a new one).
  // Drained only once Temporal says so too: it counts the sagas again after a grace period, so a
  // saga visibility has not shown yet is not stranded by workers stopped early.
  const idle = report.builds.filter((build) => build.runningSagas === 0);
  const drained = idle.filter((build) => build.status === 'drained');
  const settling = idle.filter((build) => build.status === 'draining');
  if (drained.length > 0)
    lines.push(
      `  Drained: ${drained.map((build) => build.buildId).join(', ')} (no saga runs on it; stop its workers, then retire it).`,
    );
  if (settling.length > 0)
    lines.push(
      `  No saga counted on ${settling.map((build) => build.buildId).join(', ')}; Temporal confirms a build drained ` +
        'a few minutes after its last saga: keep its workers until it shows drained.',
    );
  lines.push('  (Running sagas are counted from visibility, a few seconds behind.)');
  return lines.join('\n');
}

const describeError = (error: unknown) =>
  isGrpcServiceError(error) ? (error.details ?? error.message) : error instanceof Error ? error.message : String(error);

async function run(ctx: Context, command: Command): Promise<{ message: string; report?: unknown }> {
  switch (command.name) {
    case 'status': {
      const report = await status(ctx);
      return { message: formatStatus(report), report };
    }
    case 'ramp': {
      const routing = await routingOf(ctx);
      mayChangeRouting(ctx, routing);
      if (command.percentage === 0) {
        if (!routing.ramping) return { message: 'No build is ramping: nothing to end.' };
        if (routing.ramping.buildId !== command.buildId)
          throw new Refused(
            `${command.buildId} is not ramping (${routing.ramping.buildId} is, at ${routing.ramping.percentage}%): nothing ended.`,
          );
        await setRampingBuild(ctx.service, {
          ...ctx,
          buildId: '',
          percentage: 0,
          conflictToken: routing.conflictToken,
        });
        return {
          message: `Ended the ramp of ${routing.ramping.buildId}: every new order starts on ${routing.currentBuildId}.`,
        };
      }
      knownBuild(routing, command.buildId);
      if (command.buildId === routing.currentBuildId)
        throw new Refused(`${command.buildId} is the current build already: every new order starts on it.`);
      if (!routing.currentBuildId)
        throw new Refused(
          `No build is current, so a ramp has nothing to share new orders with: promote ${command.buildId} instead.`,
        );
      await buildIsPolling(ctx, command.buildId);
      await setRampingBuild(ctx.service, { ...ctx, ...command, conflictToken: routing.conflictToken });
      return {
        message: `${command.percentage}% of new orders now start on ${command.buildId}, the rest on ${routing.currentBuildId}.`,
      };
    }
    case 'promote':
    case 'rollback': {
      let routing = await routingOf(ctx);
      mayChangeRouting(ctx, routing);
      const buildId = command.buildId ?? previousBuild(routing);
      knownBuild(routing, buildId);
      if (buildId === routing.currentBuildId) return { message: `${buildId} is the current build already.` };
      await buildIsPolling(ctx, buildId);
      const endedRamp = await endOtherRamp(ctx, routing, buildId);
      if (endedRamp) routing = await routingOf(ctx);
      await setCurrentBuild(ctx.service, { ...ctx, buildId, conflictToken: routing.conflictToken });
      return {
        message:
          `${endedRamp}Every new order now starts on ${buildId}` +
          (routing.currentBuildId
            ? `; sagas running on ${routing.currentBuildId} finish there: keep its workers until \`status\` shows it drained.`
            : '.'),
      };
    }
    case 'retire': {
      const routing = await routingOf(ctx);
      knownBuild(routing, command.buildId);
      if (command.buildId === routing.currentBuildId || command.buildId === routing.ramping?.buildId)
        throw new Refused(
          `${command.buildId} still takes new orders (${command.buildId === routing.currentBuildId ? 'current' : 'ramping'}): ` +
            'promote another build (or end the ramp) first.',
        );
      const running = await countRunningSagas(ctx.service, ctx.namespace, ctx.deploymentName, command.buildId);
      if (running > 0)
        throw new Refused(
          `${running} saga(s) still run on ${command.buildId}; retiring it would strand them. Wait until it drains ` +
            '(`status`), or move a stuck saga to another build (`move`).',
        );
      try {
        await deleteBuild(ctx.service, { ...ctx, buildId: command.buildId });
      } catch (error) {
        throw new Refused(
          `Temporal refused to remove ${command.buildId}: ${describeError(error)}. It keeps a build while it is still ` +
            'draining (until `status` shows it drained) and while its workers polled in the last minutes: stop them, ' +
            'wait, and run this again.',
        );
      }
      return { message: `Removed build ${command.buildId} from ${ctx.deploymentName}.` };
    }
    case 'move': {
      const routing = await routingOf(ctx);
      knownBuild(routing, command.buildId);
      await moveSaga(ctx.service, { ...ctx, ...command });
      return {
        message:
          `${command.workflowId} now runs on ${command.buildId} (a versioning override), from its next workflow task. ` +
          `Undo: npm run saga-builds -- unpin ${command.workflowId}`,
      };
    }
    case 'unpin': {
      await moveSaga(ctx.service, { ...ctx, workflowId: command.workflowId, buildId: undefined });
      return { message: `${command.workflowId} has no override: it runs on the build it started on.` };
    }
  }
}

/**
 * The build a rollback returns to when none is named: the one build that took orders before (now
 * draining or drained). With several (Temporal does not say which was current and which was only
 * ramped), the operator names it.
 */
function previousBuild(routing: DeploymentRouting): string {
  const earlier = routing.builds.filter(
    (build) => build.buildId !== routing.currentBuildId && ['draining', 'drained'].includes(build.status),
  );
  if (earlier.length === 1) return earlier[0]!.buildId;
  throw new Refused(
    earlier.length === 0
      ? `No build of ${routing.deploymentName} took orders before ${routing.currentBuildId ?? 'now'}: name the build to roll back to.`
      : `Several builds took orders before (${earlier.map((build) => build.buildId).join(', ')}): name the one to roll back to (rollback BUILD).`,
  );
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommand>;
  try {
    parsed = parseCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message) console.error(`saga-builds: ${error.message}\n`);
    (error.message ? console.error : console.log)(USAGE);
    return error.message ? 2 : 0;
  }
  const { env, note } = withLocalStackAddresses(process.env, ['TEMPORAL_ADDRESS']);
  if (note) console.error(note);
  const config = loadConfigOrExit(env);
  if (config.versioning.mode !== 'versioned') {
    console.error('saga-builds: TEMPORAL_WORKER_VERSIONING=unversioned: this deployment runs no versioned workers.');
    return 2;
  }
  let connection: Connection;
  try {
    ({ connection } = await connectTemporalClient(config));
  } catch (error) {
    console.error(`saga-builds: cannot reach Temporal at ${config.temporal.address}: ${describeError(error)}`);
    return 2;
  }
  const ctx: Context = {
    service: connection.workflowService,
    namespace: config.temporal.namespace,
    deploymentName: config.versioning.deploymentName,
    taskQueue: config.temporal.taskQueue,
    identity: `saga-builds ${userInfo().username}@${hostname()}`,
  };
  try {
    const { message, report } = await run(ctx, parsed.command);
    console.log(parsed.json ? JSON.stringify(report ?? { message }, null, 2) : message);
    return 0;
  } catch (error) {
    if (error instanceof Refused) {
      console.error(`saga-builds: ${error.message}`);
      return 1;
    }
    console.error(`saga-builds: Temporal refused: ${describeError(error)}`);
    return isGrpcServiceError(error) && Number(error.code) === 14 ? 2 : 1;
  } finally {
    await connection.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
