// orderSaga: [approval?] → reserve inventory → charge payment → send confirmation.
// On a failure or a cancel, the compensations registered so far run newest-first in a
// non-cancellable scope, then a notice goes to the customer. A compensation that keeps
// failing parks the saga in COMPENSATION_FAILED until an operator signals.
// Every state change is audited exactly once: message id = workflowId:sequence.
import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { NotificationKind, OrderActivities } from '../activities/index.js';
import {
  approveOrderSignal,
  auditEventTypeFor,
  BusinessFailure,
  CANCELLABLE_STATUSES,
  cancelOrderSignal,
  COMPENSATION_EVENT_TYPES,
  getStatusQuery,
  CustomerIdKey,
  OrderStatusKey,
  OrderTotalKey,
  resolveManuallySignal,
  toMajorUnits,
  retryCompensationSignal,
  type CompensationStep,
  type OrderSagaInput,
  type OrderStatus,
  type OrderStatusDocument,
} from './contract.js';

/** Audit publishes are short; a local activity keeps them off the task queue. Retried until NATS takes them. */
const AUDIT_TIMEOUT = '10 seconds';

/** Raised inside the saga when a cancel was requested between steps. */
class CancelRequested extends Error {
  constructor() {
    super('cancel requested');
    this.name = 'CancelRequested';
  }
}

type Outcome = { status: 'CANCELLED' | 'COMPENSATED' | 'REJECTED'; notice: NotificationKind };

export async function orderSaga({ order, settings }: OrderSagaInput): Promise<OrderStatusDocument> {
  const { workflowId } = workflowInfo();
  const doc: OrderStatusDocument = {
    orderId: order.orderId,
    workflowId,
    status: 'RECEIVED',
    customerId: order.customerId,
    currency: order.currency,
    total: order.total,
    items: order.items,
    approval: { required: order.total > settings.approvalThreshold },
    compensations: [],
    history: [],
    updatedAt: new Date().toISOString(),
  };

  const retry = (maximumAttempts: number): RetryPolicy => ({
    initialInterval: settings.retryInitialIntervalMs,
    backoffCoefficient: 2,
    maximumInterval: settings.retryMaxIntervalMs,
    maximumAttempts,
    nonRetryableErrorTypes: Object.values(BusinessFailure),
  });
  // A cancel lets a running attempt finish (it may have charged) but stops pending retries at once.
  const steps = proxyActivities<OrderActivities>({
    startToCloseTimeout: settings.activityTimeoutMs,
    retry: retry(settings.stepMaxAttempts),
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
  const compensations = proxyActivities<OrderActivities>({
    startToCloseTimeout: settings.activityTimeoutMs,
    retry: retry(settings.compensationMaxAttempts),
  });
  const audit = proxyLocalActivities<OrderActivities>({
    startToCloseTimeout: AUDIT_TIMEOUT,
    retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: settings.retryMaxIntervalMs },
  });

  let auditSequence = 0;
  let cancelRequest: { reason: string } | undefined;
  let approvedBy: string | undefined;
  let operatorDecision: { retry: true } | { note: string } | undefined;
  let runningStep: CancellationScope | undefined;
  let settled = false; // the outcome is decided: a cancel can no longer change it
  const registered: CompensationStep[] = [];

  setHandler(getStatusQuery, () => doc);
  setHandler(cancelOrderSignal, (input) => {
    if (settled || cancelRequest || !CANCELLABLE_STATUSES.includes(doc.status)) {
      log.warn('cancelOrder ignored: the saga is past the point where a cancel applies', { status: doc.status });
      return;
    }
    cancelRequest = { reason: input?.reason?.trim() || 'no reason given' };
    runningStep?.cancel();
  });
  setHandler(approveOrderSignal, (input) => {
    if (doc.status !== 'AWAITING_APPROVAL' || approvedBy !== undefined) {
      log.warn('approveOrder ignored: the saga is not awaiting approval', { status: doc.status });
      return;
    }
    approvedBy = input?.approvedBy?.trim() || 'unknown';
  });
  setHandler(retryCompensationSignal, () => {
    if (doc.status === 'COMPENSATION_FAILED') operatorDecision = { retry: true };
    else log.warn('retryCompensation ignored: the saga is not in COMPENSATION_FAILED', { status: doc.status });
  });
  setHandler(resolveManuallySignal, (input) => {
    if (doc.status === 'COMPENSATION_FAILED') operatorDecision = { note: input?.note?.trim() || 'resolved manually' };
    else log.warn('resolveManually ignored: the saga is not in COMPENSATION_FAILED', { status: doc.status });
  });

  async function publishAudit(type: string, data: Record<string, unknown>): Promise<void> {
    auditSequence += 1;
    await audit.publishAudit({
      eventId: `${workflowId}:${auditSequence}`,
      type,
      orderId: order.orderId,
      traceId: order.traceId,
      data,
    });
  }

  async function enter(status: OrderStatus, details: string): Promise<void> {
    const at = new Date().toISOString();
    doc.status = status;
    doc.updatedAt = at;
    doc.history.push({ status, at });
    upsertSearchAttributes([
      { key: OrderStatusKey, value: status },
      // Set by the starter too; repeated so a saga started any other way is found by customer and total.
      ...(status === 'RECEIVED'
        ? [
            { key: CustomerIdKey, value: order.customerId },
            { key: OrderTotalKey, value: toMajorUnits(order.total, order.currency) },
          ]
        : []),
    ]);
    setCurrentDetails(details);
    await publishAudit(auditEventTypeFor(status), {
      status,
      ...(doc.failure && { failure: doc.failure }),
      ...(doc.cancellation && { cancellation: doc.cancellation }),
      ...(doc.resolution && { resolution: doc.resolution }),
    });
  }

  /** Runs one forward step in its own scope so a cancel can stop its retries. */
  async function runStep<T>(
    status: OrderStatus,
    details: string,
    undo: CompensationStep | undefined,
    work: () => Promise<T>,
  ): Promise<T> {
    if (cancelRequest) throw new CancelRequested();
    await enter(status, details);
    if (cancelRequest) throw new CancelRequested();
    if (undo) registered.push(undo); // registered before the step: a step that times out may still have acted
    const scope = new CancellationScope();
    runningStep = scope;
    try {
      return await scope.run(work);
    } finally {
      runningStep = undefined;
    }
  }

  /** Runs one compensation; resolves with what it changed, for the audit event. */
  async function runCompensation(step: CompensationStep, notice: NotificationKind): Promise<Record<string, unknown>> {
    const ref = { orderId: order.orderId };
    if (step === 'refund') {
      return compensations.refundPayment.executeWithOptions({ summary: 'Refund the charge' }, [
        { ...ref, amount: order.total, currency: order.currency },
      ]);
    }
    if (step === 'release') {
      return compensations.releaseInventory.executeWithOptions({ summary: 'Release the reserved stock' }, [ref]);
    }
    return compensations.sendNotification.executeWithOptions({ summary: `Send the ${notice} notice` }, [
      {
        ...ref,
        kind: notice,
        customerId: order.customerId,
        email: order.email,
        total: order.total,
        currency: order.currency,
        traceId: order.traceId,
      },
    ]);
  }

  /** Undoes what was done, newest first, then notifies; waits for an operator when a compensation gives up. */
  async function compensate(outcome: Outcome): Promise<void> {
    const queue: CompensationStep[] = [...registered].reverse();
    queue.push('notify');
    doc.compensations = queue.map((step) => ({ step, status: 'PENDING' }));
    if (registered.length > 0) await enter('COMPENSATING', `Undoing: ${queue.join(' → ')}`);
    for (let index = 0; index < doc.compensations.length;) {
      const record = doc.compensations[index]!;
      try {
        const effect = await runCompensation(record.step, outcome.notice);
        record.status = 'DONE';
        delete record.error;
        await publishAudit(COMPENSATION_EVENT_TYPES[record.step], {
          step: record.step,
          ...effect,
          ...(record.step === 'notify' && { notice: outcome.notice }),
        });
        index += 1;
      } catch (error) {
        record.status = 'FAILED';
        record.error =
          error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
        await enter(
          'COMPENSATION_FAILED',
          `Compensation "${record.step}" failed: ${record.error}. Signal retryCompensation {} to try again, or resolveManually {"note": "..."} once handled by hand.`,
        );
        const decision = await waitForOperator();
        if ('note' in decision) {
          // The operator did this step by hand: record it and carry on with the remaining compensations.
          record.status = 'RESOLVED_MANUALLY';
          doc.resolution = { note: decision.note, step: record.step };
          await publishAudit('CompensationResolvedManually', { step: record.step, note: decision.note });
          index += 1;
        }
        await enter(
          'COMPENSATING',
          `Continuing compensations on operator request (${'note' in decision ? 'resolved manually' : 'retry'})`,
        );
      }
    }
    await enter(
      outcome.status,
      doc.resolution
        ? `Ended ${outcome.status}; "${doc.resolution.step}" resolved manually: ${doc.resolution.note}`
        : `Ended ${outcome.status}`,
    );
  }

  /** Waits for retryCompensation or resolveManually. */
  async function waitForOperator(): Promise<{ retry: true } | { note: string }> {
    operatorDecision = undefined;
    const current = () => operatorDecision;
    await condition(() => current() !== undefined);
    return current()!;
  }

  async function runForward(): Promise<'COMPLETED' | 'REJECTED'> {
    await enter('RECEIVED', 'Order received');
    if (doc.approval.required) {
      await enter(
        'AWAITING_APPROVAL',
        `Total ${order.total} ${order.currency} is above the approval threshold: waiting for approveOrder or cancelOrder`,
      );
      const decided = await condition(
        () => approvedBy !== undefined || cancelRequest !== undefined,
        settings.approvalTimeoutMs,
      );
      if (cancelRequest) throw new CancelRequested();
      if (!decided) return 'REJECTED';
      doc.approval.approvedBy = approvedBy;
    }
    const reservation = await runStep('RESERVING_INVENTORY', 'Reserving inventory', 'release', () =>
      steps.reserveInventory.executeWithOptions({ summary: `Reserve ${order.items.length} SKU(s)` }, [
        { orderId: order.orderId, items: order.items },
      ]),
    );
    doc.reservationId = reservation.reservationId;
    const charge = await runStep('CHARGING_PAYMENT', 'Charging the payment gateway', 'refund', () =>
      steps.chargePayment.executeWithOptions({ summary: `Charge ${order.total} ${order.currency}` }, [
        { orderId: order.orderId, amount: order.total, currency: order.currency, paymentToken: order.paymentToken },
      ]),
    );
    doc.chargeId = charge.chargeId;
    await runStep('NOTIFYING', 'Sending the confirmation', undefined, () =>
      steps.sendNotification.executeWithOptions({ summary: 'Send the confirmation' }, [
        {
          orderId: order.orderId,
          kind: 'confirmation',
          customerId: order.customerId,
          email: order.email,
          total: order.total,
          currency: order.currency,
          traceId: order.traceId,
        },
      ]),
    );
    if (cancelRequest) throw new CancelRequested();
    return 'COMPLETED';
  }

  let outcome: Outcome | undefined;
  try {
    const result = await runForward();
    settled = true;
    if (result === 'REJECTED') {
      doc.failure = { type: 'ApprovalTimedOut', message: `not approved within ${settings.approvalTimeoutMs} ms` };
      outcome = { status: 'REJECTED', notice: 'rejection' };
    }
  } catch (error) {
    if (error instanceof CancelRequested || isCancellation(error)) {
      // A cancel signal, or the workflow itself cancelled by an operator (`temporal workflow cancel`).
      doc.cancellation = cancelRequest ?? { reason: 'workflow cancellation requested' };
      outcome = { status: 'CANCELLED', notice: 'cancellation' };
    } else {
      doc.failure = describeFailure(error, doc.status);
      outcome = { status: 'COMPENSATED', notice: 'failure' };
    }
    settled = true;
  }
  if (outcome) {
    const decided = outcome;
    await CancellationScope.nonCancellable(() => compensate(decided));
  } else {
    await enter('COMPLETED', 'Order completed');
  }
  return doc;
}

/** The business reason of a step failure: the innermost ApplicationFailure's type and message. */
function describeFailure(error: unknown, status: OrderStatus): { type: string; message: string; step: string } {
  let current: unknown = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  const failure = current as { type?: string; message?: string } | undefined;
  return { type: failure?.type ?? 'Error', message: failure?.message ?? String(error), step: status };
}
