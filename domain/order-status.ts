// The statuses of an order's saga (public contract): what GET /orders/:id, the getStatus query,
// the OrderStatus search attribute and the audit events say.

/** Every status a saga can report (contract). */
export const ORDER_STATUSES = [
  'RECEIVED',
  'AWAITING_APPROVAL',
  'RESERVING_INVENTORY',
  'CHARGING_PAYMENT',
  'NOTIFYING',
  'COMPLETED',
  'COMPENSATING',
  'COMPENSATED',
  'CANCELLED',
  'REJECTED',
  'COMPENSATION_FAILED',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
