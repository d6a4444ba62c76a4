// The saga's way forward: [approval] → reserve inventory → charge payment → confirmation. Each
// step registers what undoes it before it runs (a step that times out may still have acted).
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  setCurrentDetails,
} from '@temporalio/workflow';
import type { AuditEventInput, WithAudit } from '../../activities/index.js';
import type { CompensationStep } from '../../domain/events.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import type { OrderStatus } from '../contract.js';
import type { SagaActivities } from './activities.js';
import type { SagaDecisions } from './decisions.js';
import type { SagaRecord } from './record.js';

/** What undoes each forward step, in the order the steps run. */
const UNDO_ORDER: readonly CompensationStep[] = ['release', 'refund'];

export class ForwardSteps {
  /** The compensations registered so far, oldest first. */
  private readonly registered: CompensationStep[] = [];
  /** A step was refused for a business reason (see toUndo). */
  private refused = false;

  constructor(
    private readonly record: SagaRecord,
    private readonly decisions: SagaDecisions,
    private readonly activities: Pick<SagaActivities, 'steps' | 'local' | 'decisionsHold'>,
    private readonly settings: SagaSettings,
  ) {}

  /**
   * What to undo, oldest first: the compensations registered; and, for a saga that did not complete
   * but was on its way forward (no approval to wait for, or one given), each local step's undo,
   * registered or not: an attempt of a workflow task that was lost may have run it (FORWARD_LOCAL
   * in activities.ts), and its retry may have stopped earlier (a cancel seen first, a step failing
   * for good where it had worked). Not after a step was refused for a business reason (out of
   * stock, declined): every attempt meets the same refusal there, so nothing after it ran.
   */
  toUndo(): CompensationStep[] {
    const { record, decisions, registered } = this;
    const onItsWay = !record.doc.approval.required || decisions.approvedBy !== undefined;
    const mayHaveRun = this.activities.local !== undefined && onItsWay && !this.refused;
    return UNDO_ORDER.filter((undo) => registered.includes(undo) || mayHaveRun);
  }

  /** Runs every step; 'REJECTED' when the approval timed out. Throws on a step's failure or a cancel. */
  async run(): Promise<'COMPLETED' | 'REJECTED'> {
    const { record, decisions } = this;
    const { steps, local } = this.activities;
    const { order } = record;
    await record.enter('RECEIVED', 'Order received', { stepFollows: true });
    if (record.doc.approval.required) {
      await record.enter(
        'AWAITING_APPROVAL',
        `Total ${order.total} ${order.currency} is above the approval threshold: waiting for approveOrder or cancelOrder`,
      );
      if (!(await decisions.approval(this.settings.approvalTimeoutMs))) return 'REJECTED';
      record.doc.approval.approvedBy = decisions.approvedBy;
    }
    const reserveInput = { orderId: order.orderId, items: order.items };
    const reserveSummary = { summary: `Reserve ${order.items.length} SKU(s)` };
    // After an approval the reservation is a regular activity (DECISIONS_HOLD in activities.ts).
    const reserveLocally = local && !(record.doc.approval.required && this.activities.decisionsHold);
    const reservation = await this.step('RESERVING_INVENTORY', 'Reserving inventory', 'release', (carry) =>
      reserveLocally
        ? local.reserve.reserveInventory.executeWithOptions(reserveSummary, [reserveInput])
        : steps.reserveInventory.executeWithOptions(reserveSummary, withAudit(reserveInput, carry())),
    );
    record.doc.reservationId = reservation.reservationId;
    const chargeInput = {
      orderId: order.orderId,
      amount: order.total,
      currency: order.currency,
      paymentToken: order.paymentToken,
    };
    const chargeSummary = `Charge ${order.total} ${order.currency}`;
    const charge = await this.step('CHARGING_PAYMENT', 'Charging the payment gateway', 'refund', async (carry) => {
      if (local) {
        try {
          return await local.firstCharge.chargePayment.executeWithOptions(
            { summary: `${chargeSummary} (first attempt)` },
            [chargeInput],
          );
        } catch (error) {
          if (!worthRetrying(error)) throw error;
          setCurrentDetails('Charging the payment gateway: the first attempt failed, retrying');
        }
      }
      return steps.chargePayment.executeWithOptions({ summary: chargeSummary }, withAudit(chargeInput, carry()));
    });
    record.doc.chargeId = charge.chargeId;
    await this.step('NOTIFYING', 'Sending the confirmation', undefined, (carry) =>
      steps.sendNotification.executeWithOptions(
        { summary: 'Send the confirmation' },
        withAudit(
          {
            orderId: order.orderId,
            kind: 'confirmation',
            customerId: order.customerId,
            email: order.email,
            total: order.total,
            currency: order.currency,
            traceId: order.traceId,
          },
          carry(),
        ),
      ),
    );
    decisions.throwIfCancelRequested();
    return 'COMPLETED';
  }

  /**
   * Enters the step's status, registers its undo, and runs it where a cancel can stop its retries.
   * A regular activity carries the audit events still pending (`carry`); whatever it did with
   * them (stored, not stored, failed before or after), they are stored before the saga goes on:
   * repeats are harmless. A local step carries none: they stay pending for the next.
   */
  private async step<T extends WithAudit<object>>(
    status: OrderStatus,
    details: string,
    undo: CompensationStep | undefined,
    work: (carry: () => AuditEventInput[]) => Promise<T>,
  ): Promise<T> {
    const { record, decisions } = this;
    decisions.throwIfCancelRequested();
    await record.enter(status, details, { stepFollows: true });
    decisions.throwIfCancelRequested();
    if (undo) this.registered.push(undo);
    let carried: AuditEventInput[] = [];
    const carry = () => (carried = record.takePendingAudit());
    let result: T;
    try {
      result = await decisions.cancellable(() => work(carry));
    } catch (error) {
      this.refused ||= refusal(error);
      await CancellationScope.nonCancellable(() => record.publish(carried));
      throw error;
    }
    if (result.audited !== true) await record.publish(carried);
    return result;
  }
}

/**
 * Whether a step failed because it was refused for good (out of stock, declined, an invalid
 * request). A regular activity's failure wraps the activity's own; a local activity's may be it.
 */
function refusal(error: unknown): boolean {
  const failure = error instanceof ActivityFailure ? error.cause : error;
  return failure instanceof ApplicationFailure && failure.nonRetryable === true;
}

/** Whether a failed first charge goes on as a regular activity: not when refused or cancelled. */
function worthRetrying(error: unknown): boolean {
  return !isCancellation(error) && !refusal(error);
}

/** A step's arguments: its input, and the audit events it stores first when there are any. */
function withAudit<I>(input: I, audit: AuditEventInput[]): [I, AuditEventInput[]?] {
  return audit.length > 0 ? [input, audit] : [input];
}
