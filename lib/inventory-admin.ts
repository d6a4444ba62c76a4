// Stock management by operators: the request the ingress sends over NATS (request-reply) to
// whichever worker answers (the inventory belongs to the workers: PostgreSQL, or the one worker's
// embedded database), and the answer. The ingress authenticates and authorizes the operator; the
// worker changes the stock and audits the change on AUDIT.
import { z } from 'zod';

/** The subject workers answer on, as a queue group: one worker takes each request. */
export const INVENTORY_ADMIN_SUBJECT = 'inventory.admin';
export const INVENTORY_ADMIN_QUEUE = 'inventory-admin';

/** Audit event types of stock changes, on subject audit.inventory.<type>. */
export const STOCK_EVENT_TYPES = { set: 'StockSet', add: 'StockAdded' } as const;

const MAX_UNITS = 1_000_000_000;

export const skuSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\w.:@-]+$/, 'letters, digits and . _ : @ - only');

/** Units as an operator may give them: whole and not negative (adding 0 changes nothing, so at least 1). */
export const unitsSchema = (minimum: 0 | 1) =>
  z
    .number({ error: 'must be a number of units' })
    .int('must be a whole number of units')
    .min(minimum, minimum === 0 ? 'must not be negative' : 'must be at least 1 (to take stock away, set it)')
    .max(MAX_UNITS, `must be at most ${MAX_UNITS}`);

export const inventoryAdminRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('show'), sku: skuSchema }),
  z.strictObject({ op: z.literal('set'), sku: skuSchema, units: unitsSchema(0), by: z.string().min(1) }),
  z.strictObject({ op: z.literal('add'), sku: skuSchema, units: unitsSchema(1), by: z.string().min(1) }),
]);

export type InventoryAdminRequest = z.infer<typeof inventoryAdminRequestSchema>;

export interface StockLevelView {
  sku: string;
  available: number;
  reserved: number;
}

export type InventoryAdminReply =
  | { ok: true; level: StockLevelView | undefined; before?: StockLevelView }
  | { ok: false; status: 400 | 500; detail: string };
