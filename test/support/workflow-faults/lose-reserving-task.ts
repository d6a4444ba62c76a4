// A workflow interceptor module for one test worker's bundle (never the product's): every workflow
// task in which the saga's local reservation completed is failed instead of committed, as when
// the worker that ran it dies or loses the server before it reports the task. Temporal retries the
// task, the reservation runs again (it is idempotent per order), and fails again, until something
// makes the saga take another path: a cancel delivered to the retry before it gets that far.
import type { WorkflowInterceptors } from '@temporalio/workflow';

export const interceptors = (): WorkflowInterceptors => {
  let reservedInThisTask = false;
  return {
    outbound: [
      {
        async scheduleLocalActivity(input, next) {
          const result = await next(input);
          if (input.activityType === 'reserveInventory') reservedInThisTask = true;
          return result;
        },
      },
    ],
    internals: [
      {
        concludeActivation(input, next) {
          if (reservedInThisTask) throw new Error('injected fault: the workflow task that reserved is lost');
          return next(input);
        },
      },
    ],
  };
};
