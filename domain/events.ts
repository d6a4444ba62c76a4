// The names of the events the product publishes: the order's arrival, its audit trail and
// the notices its customer gets.

/** Type of the event the ingress publishes on orders.created and the starter turns into a saga. */
export const ORDER_CREATED = 'OrderCreated';

/** What a compensation undoes: the charge, the reservation, or (last) telling the customer. */
export type CompensationStep = 'refund' | 'release' | 'notify';

/** The audit event type recorded when a saga enters `status`: Order + PascalCase status. */
export function auditEventTypeFor(status: string): string {
  return `Order${pascalCase(status.toLowerCase().split('_'))}`;
}

/** The audit event type recorded when a compensation has run; its data says what it changed. */
export const COMPENSATION_EVENT_TYPES: Record<CompensationStep, string> = {
  refund: 'RefundCompensated',
  release: 'ReleaseCompensated',
  notify: 'OutcomeNoticeSent',
};

/** The notices a customer gets: one per order, for how it ended. */
export type NotificationKind = 'confirmation' | 'failure' | 'cancellation' | 'rejection';

/** The event type of a notice: Customer + Kind + Notice (CustomerConfirmationNotice). */
export function notificationEventType(kind: NotificationKind): string {
  return `Customer${pascalCase([kind])}Notice`;
}

function pascalCase(words: string[]): string {
  return words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join('');
}
