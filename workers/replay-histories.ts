// Replays saga histories against a workflow bundle the way the worker would run them: the same
// workflow interceptors (bundled with the code), activity interceptors, sinks and data converter.
// One replay session for all the histories; each one's outcome is returned, a nondeterminism told
// apart from any other failure. The replay gate (ops/replay-gate.ts) feeds it histories pulled from
// a live Temporal, test/workflows/replay.test.ts the histories recorded in test/histories/.
import { existsSync } from 'node:fs';
import type { HistoryAndWorkflowId } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { DefaultLogger, Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { bundleOrderWorkflows, tracingWorkerOptions, WORKFLOW_BUNDLE_PATH } from './order-worker.js';

/** Which bundle to replay against: a file (a build's dist/workers/workflow-bundle.js), or code in hand. */
export type WorkflowBundleSource = { codePath: string; code?: never } | { code: string; codePath?: never };

/**
 * The bundle a worker started from here would run: the prebuilt one beside the compiled worker
 * (`npm run build`, in an image), else workflows/ bundled now (run from source). `description`
 * says which, for the operator.
 */
export async function currentWorkflowBundle(): Promise<{ bundle: WorkflowBundleSource; description: string }> {
  if (existsSync(WORKFLOW_BUNDLE_PATH))
    return { bundle: { codePath: WORKFLOW_BUNDLE_PATH }, description: `${WORKFLOW_BUNDLE_PATH} (this build's)` };
  // webpack's summary of the bundle is noise to an operator; its warnings and errors are not.
  const code = await bundleOrderWorkflows(new DefaultLogger('WARN'));
  return { bundle: { code }, description: 'workflows/ bundled now from this checkout' };
}

/**
 * Why a history did not replay: the code takes another path than the history (`nondeterminism`),
 * or anything else. `message`: what went wrong, in a line; `detail`: the SDK's whole error.
 */
export interface ReplayFailure {
  kind: 'nondeterminism' | 'other';
  message: string;
  detail: string;
}

/** One history's outcome, with what the caller gave beside the history (its status, its file). */
export type ReplayOutcome<T> = Omit<T, 'history'> & { runId: string; failure?: ReplayFailure };

/**
 * Replays every history in one replay worker, in order, and answers one outcome per history in the
 * same order. `dataConverter` must decode the payloads as the worker that wrote them encoded them
 * (PAYLOAD_ENCRYPTION_KEYS); a payload it cannot decode (a key it lacks) ends the replay: this throws.
 */
export async function replayHistories<T extends HistoryAndWorkflowId>(
  bundle: WorkflowBundleSource,
  histories: readonly T[],
  dataConverter?: DataConverter,
): Promise<ReplayOutcome<T>[]> {
  const options: ReplayWorkerOptions = {
    workflowBundle: bundle,
    ...tracingWorkerOptions(),
    ...(dataConverter && { dataConverter }),
    replayName: 'order-saga-replay',
  };
  const outcomes: ReplayOutcome<T>[] = [];
  // The SDK answers one result per history pushed, in the order pushed: the index pairs them.
  for await (const result of Worker.runReplayHistories(options, histories)) {
    const { history: _history, ...given } = histories[outcomes.length]!;
    outcomes.push({ ...given, runId: result.runId, ...(result.error && { failure: describeFailure(result.error) }) });
  }
  return outcomes;
}

/**
 * The SDK wraps core's reason ("[TMPRL1100] Nondeterminism error: …") in two sentences of its own
 * and a debug dump of the failure; the reason alone says what to look at.
 */
const CORE_FAILURE_MESSAGE = /Failure \{ message: "((?:[^"\\]|\\.)*)"/;

function describeFailure(error: Error): ReplayFailure {
  const reason = CORE_FAILURE_MESSAGE.exec(error.message)?.[1]?.replace(/\\(.)/g, '$1');
  return {
    kind: error instanceof DeterminismViolationError ? 'nondeterminism' : 'other',
    message: reason ?? error.message,
    detail: error.message,
  };
}
