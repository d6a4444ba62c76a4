// orderSaga: [approval?] → reserve inventory → charge payment → send confirmation.
// On a failure or a cancel, the compensations registered so far run newest-first in a
// non-cancellable scope, then a notice goes to the customer. A compensation that keeps
// failing parks the saga in COMPENSATION_FAILED until an operator signals; one that meets an
// open payment circuit waits it out without spending its attempts. Once a cancel was accepted
// the saga ends CANCELLED, whatever the step running then does.
// Every state change is audited exactly once: message id = workflowId:runId:sequence.
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  metricMeter,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import type { OrderActivities } from '../activities/index.js';
import {
  approveOrderSignal,
  approveOrderUpdate,
  auditEventId,
  CANCELLABLE_STATUSES,
  cancelOrderSignal,
  cancelOrderUpdate,
  getStatusQuery,
  CustomerIdKey,
  OrderStatusKey,
  OrderTotalKey,
  resolveManuallySignal,
  retryCompensationSignal,
  type ApproveOrderInput,
  type CancelOrderInput,
  type DecisionAccepted,
  type OrderSagaInput,
  type OrderStatus,
  type OrderStatusDocument,
} from './contract.js';
import {
  auditEventTypeFor,
  COMPENSATION_EVENT_TYPES,
  type CompensationStep,
  type NotificationKind,
} from '../domain/events.js';
import { BusinessFailure, FailureType } from '../domain/failures.js';
import { toMajorUnits } from '../domain/money.js';

/** Audit publishes are short; a local activity keeps them off the task queue. Retried until NATS takes them. */
const AUDIT_TIMEOUT = '10 seconds';

/** Longest wait for an open payment circuit before the compensation tries again. */
const MAX_CIRCUIT_WAIT_MS = 60_000;

/** Raised inside the saga when a cancel was requested between steps. */
class CancelRequested extends Error {
  constructor() {
    super('cancel requested');
    this.name = 'CancelRequested';
  }
}

type Outcome = { status: 'CANCELLED' | 'COMPENSATED' | 'REJECTED'; notice: NotificationKind };

export async function orderSaga({ order, settings }: OrderSagaInput): Promise<OrderStatusDocument> {
  const { workflowId, runId } = workflowInfo();
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
  // An open circuit ends a compensation attempt at once, so the saga can wait it out (below)
  // instead of spending the compensation's attempts on a gateway it knows is down. Attempts that
  // really failed count across those waits: `attemptsLeft` is what remains of the budget.
  const compensationsWith = (attemptsLeft: number) =>
    proxyActivities<OrderActivities>({
      startToCloseTimeout: settings.activityTimeoutMs,
      retry: {
        ...retry(attemptsLeft),
        nonRetryableErrorTypes: [...Object.values(BusinessFailure), FailureType.circuitOpen],
      },
    });
  const circuitWaits = metricMeter.createCounter(
    'saga_compensation_circuit_waits',
    'waits',
    'Compensations that waited for an open payment circuit instead of spending an attempt',
  );
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

  /** Why a cancel no longer applies, or undefined when it does (a repeated cancel still applies). */
  const cancelRefusal = (): string | undefined =>
    cancelRequest || (!settled && CANCELLABLE_STATUSES.includes(doc.status))
      ? undefined
      : `order is ${doc.status}; only an order still in progress can be cancelled`;
  const approveRefusal = (): string | undefined =>
    doc.status === 'AWAITING_APPROVAL' && approvedBy === undefined && !cancelRequest
      ? undefined
      : `order is ${doc.status}; only an order in AWAITING_APPROVAL can be approved, once`;
  const refuse = (reason: string) =>
    ApplicationFailure.create({ type: FailureType.updateRefused, message: reason, details: [{ status: doc.status }] });
  const acceptCancel = (input: CancelOrderInput | undefined) => {
    if (cancelRequest) return;
    cancelRequest = { reason: input?.reason?.trim() || 'no reason given' };
    runningStep?.cancel();
  };
  const acceptApprove = (input: ApproveOrderInput | undefined) => {
    approvedBy = input?.approvedBy?.trim() || 'unknown';
  };

  /**
   * A decision operators and customers take, by signal (for `temporal` and `tctl`: fire-and-forget,
   * one that no longer applies is logged and dropped) or by update of the same name (for the HTTP
   * routes: the validator refuses what no longer applies, before anything changes).
   */
  function handleDecision<Input>(
    signal: SignalDefinition<[Input?]>,
    update: UpdateDefinition<DecisionAccepted, [Input]>,
    refusal: () => string | undefined,
    accept: (input: Input | undefined) => void,
  ): void {
    setHandler(signal, (input) => {
      const reason = refusal();
      if (reason) log.warn(`${signal.name} ignored: ${reason}`, { status: doc.status });
      else accept(input);
    });
    setHandler(
      update,
      (input) => {
        accept(input);
        return { accepted: true, status: doc.status };
      },
      {
        validator: (_input: Input) => {
          const reason = refusal();
          if (reason) throw refuse(reason);
        },
      },
    );
  }

  setHandler(getStatusQuery, () => doc);
  handleDecision(cancelOrderSignal, cancelOrderUpdate, cancelRefusal, acceptCancel);
  handleDecision(approveOrderSignal, approveOrderUpdate, approveRefusal, acceptApprove);
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
      eventId: auditEventId(workflowId, runId, auditSequence),
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
  async function runCompensation(
    step: CompensationStep,
    notice: NotificationKind,
    attemptsLeft: number,
  ): Promise<Record<string, unknown>> {
    const compensations = compensationsWith(attemptsLeft);
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
    // `index` moves on when a compensation is done or resolved by hand; a retry runs the same one again.
    let attemptsSpent = 0; // attempts of the current compensation that really failed, across circuit waits
    for (let index = 0; index < doc.compensations.length;) {
      const record = doc.compensations[index]!;
      try {
        const effect = await runCompensation(
          record.step,
          outcome.notice,
          settings.compensationMaxAttempts - attemptsSpent,
        );
        record.status = 'DONE';
        delete record.error;
        await publishAudit(COMPENSATION_EVENT_TYPES[record.step], {
          step: record.step,
          ...effect,
          ...(record.step === 'notify' && { notice: outcome.notice }),
        });
        index += 1;
        attemptsSpent = 0;
      } catch (error) {
        const circuit = openCircuit(error);
        if (circuit) attemptsSpent += circuit.attempt - 1; // the attempts before the one that met the open circuit
        if (circuit && attemptsSpent < settings.compensationMaxAttempts) {
          record.error = `waiting ${circuit.waitMs} ms for the payment circuit to close`;
          setCurrentDetails(`Compensation "${record.step}" is waiting for the payment circuit to close`);
          circuitWaits.add(1, { step: record.step });
          await sleep(circuit.waitMs);
          continue;
        }
        attemptsSpent = 0; // an operator's retry gets the whole budget again
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
      doc.failure = {
        type: FailureType.approvalTimedOut,
        message: `not approved within ${settings.approvalTimeoutMs} ms`,
      };
      outcome = { status: 'REJECTED', notice: 'rejection' };
    }
  } catch (error) {
    if (cancelRequest || error instanceof CancelRequested || isCancellation(error)) {
      // An accepted cancel decides the outcome, also when the step running then failed on its own;
      // or the workflow itself was cancelled by an operator (`temporal workflow cancel`).
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

/** The innermost cause of a failure: the ApplicationFailure an activity raised. */
function innermost(error: unknown): { type?: string; message?: string; details?: unknown[] } | undefined {
  let current: unknown = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current as { type?: string; message?: string; details?: unknown[] } | undefined;
}

/** The business reason of a step failure: the innermost ApplicationFailure's type and message. */
function describeFailure(error: unknown, status: OrderStatus): { type: string; message: string; step: string } {
  const failure = innermost(error);
  return { type: failure?.type ?? 'Error', message: failure?.message ?? String(error), step: status };
}

/**
 * When `error` says the payment circuit is open: how long to wait, and the number of the attempt
 * that met it (the attempts before it really failed). Undefined for any other failure.
 */
function openCircuit(error: unknown): { waitMs: number; attempt: number } | undefined {
  const failure = innermost(error);
  if (failure?.type !== FailureType.circuitOpen) return undefined;
  const { retryAfterMs, attempt } = (failure.details?.[0] ?? {}) as { retryAfterMs?: unknown; attempt?: unknown };
  return {
    waitMs: typeof retryAfterMs === 'number' && retryAfterMs > 0 ? Math.min(retryAfterMs, MAX_CIRCUIT_WAIT_MS) : 1_000,
    attempt: typeof attempt === 'number' && attempt >= 1 ? attempt : 1,
  };
}
