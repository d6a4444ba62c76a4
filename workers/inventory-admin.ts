// Stock management for operators, served by every worker on NATS (request-reply, one queue group:
// one worker takes each request); also the reservations of a time window, for reconciliation.
// The ingress has already checked the caller is an operator. A change is applied in one
// transaction (reserved units never touched; with its Idempotency-Key, recorded in that same
// transaction, so a retry after a lost answer is not applied twice), then audited on AUDIT (audit.inventory.StockSet /
// StockAdded: who, before, after; ReservationReleased: which order, who) before the answer goes back.
import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { newTraceId, publishEnvelope } from '../lib/envelope.js';
import {
  INVENTORY_ADMIN_QUEUE,
  INVENTORY_ADMIN_SUBJECT,
  RESERVATION_RELEASED_EVENT_TYPE,
  STOCK_EVENT_TYPES,
  workerInventoryRequestSchema,
  type InventoryAdminReply,
  type InventoryAdminRequest,
  type ReservationsReply,
} from '../lib/inventory-admin.js';
import type { Logger } from '../lib/logger.js';
import { SUBJECTS } from '../lib/nats.js';
import {
  StockChangeKeyReusedError,
  type AppliedStockChange,
  type InventoryStore,
} from '../activities/inventory/inventory-store.js';

const AUDIT_ATTEMPTS = 5;

export function serveInventoryAdmin(deps: {
  nc: NatsConnection;
  js: JetStreamClient;
  inventory: InventoryStore;
  logger: Logger;
}): { stop: () => void } {
  const { nc, js, inventory, logger } = deps;
  const subscription = nc.subscribe(INVENTORY_ADMIN_SUBJECT, { queue: INVENTORY_ADMIN_QUEUE });
  void (async () => {
    for await (const message of subscription) void answer(message);
  })();

  async function answer(message: Msg): Promise<void> {
    let reply: InventoryAdminReply | ReservationsReply;
    try {
      const parsed = workerInventoryRequestSchema.safeParse(message.json());
      if (!parsed.success) reply = { ok: false, status: 400, detail: z.prettifyError(parsed.error) };
      else if (parsed.data.op === 'reservations') {
        const { op: _op, ...window } = parsed.data;
        reply = { ok: true, reservations: await inventory.reservations(window) };
      } else reply = await handle(parsed.data);
    } catch (error) {
      logger.error({ err: error }, 'inventory request failed');
      reply = { ok: false, status: 500, detail: (error as Error).message };
    }
    message.respond(JSON.stringify(reply));
  }

  async function handle(request: InventoryAdminRequest): Promise<InventoryAdminReply> {
    if (request.op === 'show') return { ok: true, level: (await inventory.levels(request.sku))[0] };
    if (request.op === 'release') {
      // Never leaves a tombstone (as the saga's own release does): an order that reserved nothing yet
      // may have a saga still to start, whose reservation a tombstone would make fail.
      const reservationBefore = (await inventory.releaseHeld(request.orderId)) ?? 'NONE';
      const released = reservationBefore === 'RESERVED';
      // Only a release that gave units back is a change to audit; one order's reservation is released once.
      if (released)
        await audit(RESERVATION_RELEASED_EVENT_TYPE, {
          id: `reservation-released:${request.orderId}`,
          aggregate_id: request.orderId,
          data: { orderId: request.orderId, by: request.by },
          whatChanged: `the reservation of order ${request.orderId} was released`,
        });
      logger.info({ orderId: request.orderId, released, by: request.by }, 'reservation released by an operator');
      return { ok: true, released, reservationBefore };
    }
    const change = request.op === 'set' ? { set: request.units } : { add: request.units };
    const idempotency = request.idempotencyKey ? { by: request.by, key: request.idempotencyKey } : undefined;
    let applied: AppliedStockChange;
    try {
      applied = await inventory.adjustAvailable(request.sku, change, {
        auditEventId: `stock:${request.sku}:${randomUUID()}`,
        idempotency,
      });
    } catch (error) {
      if (error instanceof StockChangeKeyReusedError)
        return { ok: false, status: 422, detail: `${error.message}; use a new key for a new change` };
      throw error;
    }
    const { before, after, replayed } = applied;
    // A repeat stores the audit event only when the first request could not (same id: stored once).
    if (!applied.audited) {
      await audit(STOCK_EVENT_TYPES[request.op], {
        id: applied.auditEventId,
        aggregate_id: request.sku,
        data: { sku: request.sku, change: applied.change, before: before ?? null, after, by: request.by },
        whatChanged: `the stock of ${request.sku} was changed (now ${after.available} available)`,
      });
      if (idempotency) await inventory.markStockChangeAudited(idempotency);
    }
    logger.info(
      { sku: request.sku, change, before, after, by: request.by, idempotencyKey: request.idempotencyKey, replayed },
      replayed ? 'stock change already applied for this Idempotency-Key' : 'stock changed by an operator',
    );
    return { ok: true, level: after, ...(before && { before }), applied: applied.change, replayed };
  }

  /** Stores the audit event of a change already made, retrying a few times; says so clearly if it cannot. */
  async function audit(
    type: string,
    fact: { id: string; aggregate_id: string; data: unknown; whatChanged: string },
  ): Promise<void> {
    const event = {
      id: fact.id,
      type,
      aggregate_id: fact.aggregate_id,
      data: fact.data,
      timestamp: new Date().toISOString(),
      trace_id: newTraceId(),
    };
    for (let attempt = 1; ; attempt += 1) {
      try {
        await publishEnvelope(js, SUBJECTS.inventoryAudit(type), event);
        return;
      } catch (error) {
        if (attempt === AUDIT_ATTEMPTS) {
          // The change stands; its record is in this log line for whoever reconciles the audit trail.
          logger.error({ err: error, event }, 'inventory changed but its audit event could not be stored');
          throw new Error(
            `${fact.whatChanged} but its audit event could not be stored; do not repeat the change, report it with this message`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  return { stop: () => subscription.unsubscribe() };
}
