// The one checker of the chaos suite: after the faults, with everything running again, does
// every placed order stand where the product promises? What only the test knows (what each client
// was told, the stock it put in) is checked here; the rest by the product's own reconciliation
// (`npm run reconcile`: gateway, reservations, sagas, AUDIT, ORDERS, dead letters). Returns every
// violation in words, with the order it concerns.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Client } from '@temporalio/client';
import { connectNats } from '../../lib/nats.js';
import { BusinessFailure } from '../../domain/failures.js';
import {
  ORDER_SAGA_WORKFLOW_TYPE,
  TERMINAL_STATUSES,
  type OrderStatus,
  type OrderStatusDocument,
} from '../../workflows/contract.js';
import type { InventoryStore } from '../../activities/inventory/inventory-store.js';
import { readStream } from '../support/streams.js';
import type { PaymentSandbox } from '../support/payment-sandbox.js';
import type { PlacedOrder } from './traffic.js';
import { gatherEvidence } from '../../ops/reconcile/evidence.js';
import { findMismatches } from '../../ops/reconcile/mismatches.js';

export interface CheckedSystem {
  apis: string[];
  natsUrls: string[];
  gateway: PaymentSandbox;
  inventory: InventoryStore;
  temporalClient: Client;
  sku: string;
  stock: number;
  /** When the system was started: the window the reconciliation reads. */
  startedAt: Date;
}

export interface Verdict {
  /** Orders per terminal status (and per status they were stuck in, if any). */
  statuses: Record<string, number>;
  /** Plain orders compensated because the gateway could not be reached (an allowed end during an outage). */
  compensatedByOutage: number;
  violations: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function documentOf(api: string, orderId: string): Promise<OrderStatusDocument | undefined> {
  const response = await fetch(`${api}/orders/${orderId}`).catch(() => undefined);
  return response?.ok ? ((await response.json()) as OrderStatusDocument) : undefined;
}

/** Polls until every order's saga is terminal or `timeoutMs` passed; returns the last documents. */
async function settle(api: string, orders: PlacedOrder[], timeoutMs: number) {
  const documents = new Map<string, OrderStatusDocument>();
  const deadline = Date.now() + timeoutMs;
  let open = orders;
  while (open.length > 0 && Date.now() < deadline) {
    for (const order of open) {
      const document = await documentOf(api, order.orderId);
      if (document) documents.set(order.orderId, document);
    }
    // A document without history is what Temporal's visibility recorded while the saga could not be
    // queried (source "recorded"): wait for the saga's own.
    const settled = (d: OrderStatusDocument | undefined) =>
      d?.history !== undefined && TERMINAL_STATUSES.includes(d.status);
    open = open.filter((o) => !settled(documents.get(o.orderId)));
    if (open.length > 0) await sleep(1_000);
  }
  return documents;
}

/** The ends an order of this kind may reach, given what its client was told. */
function allowedEnds(order: PlacedOrder): OrderStatus[] {
  if (order.kind === 'declined') return ['COMPENSATED'];
  if (order.decision === 'accepted' && order.kind === 'cancelled') return ['CANCELLED'];
  if (order.decision === 'unknown') return ['COMPLETED', 'COMPENSATED', 'CANCELLED'];
  return ['COMPLETED', 'COMPENSATED'];
}

/**
 * Waits until the search index lists at least `ended` closed sagas started since `since` and at
 * most `open` running; resolves how long that took, or undefined after `timeoutMs`.
 */
async function untilIndexCaughtUp(
  temporal: Client,
  since: Date,
  ended: number,
  open: number,
  timeoutMs = 120_000,
): Promise<number | undefined> {
  const began = Date.now();
  const ofTier = `WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}' AND StartTime >= '${since.toISOString()}'`;
  while (Date.now() - began < timeoutMs) {
    const [closed, running] = await Promise.all([
      temporal.workflow.count(`${ofTier} AND ExecutionStatus != 'Running'`),
      temporal.workflow.count(`${ofTier} AND ExecutionStatus = 'Running'`),
    ]).catch(() => [{ count: -1 }, { count: -1 }]);
    if (closed.count >= ended && running.count >= 0 && running.count <= open) return Date.now() - began;
    await sleep(250);
  }
  return undefined;
}

export async function checkInvariants(
  system: CheckedSystem,
  orders: PlacedOrder[],
  { settleTimeoutMs = 120_000, progress = (_what: string): void => undefined } = {},
): Promise<Verdict> {
  const violations: string[] = [];
  const statuses: Record<string, number> = {};
  let compensatedByOutage = 0;
  const documents = await settle(system.apis[0]!, orders, settleTimeoutMs);
  progress('every order read through the API');

  // 1. Every placed order ends, and ends where its client's story says it must.
  for (const order of orders) {
    const document = documents.get(order.orderId);
    const status = document?.status ?? 'NOT_FOUND';
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (!document?.history || !TERMINAL_STATUSES.includes(document.status)) {
      violations.push(
        `${order.orderId} (${order.kind}): not terminal, ${status}${document?.history ? '' : ' (no saga answer)'}`,
      );
      continue;
    }
    if (!allowedEnds(order).includes(document.status))
      violations.push(
        `${order.orderId} (${order.kind}, decision ${order.decision ?? '-'}): ended ${document.status}` +
          (document.failure ? ` (${document.failure.type}: ${document.failure.message})` : ''),
      );
    if (document.status === 'COMPENSATED' && order.kind !== 'declined') {
      // Only the gateway's unavailability may compensate a good order: the payment step, never a decline.
      const byOutage =
        document.failure?.step === 'CHARGING_PAYMENT' && document.failure.type !== BusinessFailure.paymentDeclined;
      if (byOutage) compensatedByOutage += 1;
      else violations.push(`${order.orderId} (${order.kind}): compensated by ${JSON.stringify(document.failure)}`);
    }
  }

  // 3. Stock: nothing created or lost; exactly the completed orders hold units.
  const [level] = await system.inventory.levels(system.sku);
  const heldByCompleted = orders
    .filter((o) => documents.get(o.orderId)?.status === 'COMPLETED')
    .reduce((sum, o) => sum + o.quantity, 0);
  if (!level || level.available + level.reserved !== system.stock)
    violations.push(
      `stock of ${system.sku}: available + reserved = ${level?.available}+${level?.reserved}, put in ${system.stock}`,
    );
  if (level && level.reserved !== heldByCompleted)
    violations.push(`stock of ${system.sku}: ${level.reserved} reserved, the completed orders hold ${heldByCompleted}`);
  // 4. One saga per order, and nothing dead-lettered (every event was a valid order). Counted in
  // Temporal's search index, which lags the histories (SQL visibility is written after the
  // history, longer so after a history node or the database was down): first wait until it
  // lists every saga as ended, as the API already read them.
  const ended = orders.filter((o) => {
    const document = documents.get(o.orderId);
    return document?.history !== undefined && TERMINAL_STATUSES.includes(document.status);
  }).length;
  const caughtUpIn = await untilIndexCaughtUp(system.temporalClient, system.startedAt, ended, orders.length - ended);
  progress(
    caughtUpIn === undefined
      ? 'the search index did not list every saga as ended within 2 min'
      : `the search index listed every saga as ended ${caughtUpIn} ms after the API read them`,
  );
  const runs = new Map<string, number>();
  for await (const execution of system.temporalClient.workflow.list({
    query: `WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}'`,
  }))
    runs.set(execution.workflowId, (runs.get(execution.workflowId) ?? 0) + 1);
  for (const order of orders) {
    const workflowId = documents.get(order.orderId)?.workflowId;
    if (workflowId && runs.get(workflowId) !== 1)
      violations.push(`${order.orderId}: ${runs.get(workflowId) ?? 0} saga runs`);
  }
  const nc = await connectNats(system.natsUrls, 'chaos-checker');
  try {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    // The ingress stored each accepted order once (its retries, and a leader change, doubled nothing).
    const created = new Map<string, number>();
    for (const event of await readStream(js, jsm, 'ORDERS'))
      if (event.id === `order-created:${event.aggregate_id}`)
        created.set(event.aggregate_id, (created.get(event.aggregate_id) ?? 0) + 1);
    for (const order of orders)
      if (created.get(order.orderId) !== 1)
        violations.push(`${order.orderId}: ${created.get(order.orderId) ?? 0} OrderCreated events from the ingress`);

    // 5. What the product's own reconciliation finds (ops/reconcile): per order, the money at the
    // gateway, the reservation and the audit trail against the saga's end; dead letters; accepted
    // orders without a saga. Every saga of this tier's server started since the test began.
    progress('ORDERS read; reconciling');
    const evidence = await gatherEvidence(
      { temporal: system.temporalClient, nc, gatewayUrl: system.gateway.url },
      { from: system.startedAt, until: new Date() },
    ).catch((error: Error) => {
      violations.push(`the reconciliation could not run: ${error.message}`);
      return undefined;
    });
    if (evidence) {
      progress(`reconciliation read ${evidence.sagas.size} sagas, ${evidence.audit.length} audit events`);
      const reconciliation = findMismatches(evidence);
      for (const m of reconciliation.mismatches)
        violations.push(`reconcile: ${m.kind} ${m.orderId ?? ''}: ${m.detail}`);
      if (evidence.sagas.size < orders.length)
        violations.push(`reconcile saw ${evidence.sagas.size} sagas for ${orders.length} placed orders`);
    }
  } finally {
    await nc.close();
  }
  return { statuses, compensatedByOutage, violations };
}
