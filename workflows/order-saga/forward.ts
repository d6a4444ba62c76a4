// The saga's way forward: [approval] → reserve inventory → charge payment → confirmation. Each
// step registers what undoes it before it runs (a step that times out may still have acted).
import { CancellationScope } from '@temporalio/workflow';
import type { AuditEventInput, WithAudit } from '../../activities/index.js';
import type { CompensationStep } from '../../domain/events.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import type { OrderStatus } from '../contract.js';
import type { SagaActivities } from './activities.js';
import type { SagaDecisions } from './decisions.js';
import type { SagaRecord } from './record.js';

export class ForwardSteps {
  /** The compensations registered so far, oldest first. */
  private readonly registered: CompensationStep[] = [];

  constructor(
    private readonly record: SagaRecord,
    private readonly decisions: SagaDecisions,
    private readonly activities: Pick<SagaActivities, 'steps' | 'localReserve'>,
    private readonly settings: SagaSettings,
  ) {}

  /**
   * What to undo, oldest first: the compensations registered, and the release wherever the
   * reservation is a local activity and may have run in an attempt of a workflow task that was
   * not committed (see RESERVE_LOCAL in activities.ts): once the saga was on its way to it, with
   * no approval to wait for or one given, whatever stopped it before this attempt registered it.
   */
  toUndo(): CompensationStep[] {
    const { record, decisions, registered } = this;
    const mayHaveReserved =
      this.activities.localReserve !== undefined &&
      !registered.includes('release') &&
      (!record.doc.approval.required || decisions.approvedBy !== undefined);
    return mayHaveReserved ? ['release', ...registered] : [...registered];
  }

  /** Runs every step; 'REJECTED' when the approval timed out. Throws on a step's failure or a cancel. */
  async run(): Promise<'COMPLETED' | 'REJECTED'> {
    const { record, decisions } = this;
    const { steps, localReserve } = this.activities;
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
    const reservation = await this.step(
      'RESERVING_INVENTORY',
      'Reserving inventory',
      'release',
      (audit) =>
        (localReserve ?? steps).reserveInventory.executeWithOptions(
          { summary: `Reserve ${order.items.length} SKU(s)` },
          withAudit({ orderId: order.orderId, items: order.items }, audit),
        ),
      { local: localReserve !== undefined },
    );
    record.doc.reservationId = reservation.reservationId;
    const charge = await this.step('CHARGING_PAYMENT', 'Charging the payment gateway', 'refund', (audit) =>
      steps.chargePayment.executeWithOptions(
        { summary: `Charge ${order.total} ${order.currency}` },
        withAudit(
          { orderId: order.orderId, amount: order.total, currency: order.currency, paymentToken: order.paymentToken },
          audit,
        ),
      ),
    );
    record.doc.chargeId = charge.chargeId;
    await this.step('NOTIFYING', 'Sending the confirmation', undefined, (audit) =>
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
          audit,
        ),
      ),
    );
    decisions.throwIfCancelRequested();
    return 'COMPLETED';
  }

  /**
   * Enters the step's status, registers its undo, and runs it where a cancel can stop its retries,
   * handing it the audit events still pending. Whatever the step did with them (stored, not
   * stored, failed before or after), they are stored before the saga goes on: repeats are harmless.
   * A `local` step runs inside the workflow task and carries none: they stay pending for the next.
   */
  private async step<T extends WithAudit<object>>(
    status: OrderStatus,
    details: string,
    undo: CompensationStep | undefined,
    work: (audit: AuditEventInput[]) => Promise<T>,
    { local = false } = {},
  ): Promise<T> {
    const { record, decisions } = this;
    decisions.throwIfCancelRequested();
    await record.enter(status, details, { stepFollows: true });
    decisions.throwIfCancelRequested();
    if (undo) this.registered.push(undo);
    const audit = local ? [] : record.takePendingAudit();
    let result: T;
    try {
      result = await decisions.cancellable(() => work(audit));
    } catch (error) {
      await CancellationScope.nonCancellable(() => record.publish(audit));
      throw error;
    }
    if (result.audited !== true) await record.publish(audit);
    return result;
  }
}

/** A step's arguments: its input, and the audit events it stores first when there are any. */
function withAudit<I>(input: I, audit: AuditEventInput[]): [I, AuditEventInput[]?] {
  return audit.length > 0 ? [input, audit] : [input];
}
