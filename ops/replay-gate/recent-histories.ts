// The histories the replay gate checks a bundle against: the order sagas started in a recent
// window, read from a live Temporal's visibility, up to a number per execution status (open and
// every kind of closed), newest first, each run's full history fetched.
import { isGrpcServiceError, type Client, type HistoryAndWorkflowId } from '@temporalio/client';
import { ORDER_SAGA_WORKFLOW_TYPE } from '../../workflows/contract.js';

/** Every execution status a saga can be in, as visibility queries spell them. */
export const REPLAY_STATUSES = [
  'Running',
  'Completed',
  'Failed',
  'Canceled',
  'Terminated',
  'TimedOut',
  'ContinuedAsNew',
] as const;
export type ReplayStatus = (typeof REPLAY_STATUSES)[number];

export interface RecentHistoriesWindow {
  since: Date;
  /** At most this many runs per status (the newest). */
  limit: number;
  /** An operator's visibility filter, ANDed with the gate's own (e.g. TaskQueue = 'orders'). */
  query?: string;
}

/** A run to replay, with the status it was listed under. */
export interface RecentHistory extends HistoryAndWorkflowId {
  status: ReplayStatus;
  runId: string;
}

export interface RecentHistories {
  histories: RecentHistory[];
  /** Statuses with more runs in the window than the limit let in. */
  truncated: ReplayStatus[];
}

/** The visibility query the gate lists one status with. */
export function visibilityQuery(status: ReplayStatus, window: RecentHistoriesWindow): string {
  const own =
    `WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}' AND ExecutionStatus = '${status}'` +
    ` AND StartTime >= '${window.since.toISOString()}'`;
  return window.query ? `${own} AND (${window.query})` : own;
}

/** gRPC's NOT_FOUND: the history fetch answers the raw service error, not the client's WorkflowNotFoundError. */
const GRPC_NOT_FOUND = 5;

/** Runs `work` over `items`, at most `width` at a time. */
async function inBatches<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += width)
    results.push(...(await Promise.all(items.slice(i, i + width).map(work))));
  return results;
}

/**
 * Lists the runs of each status and fetches their histories. A run whose history is gone by the
 * time it is fetched (retention ended it in between) is left out.
 */
export async function recentHistories(client: Client, window: RecentHistoriesWindow): Promise<RecentHistories> {
  const runs: { status: ReplayStatus; workflowId: string; runId: string }[] = [];
  const truncated: ReplayStatus[] = [];
  for (const status of REPLAY_STATUSES) {
    let listed = 0;
    // One more than the limit is read only to tell the operator that more were left out.
    for await (const execution of client.workflow.list({ query: visibilityQuery(status, window), pageSize: 100 })) {
      if (listed === window.limit) {
        truncated.push(status);
        break;
      }
      listed += 1;
      runs.push({ status, workflowId: execution.workflowId, runId: execution.runId });
    }
  }
  const fetched = await inBatches(runs, 8, async (run) => {
    try {
      return { ...run, history: await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory() };
    } catch (error) {
      const code: number | undefined = isGrpcServiceError(error) ? error.code : undefined;
      if (code === GRPC_NOT_FOUND) return undefined;
      throw error;
    }
  });
  return { histories: fetched.filter((history) => history !== undefined), truncated };
}
