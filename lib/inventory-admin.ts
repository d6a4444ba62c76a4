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

/** Audit event type of an operator's release of an order's reservation, on audit.inventory.ReservationReleased. */
export const RESERVATION_RELEASED_EVENT_TYPE = 'ReservationReleased';

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

/**
 * The Idempotency-Key an operator may send with a stock change: a repeat with the same key (and
 * the same change) is answered with the first change as applied and changes nothing. Per operator.
 */
const idempotencyKeySchema = z.string().min(1).max(255).optional();

export const inventoryAdminRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('show'), sku: skuSchema }),
  z.strictObject({
    op: z.literal('set'),
    sku: skuSchema,
    units: unitsSchema(0),
    by: z.string().min(1),
    idempotencyKey: idempotencyKeySchema,
  }),
  z.strictObject({
    op: z.literal('add'),
    sku: skuSchema,
    units: unitsSchema(1),
    by: z.string().min(1),
    idempotencyKey: idempotencyKeySchema,
  }),
  // An order's reservation given back by an operator (the ingress first checks the saga does not need it).
  // Only a reservation held is released: an order with none is left as it is (its saga may not have started).
  z.strictObject({ op: z.literal('release'), orderId: z.string().min(1).max(128), by: z.string().min(1) }),
]);

export type InventoryAdminRequest = z.infer<typeof inventoryAdminRequestSchema>;

/** An order's reservation as reconciliation reads it. */
export interface ReservationRecord {
  orderId: string;
  status: 'RESERVED' | 'RELEASED';
  createdAt: string;
  releasedAt: string | null;
}

/** Max reservations per answer, so a reply stays well inside NATS's message size. */
export const RESERVATIONS_PAGE_LIMIT = 1_000;

/**
 * Reservations made in a time window, for reconciliation (ops/reconcile): a page of at most
 * `limit`, by order id, after the order id `after`. Not offered by the ingress: the reconcile
 * job talks to NATS directly, as the workers do.
 */
export const reservationsRequestSchema = z.strictObject({
  op: z.literal('reservations'),
  createdFrom: z.iso.datetime(),
  createdTo: z.iso.datetime(),
  after: z.string().optional(),
  limit: z.number().int().min(1).max(RESERVATIONS_PAGE_LIMIT),
});
export type ReservationsRequest = z.infer<typeof reservationsRequestSchema>;

export type ReservationsReply =
  { ok: true; reservations: ReservationRecord[] } | { ok: false; status: 400 | 500; detail: string };

/** Every request the workers answer on INVENTORY_ADMIN_SUBJECT. */
export const workerInventoryRequestSchema = z.discriminatedUnion('op', [
  ...inventoryAdminRequestSchema.options,
  reservationsRequestSchema,
]);

export interface StockLevelView {
  sku: string;
  available: number;
  reserved: number;
}

/**
 * `level` for stock requests; for a change also `before` (absent for a new SKU), `applied` (the
 * change made) and `replayed` (true: an earlier request with the same Idempotency-Key made it, and
 * `level` is the level right after it); `released` for a release (false: nothing was reserved).
 * Status 422: the Idempotency-Key was already used for another change.
 */
export type InventoryAdminReply =
  | {
      ok: true;
      level?: StockLevelView;
      before?: StockLevelView;
      applied?: { set: number } | { add: number };
      replayed?: boolean;
      released?: boolean;
      /** For a release: the order's reservation before it (NONE: the order never reserved anything). */
      reservationBefore?: 'RESERVED' | 'RELEASED' | 'NONE';
    }
  | { ok: false; status: 400 | 422 | 500; detail: string };
