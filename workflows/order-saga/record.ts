// The saga's record of itself: the status document that queries and the API return, and the
// one way a saga changes status (history, search attribute, Web UI details, audit event).
import { setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SagaActivities } from './activities.js';
import { auditEventTypeFor } from '../../domain/events.js';
import { toMajorUnits } from '../../domain/money.js';
import type { Order } from '../../domain/order.js';
import {
  auditEventId,
  CustomerIdKey,
  OrderStatusKey,
  OrderTotalKey,
  type OrderStatus,
  type OrderStatusDocument,
} from '../contract.js';
import type { StatusChangedData } from '../../lib/event-schemas.js';

export class SagaRecord {
  readonly doc: OrderStatusDocument;
  private auditSequence = 0;

  constructor(
    readonly order: Order,
    approvalRequired: boolean,
    private readonly audit: SagaActivities['audit'],
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

  /** Publishes the saga's next audit event: id `workflowId:runId:n`, so a retried publish is stored once. */
  async publishAudit(type: string, data: Record<string, unknown>): Promise<void> {
    const { workflowId, runId } = workflowInfo();
    this.auditSequence += 1;
    await this.audit.publishAudit({
      eventId: auditEventId(workflowId, runId, this.auditSequence),
      type,
      orderId: this.order.orderId,
      traceId: this.order.traceId,
      data,
    });
  }

  /** Enters `status`: history, the OrderStatus search attribute, the Web UI's details, one audit event. */
  async enter(status: OrderStatus, details: string): Promise<void> {
    const { doc, order } = this;
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
    const data: StatusChangedData = {
      status,
      ...(doc.failure && { failure: doc.failure }),
      ...(doc.cancellation && { cancellation: doc.cancellation }),
      ...(doc.approval.approvedBy && { approvedBy: doc.approval.approvedBy }),
      ...(doc.resolution && { resolution: doc.resolution }),
    };
    await this.publishAudit(auditEventTypeFor(status), data);
  }
}
