// An order as the business knows it: who buys what, at which price. Amounts are integers in
// the currency's minor units (cents), so no sum is ever rounded.

/** One order line; `unitPrice` is in minor units (cents). */
export interface OrderItem {
  sku: string;
  quantity: number;
  unitPrice: number;
}

/** An accepted order; `total` was computed by the ingress, never by the client. */
export interface Order {
  orderId: string;
  customerId: string;
  items: OrderItem[];
  currency: string;
  total: number;
  paymentToken: string;
  email?: string;
  createdAt: string;
  traceId: string;
}

/** Sum of quantity × unit price, in minor units. */
export function orderTotal(items: readonly { quantity: number; unitPrice: number }[]): number {
  return items.reduce((sum, item) => sum + item.quantity * item.unitPrice, 0);
}
