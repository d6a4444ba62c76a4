// The saga's way forward: [approval] → reserve inventory → charge payment → confirmation. Each
// step registers what undoes it before it runs (a step that times out may still have acted).
import type { CompensationStep } from '../../domain/events.js';
import type { SagaSettings } from '../../domain/saga-settings.js';
import type { OrderStatus } from '../contract.js';
import type { SagaActivities } from './activities.js';
import type { SagaDecisions } from './decisions.js';
import type { SagaRecord } from './record.js';

export class ForwardSteps {
  /** The compensations registered so far, oldest first. */
  readonly registered: CompensationStep[] = [];

  constructor(
    private readonly record: SagaRecord,
    private readonly decisions: SagaDecisions,
    private readonly steps: SagaActivities['steps'],
    private readonly settings: SagaSettings,
  ) {}

  /** Runs every step; 'REJECTED' when the approval timed out. Throws on a step's failure or a cancel. */
  async run(): Promise<'COMPLETED' | 'REJECTED'> {
    const { record, decisions, steps } = this;
    const { order } = record;
    await record.enter('RECEIVED', 'Order received');
    if (record.doc.approval.required) {
      await record.enter(
        'AWAITING_APPROVAL',
        `Total ${order.total} ${order.currency} is above the approval threshold: waiting for approveOrder or cancelOrder`,
      );
      if (!(await decisions.approval(this.settings.approvalTimeoutMs))) return 'REJECTED';
      record.doc.approval.approvedBy = decisions.approvedBy;
    }
    const reservation = await this.step('RESERVING_INVENTORY', 'Reserving inventory', 'release', () =>
      steps.reserveInventory.executeWithOptions({ summary: `Reserve ${order.items.length} SKU(s)` }, [
        { orderId: order.orderId, items: order.items },
      ]),
    );
    record.doc.reservationId = reservation.reservationId;
    const charge = await this.step('CHARGING_PAYMENT', 'Charging the payment gateway', 'refund', () =>
      steps.chargePayment.executeWithOptions({ summary: `Charge ${order.total} ${order.currency}` }, [
        { orderId: order.orderId, amount: order.total, currency: order.currency, paymentToken: order.paymentToken },
      ]),
    );
    record.doc.chargeId = charge.chargeId;
    await this.step('NOTIFYING', 'Sending the confirmation', undefined, () =>
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
    decisions.throwIfCancelRequested();
    return 'COMPLETED';
  }

  /** Enters the step's status, registers its undo, and runs it where a cancel can stop its retries. */
  private async step<T>(
    status: OrderStatus,
    details: string,
    undo: CompensationStep | undefined,
    work: () => Promise<T>,
  ): Promise<T> {
    this.decisions.throwIfCancelRequested();
    await this.record.enter(status, details);
    this.decisions.throwIfCancelRequested();
    if (undo) this.registered.push(undo);
    return this.decisions.cancellable(work);
  }
}
