// Reconciliation, step 1: gather what each system says about the orders of a time window. The
// sagas (Temporal visibility, and each closed saga's result), the payment gateway's charges, the
// inventory's reservations (asked of the workers over NATS), the AUDIT trail, the OrderCreated
// events on ORDERS and the dead letters. Read-only: nothing here changes any system.
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ORDER_CREATED } from '../../domain/events.js';
import { decodeEnvelope, type EventEnvelope } from '../../lib/envelope.js';
import {
  INVENTORY_ADMIN_SUBJECT,
  RESERVATIONS_PAGE_LIMIT,
  type ReservationRecord,
  type ReservationsReply,
  type ReservationsRequest,
} from '../../lib/inventory-admin.js';
import { STREAMS, SUBJECTS } from '../../lib/nats.js';
import {
  ORDER_SAGA_WORKFLOW_TYPE,
  ORDER_WORKFLOW_ID_PREFIX,
  OrderStatusKey,
  orderWorkflowId,
  type OrderStatus,
  type OrderStatusDocument,
} from '../../workflows/contract.js';

/** The sagas reconciled are those started in [from, until); `until` leaves the newest time to settle. */
export interface ReconcileWindow {
  from: Date;
  until: Date;
}

export interface SagaEvidence {
  orderId: string;
  workflowId: string;
  runId: string;
  startTime: Date;
  /** Temporal's execution status: RUNNING, COMPLETED, TERMINATED, FAILED, TIMED_OUT, ... */
  execution: string;
  /** The OrderStatus search attribute (what operators filter by). */
  status: OrderStatus | undefined;
  /** The saga's result, for a saga that completed: its final status document. */
  document?: OrderStatusDocument;
}

/** A charge as the gateway lists it. */
export interface GatewayCharge {
  id: string;
  reference: string;
  amount: number;
  currency: string;
  refunded: boolean;
  createdAt: string;
}

/** A saga's audit event: its id, type and the status it records (status events only). */
export interface AuditRecord {
  id: string;
  type: string;
  orderId: string;
  status?: OrderStatus;
}

export interface Evidence {
  window: ReconcileWindow;
  /** By order id: the latest run of each saga started in the window. */
  sagas: Map<string, SagaEvidence>;
  /** Charges created since the window's start. */
  charges: GatewayCharge[];
  /** Reservations made since the window's start. */
  reservations: ReservationRecord[];
  /** Order status and compensation events on AUDIT since the window's start. */
  audit: AuditRecord[];
  /** Orders the ingress accepted in the window (OrderCreated on ORDERS), with when. */
  accepted: { orderId: string; at: string }[];
  /** Left out as still settling: orders accepted, and saga runs started, at or after the window's end. */
  acceptedAfter: number;
  sagasAfter: number;
  /** When the evidence was read (charges and reservations are read up to then). */
  readAt: Date;
  /** Order ids of the events on ORDERS_DLQ, and how many events it holds (unreadable ones too). */
  deadLettered: Set<string>;
  deadLetterTotal: number;
  /** Order ids met in a charge, a reservation or ORDERS without a saga in the window: whether a saga exists at all. */
  sagaExists: Map<string, boolean>;
  /**
   * Sagas of the window that Temporal holds but its search index did not list yet (its
   * visibility lags the histories): read from Temporal itself and checked like the others.
   */
  notYetIndexed: number;
}

export interface EvidenceSources {
  temporal: Client;
  nc: NatsConnection;
  gatewayUrl: string;
  /** How long to wait for a worker to answer a reservations request. */
  requestTimeoutMs?: number;
}

/** Gathers the evidence of a window. */
export async function gatherEvidence(sources: EvidenceSources, window: ReconcileWindow): Promise<Evidence> {
  const js = jetstream(sources.nc);
  const jsm = await jetstreamManager(sources.nc);
  const now = new Date();
  const [sagas, charges, reservations, audit, { accepted, acceptedAfter }, deadLettered, sagasAfter] =
    await Promise.all([
      sagasOf(sources.temporal, window, now),
      chargesSince(sources.gatewayUrl, window.from),
      reservationsSince(sources.nc, window.from, now, sources.requestTimeoutMs ?? 10_000),
      auditSince(js, jsm, window.from),
      acceptedIn(js, jsm, window),
      deadLetteredOrders(js, jsm),
      sagasStartedSince(sources.temporal, window.until),
    ]);
  const strangers = new Set<string>([
    ...charges.map((c) => c.reference),
    ...reservations.map((r) => r.orderId),
    ...accepted.map((a) => a.orderId),
  ]);
  for (const orderId of sagas.keys()) strangers.delete(orderId);
  // An order with a charge, a reservation or an OrderCreated but no saga in the listing: Temporal
  // itself says whether its saga exists (the index may not have caught up with a new one).
  const sagaExists = new Map<string, boolean>();
  let notYetIndexed = 0;
  await inBatches([...strangers], 16, async (orderId) => {
    const saga = await latestRun(sources.temporal, orderWorkflowId(orderId), now);
    sagaExists.set(orderId, saga !== undefined);
    if (saga && saga.startTime >= window.from && saga.startTime < window.until) {
      sagas.set(orderId, saga);
      notYetIndexed += 1;
    }
  });
  await withResults(sources.temporal, sagas);
  const deadLetterTotal = (await jsm.streams.info(STREAMS.deadLetters.name)).state.messages;
  return {
    window,
    sagas,
    charges,
    reservations,
    audit,
    accepted,
    acceptedAfter,
    sagasAfter,
    readAt: now,
    deadLettered,
    deadLetterTotal,
    sagaExists,
    notYetIndexed,
  };
}

/** Runs `work` over `items`, at most `width` at a time. */
async function inBatches<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(work));
}

async function sagasOf(temporal: Client, window: ReconcileWindow, readAt: Date): Promise<Map<string, SagaEvidence>> {
  const query =
    `WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}' AND StartTime >= '${window.from.toISOString()}'` +
    ` AND StartTime < '${window.until.toISOString()}'`;
  const sagas = new Map<string, SagaEvidence>();
  for await (const execution of temporal.workflow.list({ query })) {
    if (!execution.workflowId.startsWith(ORDER_WORKFLOW_ID_PREFIX)) continue;
    const orderId = execution.workflowId.slice(ORDER_WORKFLOW_ID_PREFIX.length);
    const known = sagas.get(orderId);
    // A reset makes a new run of the same saga: the latest run is the one that counts.
    if (known && known.startTime >= execution.startTime) continue;
    sagas.set(orderId, {
      orderId,
      workflowId: execution.workflowId,
      runId: execution.runId,
      startTime: execution.startTime,
      execution: execution.status.name,
      status: execution.typedSearchAttributes.get(OrderStatusKey) as OrderStatus | undefined,
    });
  }
  // The index lags the histories: a row saying RUNNING may be a saga that has ended since, its
  // OrderStatus an old one, and a run that ended otherwise may have a newer run (a reset) not
  // listed yet. Those are read again from Temporal itself; a COMPLETED run is final.
  await inBatches(
    [...sagas.values()].filter((saga) => saga.execution !== 'COMPLETED'),
    16,
    async (listed) => {
      const current = await latestRun(temporal, listed.workflowId, readAt);
      if (current) sagas.set(listed.orderId, current);
    },
  );
  return sagas;
}

/** Reads the final status document of every saga that completed. */
async function withResults(temporal: Client, sagas: Map<string, SagaEvidence>): Promise<void> {
  await inBatches([...sagas.values()], 16, async (saga) => {
    if (saga.execution !== 'COMPLETED') return;
    saga.document = await temporal.workflow
      .getHandle<() => Promise<OrderStatusDocument>>(saga.workflowId, saga.runId)
      .result();
  });
}

/** How many saga runs started at or after `since` (left out of a window that ends there). */
async function sagasStartedSince(temporal: Client, since: Date): Promise<number> {
  const query = `WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}' AND StartTime >= '${since.toISOString()}'`;
  return (await temporal.workflow.count(query)).count;
}

/**
 * The latest run of a saga as Temporal holds it (not its search index), or undefined when there is
 * none. A run that ended after `readAt` counts as running: the charges, reservations and audit
 * events it is checked against were read before its end.
 */
async function latestRun(temporal: Client, workflowId: string, readAt: Date): Promise<SagaEvidence | undefined> {
  try {
    const run = await temporal.workflow.getHandle(workflowId).describe();
    const endedSinceRead = run.closeTime !== undefined && run.closeTime >= readAt;
    return {
      orderId: workflowId.slice(ORDER_WORKFLOW_ID_PREFIX.length),
      workflowId,
      runId: run.runId,
      startTime: run.startTime,
      execution: endedSinceRead ? 'RUNNING' : run.status.name,
      status: run.typedSearchAttributes.get(OrderStatusKey) as OrderStatus | undefined,
    };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return undefined;
    throw error;
  }
}

/** The gateway's charges created since `from`, a page at a time (GET /v1/charges?created_gte=…). */
async function chargesSince(gatewayUrl: string, from: Date): Promise<GatewayCharge[]> {
  const charges: GatewayCharge[] = [];
  for (let after: string | undefined; ;) {
    const url = new URL('/v1/charges', gatewayUrl);
    url.searchParams.set('created_gte', from.toISOString());
    url.searchParams.set('limit', '1000');
    if (after) url.searchParams.set('starting_after', after);
    const response = await fetch(url).catch((error: Error) => {
      throw new Error(`cannot reach the payment gateway at ${gatewayUrl} (${error.message}); set PAYMENT_GATEWAY_URL`);
    });
    if (!response.ok) throw new Error(`the payment gateway answered ${response.status}: ${await response.text()}`);
    const page = (await response.json()) as { data: GatewayCharge[]; has_more: boolean };
    charges.push(...page.data);
    if (!page.has_more || page.data.length === 0) return charges;
    after = page.data.at(-1)!.id;
  }
}

/** The reservations made since `from`, asked of whichever worker answers, a page at a time. */
async function reservationsSince(
  nc: NatsConnection,
  from: Date,
  to: Date,
  timeoutMs: number,
): Promise<ReservationRecord[]> {
  const reservations: ReservationRecord[] = [];
  for (let after: string | undefined; ;) {
    const request: ReservationsRequest = {
      op: 'reservations',
      createdFrom: from.toISOString(),
      // A little past now: a reservation made while we read is not missed for its clock.
      createdTo: new Date(to.getTime() + 60_000).toISOString(),
      limit: RESERVATIONS_PAGE_LIMIT,
      ...(after && { after }),
    };
    const message = await askWorkers(nc, JSON.stringify(request), timeoutMs);
    const reply = message.json<ReservationsReply>();
    if (!reply.ok) throw new Error(`the workers could not list the reservations: ${reply.detail}`);
    reservations.push(...reply.reservations);
    if (reply.reservations.length < RESERVATIONS_PAGE_LIMIT) return reservations;
    after = reply.reservations.at(-1)!.orderId;
  }
}

/** A reservations request, asked again a few times while no worker answers (one restarting, NATS reconnecting). */
async function askWorkers(nc: NatsConnection, request: string, timeoutMs: number, attempts = 4) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await nc.request(INVENTORY_ADMIN_SUBJECT, request, { timeout: timeoutMs });
    } catch (error) {
      if (attempt === attempts)
        throw new Error(
          `no worker answered for the reservations (${(error as Error).message}, ${attempts} tries); is a worker running?`,
        );
      await new Promise((resolve) => setTimeout(resolve, 2_000 * attempt));
    }
  }
}

/**
 * The envelopes stored on `stream` under the subjects `filter` from the first one at or after
 * `from` to the last one stored when the read began, with the time JetStream stored each. Envelopes
 * that do not decode are skipped (only the dead letters can hold such bytes; they are counted apart).
 */
async function readSince(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  from: Date,
): Promise<{ envelope: EventEnvelope; storedAt: Date }[]> {
  const { state } = await jsm.streams.info(stream);
  if (state.messages === 0) return [];
  // Direct gets find where to begin, so a window with nothing in it is an empty read, not a wait.
  const first = await jsm.direct.getMessage(stream, { start_time: from }).catch(() => null);
  const start =
    first && (await jsm.direct.getMessage(stream, { seq: first.seq, next_by_subj: filter }).catch(() => null));
  if (!start || start.seq > state.last_seq) return [];
  const consumer = await js.consumers.get(stream, { opt_start_seq: start.seq, filter_subjects: filter });
  const messages = await consumer.consume();
  const read: { envelope: EventEnvelope; storedAt: Date }[] = [];
  for await (const message of messages) {
    if (message.seq > state.last_seq) break;
    try {
      read.push({ envelope: decodeEnvelope(message.data), storedAt: message.time });
    } catch {
      // Not an envelope: see above.
    }
    if (message.seq === state.last_seq || message.info.pending === 0) break;
  }
  await messages.close();
  return read;
}

async function auditSince(js: JetStreamClient, jsm: JetStreamManager, from: Date): Promise<AuditRecord[]> {
  const stored = await readSince(js, jsm, STREAMS.audit.name, SUBJECTS.audit('>'), from);
  return stored.map(({ envelope }) => {
    const status = (envelope.data as { status?: OrderStatus } | undefined)?.status;
    return { id: envelope.id, type: envelope.type, orderId: envelope.aggregate_id, ...(status && { status }) };
  });
}

/** The orders accepted in the window, and how many were accepted after it. */
async function acceptedIn(
  js: JetStreamClient,
  jsm: JetStreamManager,
  window: ReconcileWindow,
): Promise<{ accepted: { orderId: string; at: string }[]; acceptedAfter: number }> {
  const stored = await readSince(js, jsm, STREAMS.orders.name, SUBJECTS.orderCreated, window.from);
  const created = stored.filter(({ envelope }) => envelope.type === ORDER_CREATED);
  const accepted = created
    .filter(({ storedAt }) => storedAt < window.until)
    .map(({ envelope, storedAt }) => ({ orderId: envelope.aggregate_id, at: storedAt.toISOString() }));
  return { accepted, acceptedAfter: created.length - accepted.length };
}

async function deadLetteredOrders(js: JetStreamClient, jsm: JetStreamManager): Promise<Set<string>> {
  const stored = await readSince(js, jsm, STREAMS.deadLetters.name, SUBJECTS.deadLetter('>'), new Date(0));
  return new Set(stored.map(({ envelope }) => envelope.aggregate_id));
}
