// The saga's record of itself: the status document that queries and the API return, and the
// one way a saga changes status (history, search attribute, Web UI details, audit event).
import { CancellationScope, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SagaActivities } from './activities.js';
import { auditEventTypeFor } from '../../domain/events.js';
import { toMajorUnits } from '../../domain/money.js';
import type { Order } from '../../domain/order.js';
import {
  auditEventId,
  CustomerIdKey,
  OrderStatusKey,
  OrderUpdatedAtKey,
  OrderTotalKey,
  type OrderStatus,
  type OrderStatusDocument,
} from '../contract.js';
import type { StatusChangedData } from '../../lib/event-schemas.js';
import type { AuditEventInput } from '../../activities/index.js';

export class SagaRecord {
  readonly doc: OrderStatusDocument;
  private auditSequence = 0;
  /** Audit events of changes already made, not yet handed to an activity, oldest first. */
  private pendingAudit: AuditEventInput[] = [];

  constructor(
    readonly order: Order,
    approvalRequired: boolean,
    private readonly audit: SagaActivities['audit'],
    /** Since patch audit-with-steps: audit events in batches, unchanged search attributes not upserted. */
    private readonly currentShape = false,
    /** Since patch final-audit-local: the final status's audit event stored by this local activity. */
    private readonly finalAudit?: SagaActivities['finalAudit'],
  ) {
    this.doc = {
      orderId: order.orderId,
      workflowId: workflowInfo().workflowId,
      status: 'RECEIVED',
      customerId: order.customerId,
      currency: order.currency,
      total: order.total,
      items: order.items,
      approval: { required: approvalRequired },
      compensations: [],
      history: [],
      updatedAt: new Date().toISOString(),
    };
  }

  get status(): OrderStatus {
    return this.doc.status;
  }

  /** Publishes the saga's next audit event (after any still pending): id `workflowId:runId:n`, so a retried publish is stored once. */
  async publishAudit(type: string, data: Record<string, unknown>): Promise<void> {
    this.queueAudit(type, data);
    await this.publish(this.takePendingAudit());
  }

  /** The audit events not yet handed to an activity, for the step about to run (which then owns them). */
  takePendingAudit(): AuditEventInput[] {
    const events = this.pendingAudit;
    this.pendingAudit = [];
    return events;
  }

  /** Stores `events` in order: one activity for the batch, or one per event for older sagas. */
  async publish(events: AuditEventInput[]): Promise<void> {
    if (events.length === 0) return;
    if (this.currentShape) return this.audit.publishAuditEvents(events);
    for (const event of events) await this.audit.publishAudit(event);
  }

  private queueAudit(type: string, data: Record<string, unknown>): void {
    const { workflowId, runId } = workflowInfo();
    this.auditSequence += 1;
    this.pendingAudit.push({
      eventId: auditEventId(workflowId, runId, this.auditSequence),
      type,
      orderId: this.order.orderId,
      traceId: this.order.traceId,
      data,
    });
  }

  /**
   * Enters `status`: history, the OrderStatus search attribute, the Web UI's details, one audit
   * event, stored before this returns; or, when `stepFollows` and the saga has the current shape,
   * left pending for that step to carry (takePendingAudit). `final`: the saga's last status, its
   * outcome settled; stored by a local activity where the saga's shape has one (see activities.ts).
   */
  async enter(status: OrderStatus, details: string, { stepFollows = false, final = false } = {}): Promise<void> {
    const { doc, order } = this;
    const at = new Date().toISOString();
    doc.status = status;
    doc.updatedAt = at;
    doc.history.push({ status, at });
    const attributes = [
      { key: OrderStatusKey, value: status },
      // Set by the starter too; repeated so a saga started any other way is found by customer and total.
      ...(status === 'RECEIVED'
        ? [
            { key: CustomerIdKey, value: order.customerId },
            { key: OrderTotalKey, value: toMajorUnits(order.total, order.currency) },
          ]
        : []),
    ];
    // Newer sagas skip values the saga already holds (the starter's, at start): each upsert is a
    // history event and a visibility write. Older sagas' histories upsert them all.
    const current = workflowInfo().typedSearchAttributes;
    const changed = this.currentShape
      ? attributes.filter(({ key, value }) => (current.get(key as never) as unknown) !== value)
      : attributes;
    // The time of the change rides on an upsert made anyway, never on one of its own: a saga's
    // upserts stay where its history has them, in sagas started before OrderUpdatedAt existed too.
    if (changed.length > 0) upsertSearchAttributes([...changed, { key: OrderUpdatedAtKey, value: new Date(at) }]);
    setCurrentDetails(details);
    const data: StatusChangedData = {
      status,
      ...(doc.failure && { failure: doc.failure }),
      ...(doc.cancellation && { cancellation: doc.cancellation }),
      ...(doc.approval.approvedBy && { approvedBy: doc.approval.approvedBy }),
      ...(doc.resolution && { resolution: doc.resolution }),
    };
    this.queueAudit(auditEventTypeFor(status), data);
    if (final && this.finalAudit) {
      // Not cancellable: the outcome stands, and so must its audit event (a workflow cancel
      // arriving now would otherwise drop it).
      const { finalAudit } = this;
      const events = this.takePendingAudit();
      await CancellationScope.nonCancellable(() => finalAudit.publishAuditEvents(events));
    } else if (!(stepFollows && this.currentShape)) await this.publish(this.takePendingAudit());
  }
}
