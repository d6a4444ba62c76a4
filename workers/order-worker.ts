// Builds the Temporal worker of the orders task queue: the saga's workflow code (a
// prebuilt bundle in production, bundled on the fly in development) and its activities.
import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import { Resource } from '@opentelemetry/resources';
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import {
  bundleWorkflowCode,
  Worker,
  type ActivityInterceptors,
  type Logger,
  type NativeConnection,
  type WorkerOptions,
} from '@temporalio/worker';
import type { Context as ActivityContext } from '@temporalio/activity';
import { trace } from '@opentelemetry/api';
import type { Config } from '../lib/config.js';
import { dataConverter } from '../lib/temporal-client.js';
import type { Telemetry } from '../lib/telemetry.js';
import { createActivities, type ActivityClients } from '../activities/index.js';
import { deploymentOptions, workerBuild } from './worker-versioning.js';

/**
 * The prebuilt workflow bundle, next to this module: `npm run build` writes it beside the
 * compiled worker (dist/workers/). Run from source, there is none and workflows are bundled at start-up.
 */
export const WORKFLOW_BUNDLE_PATH = fileURLToPath(new URL('./workflow-bundle.js', import.meta.url));
/** The workflow entry point bundled for the worker. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/**
 * Workflow interceptors bundled with the workflow code: the saga's spans, which continue the
 * starter's trace in the workflow and pass it on to every activity (workflows/tracing.ts: made
 * without the OpenTelemetry SDK in the sandbox, exported through the sink below), and the trace
 * id on every workflow log line.
 */
export const WORKFLOW_INTERCEPTOR_MODULES = [
  fileURLToPath(new URL('../workflows/tracing.ts', import.meta.url)),
  fileURLToPath(new URL('../workflows/log-context.ts', import.meta.url)),
];

/** Bundles the saga's workflow code with its interceptors (ahead of time, or at start-up from source). */
export async function bundleOrderWorkflows(logger?: Logger): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    ...(logger && { logger }),
  });
  return code;
}

/**
 * Keeps the activity's trace id on the SDK's lines written after its span has ended
 * ("Activity completed", "Activity failed"), where the OpenTelemetry interceptor has none to add.
 * ("Activity started" is written before any interceptor sees the activity's headers.)
 */
function activityTraceIdOnLogs(): ActivityInterceptors {
  let traceId: string | undefined;
  return {
    inbound: {
      execute(input, next) {
        const spanContext = trace.getActiveSpan()?.spanContext();
        if (spanContext && trace.isSpanContextValid(spanContext)) traceId = spanContext.traceId;
        return next(input);
      },
    },
    outbound: {
      getLogAttributes(input, next) {
        return next(traceId ? { trace_id: traceId, ...input } : input);
      },
    },
  };
}

/**
 * What a worker running the bundle needs for tracing: activity interceptors, and the sink the
 * workflow interceptors send finished workflow spans to. Without telemetry the spans are dropped.
 */
export function tracingWorkerOptions(telemetry?: Pick<Telemetry, 'spanProcessor' | 'resource'>) {
  return {
    interceptors: {
      activity: [
        (ctx: ActivityContext) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
        activityTraceIdOnLogs,
      ],
    },
    sinks: {
      exporter: makeWorkflowExporter(
        telemetry?.spanProcessor ?? new NoopSpanProcessor(),
        telemetry?.resource ?? Resource.default(),
      ),
    },
  } satisfies Pick<WorkerOptions, 'interceptors' | 'sinks'>;
}

/**
 * How long one call into the workflow sandbox may take, wall clock, before the SDK calls it a
 * deadlock (SDK default: 5 s). When that deadline fires, Node aborts the whole worker ("async hook
 * stack has become corrupted": it stops the workflow's microtasks inside the SDK's
 * AsyncLocalStorage scope) instead of failing one workflow task, so the deadline must not fire
 * for a worker that was merely not running: paused (SIGSTOP, a frozen container, a descheduled
 * VM) or starved of CPU while it ran an activation. A saga's activation takes milliseconds; a
 * real deadlock in workflow code still ends the process, a minute later, and the supervisor
 * restarts it. Test: test/end-to-end/worker-pause.test.ts.
 */
export const ISOLATE_EXECUTION_TIMEOUT = '60s';

export interface OrderWorkerOptions {
  connection: NativeConnection;
  /**
   * `payloadKeys`: encrypt payloads (absent or empty: stored as they are). `versioning`: absent,
   * an unversioned worker (tests on a task queue of their own).
   */
  config: Pick<Config, 'temporal' | 'worker'> & Partial<Pick<Config, 'payloadKeys' | 'versioning'>>;
  clients: ActivityClients;
  /** A prebuilt bundle's code path; default: dist/workflow-bundle.js when present, else bundle workflows/ now. */
  workflowBundlePath?: string;
  identity?: string;
  /** Where the workflow's spans go; activity spans use the global tracer provider. */
  telemetry?: Pick<Telemetry, 'spanProcessor' | 'resource'>;
}

export async function createOrderWorker({
  connection,
  config,
  clients,
  workflowBundlePath,
  identity,
  telemetry,
}: OrderWorkerOptions): Promise<Worker> {
  const bundlePath = workflowBundlePath ?? (existsSync(WORKFLOW_BUNDLE_PATH) ? WORKFLOW_BUNDLE_PATH : undefined);
  // Read once: the build id of a versioned worker is derived from it unless configured.
  const code = bundlePath ? readFileSync(bundlePath, 'utf8') : await bundleOrderWorkflows();
  const workflowSource: Pick<WorkerOptions, 'workflowBundle'> = { workflowBundle: { code } };
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...workflowSource,
    ...deploymentOptions(workerBuild(config.versioning ?? { mode: 'unversioned' }, code)),
    ...tracingWorkerOptions(telemetry),
    dataConverter: dataConverter(config.payloadKeys ?? []),
    activities: createActivities(clients),
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: config.worker.maxConcurrentWorkflowTasks,
    // Read by the SDK but not in its WorkerOptions type yet; worker-pause.test.ts fails if an SDK
    // upgrade stops honouring it.
    ...({ isolateExecutionTimeout: ISOLATE_EXECUTION_TIMEOUT } as Partial<WorkerOptions>),
    maxConcurrentLocalActivityExecutions: config.worker.maxConcurrentActivities,
    shutdownGraceTime: config.worker.shutdownGraceMs,
    ...(identity && { identity }),
  });
}
