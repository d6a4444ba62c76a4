// Who may see or change an order, and as whom an order is placed: the rules on their own,
// without HTTP or Temporal (the security tests check them through the real ingress).
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../ingress/callers.js';
import { listableCustomer, mayActOn, orderedAs, requireOperator } from '../../ingress/order-access.js';
import { HttpProblem } from '../../ingress/problems.js';

const customer: Caller = { id: 'c-1', role: 'customer', customerId: 'c-1', via: 'jwt' };
const service: Caller = { id: 'api-key:storefront', role: 'service', via: 'api-key' };
const operator: Caller = { id: 'api-key:ops', role: 'operator', via: 'api-key' };

function refusal(act: () => unknown): { status: number; detail: string } | undefined {
  try {
    act();
    return undefined;
  } catch (error) {
    if (!(error instanceof HttpProblem)) throw error;
    return { status: error.status, detail: error.detail };
  }
}

describe('order access', () => {
  it('when a customer acts on an order, then only its own qualifies; services and operators act on any', () => {
    expect(mayActOn(customer, 'c-1')).toBe(true);
    expect(mayActOn(customer, 'c-2')).toBe(false);
    expect(mayActOn(customer, undefined)).toBe(false);
    expect(mayActOn({ ...customer, customerId: undefined }, undefined)).toBe(false);
    for (const caller of [service, operator]) {
      expect(mayActOn(caller, 'c-2')).toBe(true);
      expect(mayActOn(caller, undefined)).toBe(true);
    }
  });

  it("when a customer places an order, then it is placed as itself; another customer's id is refused 403", () => {
    expect(orderedAs(customer, { items: [] })).toEqual({ items: [], customerId: 'c-1' });
    expect(orderedAs(customer, { customerId: 'c-1' })).toEqual({ customerId: 'c-1' });
    expect(refusal(() => orderedAs(customer, { customerId: 'c-2' }))).toMatchObject({ status: 403 });
    expect(orderedAs(service, { customerId: 'c-2' })).toEqual({ customerId: 'c-2' });
    // A body that is not an object is left for the order's own validation to name.
    expect(orderedAs(customer, [1])).toEqual([1]);
  });

  it("when a customer lists orders, then it lists its own whatever it asks; another's is refused 403", () => {
    expect(listableCustomer(customer, undefined)).toBe('c-1');
    expect(listableCustomer(customer, 'c-1')).toBe('c-1');
    expect(refusal(() => listableCustomer(customer, 'c-2'))).toMatchObject({
      status: 403,
      detail: expect.stringContaining('a customer lists its own orders'),
    });
    // A customer without an id (a token without a subject) lists nothing rather than everything.
    expect(listableCustomer({ ...customer, customerId: undefined }, undefined)).toBe('');
    expect(listableCustomer(service, undefined)).toBeUndefined();
    expect(listableCustomer(operator, 'c-2')).toBe('c-2');
  });

  it("when a non-operator does an operator's act, then it is refused 403 naming the act and the caller's role", () => {
    expect(refusal(() => requireOperator(operator, 'setting stock'))).toBeUndefined();
    expect(refusal(() => requireOperator(service, 'setting stock'))).toEqual({
      status: 403,
      detail: "setting stock is an operator's act; you are authenticated as a service",
    });
    expect(refusal(() => requireOperator(customer, 'reading stock'))?.status).toBe(403);
  });
});
