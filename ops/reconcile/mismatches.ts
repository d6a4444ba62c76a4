// Reconciliation, step 2: compare what the systems said (evidence.ts) and list every mismatch,
// with the order it concerns and what an operator does about it. Pure: no I/O, so the rules can be
// read in one place.
import { auditEventTypeFor } from '../../domain/events.js';
import { TERMINAL_STATUSES, orderWorkflowId, type OrderStatus } from '../../workflows/contract.js';
import type { Evidence, GatewayCharge, SagaEvidence } from './evidence.js';

/** Every kind of mismatch, and what to do about one. */
export const MISMATCH_KINDS = {
  'charged-but-not-completed':
    'refund the charge at the payment gateway (reference = order id), then find in the saga history why its refund did not take effect',
  'completed-without-charge':
    'the order was confirmed but the gateway holds no (or not the full) payment: charge the customer by hand or cancel the order with them',
  overcharged: 'the gateway holds more than the order total: refund the difference to the customer',
  'charged-more-than-once': 'refund every charge of the reference but the one named in the saga status (chargeId)',
  'charge-without-order': 'the gateway holds a charge for an order with no saga: refund it',
  'completed-without-reservation':
    'the order was confirmed but holds no stock: reserve or ship by hand, or cancel it with the customer',
  'reserved-but-not-completed':
    'the order ended without shipping but still holds its stock: `npm run inventory -- release <order id>`, then find in the saga history why its release did not take effect',
  'reservation-without-order': 'stock is reserved for an order with no saga: `npm run inventory -- release <order id>`',
  'audit-differs':
    "AUDIT does not hold the saga's state changes once each, in order: compare with the saga history (temporal workflow show) and tell the consumers of AUDIT",
  'audit-doubled': 'an audit event id is stored more than once: consumers of AUDIT must skip the repeat by its id',
  'compensation-failed':
    'the saga waits for an operator: docs/runbook.md "Retry or resolve a COMPENSATION_FAILED saga"',
  'saga-ended-abnormally':
    'the saga was terminated, timed out or failed without finishing: check the order by hand against the gateway and the stock',
  'accepted-without-saga':
    'the ingress accepted the order but no saga started: check the starter (consumer backlog, logs) and ORDERS_DLQ',
  'dead-lettered':
    'the event is on ORDERS_DLQ: `npm run dlq -- list`, then replay or delete it (docs/runbook.md "Dead-lettered events")',
} as const;

export type MismatchKind = keyof typeof MISMATCH_KINDS;

export interface Mismatch {
  kind: MismatchKind;
  /** The order (or, for a doubled audit id, the event id's order); absent for a stream-wide finding. */
  orderId?: string;
  /** What was found, with the figures. */
  detail: string;
  /** What to do (MISMATCH_KINDS[kind]). */
  action: string;
}

export interface Reconciliation {
  window: { from: string; until: string };
  /**
   * What is newer than the window's end and so was not checked (it may still be settling): charges
   * and reservations of orders with no saga in the window, orders accepted and saga runs started
   * after it. `readAt`: when the evidence was read, the end of a window that would include them.
   */
  leftOut: { readAt: string; charges: number; reservations: number; accepted: number; sagas: number };
  /** Sagas started in the window, by the status they are in. */
  sagas: Record<string, number>;
  /** Sagas still running (not yet ended, and not waiting for an operator). */
  inFlight: number;
  /** What was read; `notYetIndexed`: sagas Temporal holds that its search index did not list yet (checked all the same). */
  counted: {
    charges: number;
    reservations: number;
    auditEvents: number;
    accepted: number;
    deadLetters: number;
    notYetIndexed: number;
  };
  mismatches: Mismatch[];
}

const mismatch = (kind: MismatchKind, orderId: string | undefined, detail: string): Mismatch => ({
  kind,
  ...(orderId !== undefined && { orderId }),
  detail,
  action: MISMATCH_KINDS[kind],
});

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

/** Compares the evidence of a window. */
export function findMismatches(evidence: Evidence): Reconciliation {
  const found: Mismatch[] = [];
  const chargesOf = groupBy(evidence.charges, (c) => c.reference);
  const reservationOf = new Map(evidence.reservations.map((r) => [r.orderId, r]));
  const auditOf = groupBy(evidence.audit, (a) => a.orderId);
  const sagas: Record<string, number> = {};
  let inFlight = 0;

  for (const saga of evidence.sagas.values()) {
    // Its final status; for a saga that ended without one, how it ended (TERMINATED, ...).
    const status =
      saga.document?.status ?? (saga.execution === 'RUNNING' ? (saga.status ?? 'UNKNOWN') : saga.execution);
    sagas[status] = (sagas[status] ?? 0) + 1;
    const charges = chargesOf.get(saga.orderId) ?? [];
    const chargedTwice = charges.filter((c) => !c.refunded).length > 1;
    if (chargedTwice)
      found.push(mismatch('charged-more-than-once', saga.orderId, `${charges.length} charges: ${ids(charges)}`));
    if (saga.execution === 'RUNNING') {
      if (status === 'COMPENSATION_FAILED')
        found.push(mismatch('compensation-failed', saga.orderId, `saga ${saga.workflowId} is in COMPENSATION_FAILED`));
      else inFlight += 1;
      continue;
    }
    if (!saga.document || !TERMINAL_STATUSES.includes(saga.document.status)) {
      found.push(
        mismatch(
          'saga-ended-abnormally',
          saga.orderId,
          `saga ${saga.workflowId} is ${saga.execution} (last status ${saga.status ?? 'unknown'})`,
        ),
      );
      continue;
    }
    if (!chargedTwice) found.push(...moneyOf(saga, saga.document.status, saga.document.total, charges));
    found.push(...stockOf(saga.orderId, saga.document.status, reservationOf.get(saga.orderId)?.status));
    found.push(...auditOfSaga(saga, auditOf.get(saga.orderId) ?? []));
  }

  // What the gateway, the inventory and ORDERS know of that has no saga at all, reported by the
  // window in which it was made (a later one would report it again).
  const noSaga = (orderId: string) => !evidence.sagas.has(orderId) && evidence.sagaExists.get(orderId) === false;
  const inWindow = (time: string) => Date.parse(time) < evidence.window.until.getTime();
  for (const [reference, charges] of chargesOf)
    if (noSaga(reference) && charges.some((c) => !c.refunded && inWindow(c.createdAt)))
      found.push(
        mismatch('charge-without-order', reference, `charges ${ids(charges)}, no saga ${orderWorkflowId(reference)}`),
      );
  for (const reservation of evidence.reservations)
    if (noSaga(reservation.orderId) && reservation.status === 'RESERVED' && inWindow(reservation.createdAt))
      found.push(
        mismatch('reservation-without-order', reservation.orderId, `reserved at ${reservation.createdAt}, no saga`),
      );
  for (const { orderId, at } of evidence.accepted)
    if (noSaga(orderId))
      found.push(
        evidence.deadLettered.has(orderId)
          ? mismatch('dead-lettered', orderId, `accepted at ${at}, its event is on ORDERS_DLQ`)
          : mismatch('accepted-without-saga', orderId, `accepted at ${at}, no saga ${orderWorkflowId(orderId)}`),
      );
  const listed = new Set(found.filter((m) => m.kind === 'dead-lettered').map((m) => m.orderId));
  const unlisted = evidence.deadLetterTotal - listed.size;
  if (unlisted > 0)
    found.push(
      mismatch('dead-lettered', undefined, `ORDERS_DLQ holds ${unlisted} event(s) of no order in this window`),
    );

  // An audit id twice anywhere in the window (the stream's duplicate window normally prevents it).
  for (const [id, records] of groupBy(evidence.audit, (a) => a.id))
    if (records.length > 1)
      found.push(mismatch('audit-doubled', records[0]!.orderId, `audit id ${id} stored ${records.length} times`));

  // What the window's end left out: the strays above are reported by a later window.
  const afterWindow = (time: string, orderId: string) => !inWindow(time) && !evidence.sagas.has(orderId);
  return {
    window: { from: evidence.window.from.toISOString(), until: evidence.window.until.toISOString() },
    leftOut: {
      readAt: evidence.readAt.toISOString(),
      charges: evidence.charges.filter((c) => afterWindow(c.createdAt, c.reference)).length,
      reservations: evidence.reservations.filter((r) => afterWindow(r.createdAt, r.orderId)).length,
      accepted: evidence.acceptedAfter,
      sagas: evidence.sagasAfter,
    },
    sagas,
    inFlight,
    counted: {
      charges: evidence.charges.length,
      reservations: evidence.reservations.length,
      auditEvents: evidence.audit.length,
      accepted: evidence.accepted.length,
      deadLetters: evidence.deadLetterTotal,
      notYetIndexed: evidence.notYetIndexed,
    },
    mismatches: found,
  };
}

const ids = (charges: GatewayCharge[]) =>
  charges.map((c) => `${c.id} ${c.amount} ${c.currency}${c.refunded ? ' (refunded)' : ''}`).join(', ');

/** A completed order has exactly its total captured; any other end, nothing. */
function moneyOf(saga: SagaEvidence, status: OrderStatus, total: number, charges: GatewayCharge[]): Mismatch[] {
  const captured = charges.filter((c) => !c.refunded).reduce((sum, c) => sum + c.amount, 0);
  if (status === 'COMPLETED' && captured < total)
    return [mismatch('completed-without-charge', saga.orderId, `COMPLETED for ${total}, captured ${captured}`)];
  if (status === 'COMPLETED' && captured > total)
    return [mismatch('overcharged', saga.orderId, `COMPLETED for ${total}, captured ${captured}: ${ids(charges)}`)];
  if (status !== 'COMPLETED' && captured > 0)
    return [mismatch('charged-but-not-completed', saga.orderId, `${status}, captured ${captured}: ${ids(charges)}`)];
  return [];
}

/** A completed order holds its reservation; any other end holds none. */
function stockOf(orderId: string, status: OrderStatus, reservation: 'RESERVED' | 'RELEASED' | undefined): Mismatch[] {
  if (status === 'COMPLETED' && reservation !== 'RESERVED')
    return [mismatch('completed-without-reservation', orderId, `COMPLETED, reservation ${reservation ?? 'none'}`)];
  if (status !== 'COMPLETED' && reservation === 'RESERVED')
    return [mismatch('reserved-but-not-completed', orderId, `${status}, its stock is still reserved`)];
  return [];
}

/** The run's status events on AUDIT are, in order, the statuses its history lived through. */
function auditOfSaga(saga: SagaEvidence, records: { id: string; type: string; status?: OrderStatus }[]): Mismatch[] {
  const ofRun = records.filter((r) => r.id.startsWith(`${saga.workflowId}:${saga.runId}:`));
  const audited = ofRun.filter((r) => r.status && r.type === auditEventTypeFor(r.status)).map((r) => r.status);
  const lived = saga.document!.history.map((h) => h.status);
  if (audited.join() === lived.join()) return [];
  return [mismatch('audit-differs', saga.orderId, `audited [${audited.join(', ')}], lived [${lived.join(', ')}]`)];
}
