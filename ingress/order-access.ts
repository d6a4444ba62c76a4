// Who may see or change an order, and as whom an order is placed: rules on a Caller, without
// HTTP or Temporal, so they are tested on their own (test/ingress/order-access.test.ts).
import type { Caller } from './callers.js';
import { HttpProblem } from './problems.js';

/** A customer acts on its own orders only; services and operators on any. */
export function mayActOn(caller: Caller, customerId: string | undefined): boolean {
  return caller.role !== 'customer' || (customerId !== undefined && customerId === caller.customerId);
}

/** 403 unless the caller is an operator; `what` names the act, e.g. "setting stock". */
export function requireOperator(caller: Caller, what: string): void {
  if (caller.role !== 'operator') {
    throw new HttpProblem(403, 'Forbidden', `${what} is an operator's act; you are authenticated as a ${caller.role}`);
  }
}

/**
 * The order body as the caller may send it: a customer orders as itself (the token's subject), so
 * its customerId is filled in, and a different one is refused; services and operators name the customer.
 */
export function orderedAs(caller: Caller, body: unknown): unknown {
  if (caller.role !== 'customer' || typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const { customerId } = body as { customerId?: unknown };
  if (customerId !== undefined && customerId !== caller.customerId) {
    throw new HttpProblem(
      403,
      'Forbidden',
      'a customer orders as itself: your customer id comes from your token; leave customerId out or send your own',
    );
  }
  return { ...body, customerId: caller.customerId };
}

/**
 * The customer whose orders a caller may list: a customer its own, whatever it asked for (asking
 * for another's is refused, as reading another's order is "not found"); a service or an operator
 * the one asked for, or every customer (undefined).
 */
export function listableCustomer(caller: Caller, asked: string | undefined): string | undefined {
  if (caller.role !== 'customer') return asked;
  if (asked !== undefined && asked !== caller.customerId) {
    throw new HttpProblem(
      403,
      'Forbidden',
      'a customer lists its own orders: your customer id comes from your token; leave customerId out or send your own',
    );
  }
  return caller.customerId ?? '';
}
