// Stock management for operators, served by every worker on NATS (request-reply, one queue group:
// one worker takes each request). The ingress has already checked the caller is an operator. A
// change is applied in one transaction (reserved units never touched), then audited on AUDIT
// (audit.inventory.StockSet / StockAdded: who, before, after) before the answer goes back.
import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { newTraceId, publishEnvelope } from '../lib/envelope.js';
import {
  INVENTORY_ADMIN_QUEUE,
  INVENTORY_ADMIN_SUBJECT,
  inventoryAdminRequestSchema,
  STOCK_EVENT_TYPES,
  type InventoryAdminReply,
  type InventoryAdminRequest,
} from '../lib/inventory-admin.js';
import type { Logger } from '../lib/logger.js';
import { SUBJECTS } from '../lib/nats.js';
import type { InventoryStore } from '../activities/inventory/inventory-store.js';

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
    let reply: InventoryAdminReply;
    try {
      const parsed = inventoryAdminRequestSchema.safeParse(message.json());
      reply = parsed.success
        ? await handle(parsed.data)
        : { ok: false, status: 400, detail: z.prettifyError(parsed.error) };
    } catch (error) {
      logger.error({ err: error }, 'inventory request failed');
      reply = { ok: false, status: 500, detail: (error as Error).message };
    }
    message.respond(JSON.stringify(reply));
  }

  async function handle(request: InventoryAdminRequest): Promise<InventoryAdminReply> {
    if (request.op === 'show') return { ok: true, level: (await inventory.levels(request.sku))[0] };
    const change = request.op === 'set' ? { set: request.units } : { add: request.units };
    const { before, after } = await inventory.adjustAvailable(request.sku, change);
    const type = STOCK_EVENT_TYPES[request.op];
    const event = {
      id: `stock:${request.sku}:${randomUUID()}`,
      type,
      aggregate_id: request.sku,
      data: { sku: request.sku, change, before: before ?? null, after, by: request.by },
      timestamp: new Date().toISOString(),
      trace_id: newTraceId(),
    };
    for (let attempt = 1; ; attempt += 1) {
      try {
        await publishEnvelope(js, SUBJECTS.inventoryAudit(type), event);
        break;
      } catch (error) {
        if (attempt === AUDIT_ATTEMPTS) {
          // The change stands; its record is in this log line for whoever reconciles the audit trail.
          logger.error({ err: error, event }, 'stock changed but its audit event could not be stored');
          throw new Error(
            `the stock of ${request.sku} was changed (now ${after.available} available) but its audit event could ` +
              'not be stored; do not repeat the change, report it with this message',
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
    logger.info({ sku: request.sku, change, before, after, by: request.by }, 'stock changed by an operator');
    return { ok: true, level: after, ...(before && { before }) };
  }

  return { stop: () => subscription.unsubscribe() };
}
