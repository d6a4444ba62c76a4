// A workflow interceptor module for one test worker's bundle (never the product's): every workflow
// task in which the local activity named by the saga's memo `loseTaskAfter` (reserveInventory or
// chargePayment) completed is failed instead of committed, as when the worker that ran it dies or
// loses the server before it reports the task. Temporal retries the task, the step runs again (it
// is idempotent per order) and the task is lost again, until something makes the saga take
// another path: a cancel delivered to the retry before it gets that far.
import { workflowInfo, type WorkflowInterceptors } from '@temporalio/workflow';

export const interceptors = (): WorkflowInterceptors => {
  let stepRanInThisTask = false;
  return {
    outbound: [
      {
        async scheduleLocalActivity(input, next) {
          const result = await next(input);
          if (input.activityType === workflowInfo().memo?.loseTaskAfter) stepRanInThisTask = true;
          return result;
        },
      },
    ],
    internals: [
      {
        concludeActivation(input, next) {
          if (stepRanInThisTask)
            throw new Error(
              `injected fault: the workflow task that ran ${String(workflowInfo().memo?.loseTaskAfter)} is lost`,
            );
          return next(input);
        },
      },
    ],
  };
};
