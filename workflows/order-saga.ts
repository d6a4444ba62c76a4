// orderSaga: [approval?] → reserve inventory → charge payment → send confirmation.
// On a failure or a cancel, the compensations registered so far run newest-first in a
// non-cancellable scope, then a notice goes to the customer. A compensation that keeps
// failing parks the saga in COMPENSATION_FAILED until an operator signals; one that meets an
// open payment circuit waits it out without spending its attempts. Once a cancel was accepted
// the saga ends CANCELLED, whatever the step running then does.
// Every state change is audited exactly once: message id = workflowId:runId:sequence.
//
// The parts, in order-saga/: record.ts (the status document, entering a status, auditing),
// decisions.ts (cancel, approve and the operator's answers), forward.ts (the steps),
// compensations.ts (undoing), activities.ts (how each kind of activity is called).
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { FailureType } from '../domain/failures.js';
import type { OrderSagaInput, OrderStatusDocument } from './contract.js';
import { sagaActivities } from './order-saga/activities.js';
import { Compensations, type Outcome } from './order-saga/compensations.js';
import { CancelRequested, SagaDecisions } from './order-saga/decisions.js';
import { describeFailure } from './order-saga/failures.js';
import { ForwardSteps } from './order-saga/forward.js';
import { SagaRecord } from './order-saga/record.js';

// Pinned: a versioned worker runs every saga pinned to its build (workers/worker-versioning.ts,
// the worker's default versioning behaviour): a saga finishes on the build it started on, so a
// new build may change what the saga does without a patch marker (workflows/README.md). Not
// declared here with setWorkflowOptions: an unversioned worker (TEMPORAL_WORKER_VERSIONING=
// unversioned) fails every workflow task of a workflow that declares a behaviour
// (test/workers/worker-versioning.test.ts). A saga lives about as long as its approval wait
// (APPROVAL_TIMEOUT, 24 h by default), short enough for a build's workers to stay up until it
// drains; one stuck on a broken build is moved with a versioning override (docs/deployment.md, "Deploying
// a new build of the saga").

export async function orderSaga({ order, settings }: OrderSagaInput): Promise<OrderStatusDocument> {
  const activities = sagaActivities(settings);
  const record = new SagaRecord(
    order,
    order.total > settings.approvalThreshold,
    activities.audit,
    activities.auditWithSteps,
    activities.finalAudit,
  );
  const decisions = new SagaDecisions(record, activities.decisionsHold);
  const forward = new ForwardSteps(record, decisions, activities, settings);

  const outcome = await goForward(forward, record, decisions, settings.approvalTimeoutMs);
  decisions.settle();
  if (outcome) {
    const compensations = new Compensations(record, decisions, activities, settings.compensationMaxAttempts);
    await CancellationScope.nonCancellable(() => compensations.run(forward.toUndo(), outcome));
  } else {
    await record.enter('COMPLETED', 'Order completed', { final: true });
  }
  return record.doc;
}

/** Runs the steps; undefined when they all succeeded, else how the saga must end. */
async function goForward(
  forward: ForwardSteps,
  record: SagaRecord,
  decisions: SagaDecisions,
  approvalTimeoutMs: number,
): Promise<Outcome | undefined> {
  try {
    if ((await forward.run()) === 'COMPLETED') return undefined;
    record.doc.failure = { type: FailureType.approvalTimedOut, message: `not approved within ${approvalTimeoutMs} ms` };
    return { status: 'REJECTED', notice: 'rejection' };
  } catch (error) {
    if (decisions.cancelRequest || error instanceof CancelRequested || isCancellation(error)) {
      // An accepted cancel decides the outcome, also when the step running then failed on its own;
      // or the workflow itself was cancelled by an operator (`temporal workflow cancel`).
      record.doc.cancellation = decisions.cancelRequest ?? { reason: 'workflow cancellation requested' };
      return { status: 'CANCELLED', notice: 'cancellation' };
    }
    record.doc.failure = describeFailure(error, record.status);
    return { status: 'COMPENSATED', notice: 'failure' };
  }
}
