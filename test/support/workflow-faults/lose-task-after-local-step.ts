// A workflow interceptor module for one test worker's bundle (never the product's). Driven by the
// saga's memo:
// - `loseTaskAfter` (reserveInventory or chargePayment): every workflow task in which that local
//   activity completed is failed instead of committed, as when the worker that ran it dies or
//   loses the server before it reports the task. Temporal retries the task, the step runs again
//   (it is idempotent per order) and the task is lost again, until something makes the saga take
//   another path: a cancel delivered to the retry before it gets that far, or
// - `failReserveOnRetry`: in a retried task, the reservation fails as it does once its attempts
//   are spent (the database unreachable), where the lost attempt had reserved.
import { RetryState } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, workflowInfo, type WorkflowInterceptors } from '@temporalio/workflow';

/** History length when the saga's first workflow task starts: started, task scheduled, task started. */
const FIRST_TASK_HISTORY_LENGTH = 3;

export const interceptors = (): WorkflowInterceptors => {
  let stepRanInThisTask = false;
  const memo = () => workflowInfo().memo ?? {};
  return {
    outbound: [
      {
        async scheduleLocalActivity(input, next) {
          const retried = workflowInfo().historyLength > FIRST_TASK_HISTORY_LENGTH;
          if (input.activityType === 'reserveInventory' && memo().failReserveOnRetry && retried) {
            throw new ActivityFailure(
              'Activity task failed',
              input.activityType,
              String(input.seq),
              RetryState.MAXIMUM_ATTEMPTS_REACHED,
              'injected',
              ApplicationFailure.retryable('injected fault: the inventory database is unreachable', 'Error'),
            );
          }
          const result = await next(input);
          if (input.activityType === memo().loseTaskAfter) stepRanInThisTask = true;
          return result;
        },
      },
    ],
    internals: [
      {
        concludeActivation(input, next) {
          if (stepRanInThisTask)
            throw new Error(`injected fault: the workflow task that ran ${String(memo().loseTaskAfter)} is lost`);
          return next(input);
        },
      },
    ],
  };
};
