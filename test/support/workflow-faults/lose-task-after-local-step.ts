// A workflow interceptor module for one test worker's bundle (never the product's). Driven by the
// saga's memo:
// - `loseTaskAfter` (reserveInventory, chargePayment, or publishAuditEvents: the final status's
//   audit event): every workflow task in which that local activity completed is failed instead
//   of committed, as when the worker that ran it dies or loses the server before it reports the
//   task. Temporal retries the task, the step runs again (it is idempotent per order) and the
//   task is lost again, until a cancel reaches the saga (by signal or update): from then on its
//   tasks are committed, so a test sees which path the saga takes once it meets the cancel;
// - `loseApprovalTaskUntil` (epoch ms): until then, every workflow task that took an approveOrder
//   update and ran a local activity is lost; from then on, an approveOrder update is refused, as
//   if Temporal had dropped it with the lost task (it does, when the history shard that held it
//   moves or restarts) and its caller had given up;
// - `failReserveOnRetry`: in a retried task, the reservation fails as it does once its attempts
//   are spent (the database unreachable), where the lost attempt had reserved.
import { RetryState } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, workflowInfo, type WorkflowInterceptors } from '@temporalio/workflow';

/** History length when the saga's first workflow task starts: started, task scheduled, task started. */
const FIRST_TASK_HISTORY_LENGTH = 3;

export const interceptors = (): WorkflowInterceptors => {
  let stepRanInThisTask = false;
  // A workflow task is known by the history length it started at (its activations share it).
  let approvalTookIn: number | undefined;
  let localStepRanIn: number | undefined;
  let cancelSeen = false;
  const memo = () => workflowInfo().memo ?? {};
  return {
    inbound: [
      {
        async handleSignal(input, next) {
          if (input.signalName === 'cancelOrder') cancelSeen = true;
          return next(input);
        },
        validateUpdate(input, next) {
          const until = memo().loseApprovalTaskUntil;
          if (input.name === 'approveOrder' && until !== undefined && Date.now() >= Number(until))
            throw ApplicationFailure.nonRetryable('injected fault: Temporal dropped this update with the lost task');
          return next(input);
        },
        async handleUpdate(input, next) {
          if (input.name === 'cancelOrder') cancelSeen = true;
          if (input.name === 'approveOrder') approvalTookIn = workflowInfo().historyLength;
          return next(input);
        },
      },
    ],
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
          localStepRanIn = workflowInfo().historyLength;
          if (input.activityType === memo().loseTaskAfter) stepRanInThisTask = true;
          return result;
        },
      },
    ],
    internals: [
      {
        concludeActivation(input, next) {
          if (stepRanInThisTask && !cancelSeen)
            throw new Error(`injected fault: the workflow task that ran ${String(memo().loseTaskAfter)} is lost`);
          const replaying = workflowInfo().unsafe.isReplaying;
          const losingApprovals = Date.now() < Number(memo().loseApprovalTaskUntil ?? 0);
          if (losingApprovals && !replaying && approvalTookIn !== undefined && approvalTookIn === localStepRanIn)
            throw new Error('injected fault: the workflow task that took the approval and ran a local step is lost');
          return next(input);
        },
      },
    ],
  };
};
