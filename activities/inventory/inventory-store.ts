// Inventory: stock per SKU and reservations per order.
// Invariant: for every SKU, available + reserved stays equal to the stock put in, and
// neither goes below zero. Reserving is all-or-nothing and idempotent per order;
// releasing is idempotent; an operator's stock change sent with an Idempotency-Key is applied once.
import type { ReservationRecord } from '../../lib/inventory-admin.js';
import type { SqlClient } from './sql-client.js';

export interface ReservationLine {
  sku: string;
  quantity: number;
}

export interface StockLevel {
  sku: string;
  available: number;
  reserved: number;
}

/** An operator's change to a SKU's available units: replace them, or add to them. */
export type StockChange = { set: number } | { add: number };

/** Who asked for a stock change, and the Idempotency-Key they sent with it (keys are per operator). */
export interface StockChangeKey {
  by: string;
  key: string;
}

/** A stock change as it was applied. */
export interface AppliedStockChange {
  sku: string;
  change: StockChange;
  /** The level before the change; undefined for a new SKU. */
  before: StockLevel | undefined;
  after: StockLevel;
  /** The id of the change's audit event: a repeat has the first one's, so AUDIT holds it once. */
  auditEventId: string;
  /** True when this repeats an earlier request with the same key: nothing was changed now. */
  replayed: boolean;
  /** Whether the change's audit event is known to be stored (a repeat stores it when the first could not). */
  audited: boolean;
}

/** The Idempotency-Key was already used by the same operator for another change. */
export class StockChangeKeyReusedError extends Error {
  constructor(
    readonly key: string,
    readonly earlier: { sku: string; change: StockChange },
  ) {
    const what = 'set' in earlier.change ? `set to ${earlier.change.set}` : `add ${earlier.change.add}`;
    super(`the Idempotency-Key "${key}" was already used for another change (${earlier.sku}: ${what})`);
    this.name = 'StockChangeKeyReusedError';
  }
}

const sameChange = (a: StockChange, b: StockChange) =>
  'set' in a ? 'set' in b && a.set === b.set : 'add' in b && a.add === b.add;

/** Moves the units of an order's reservation lines from reserved back to available (its row just marked RELEASED). */
async function returnReservedUnits(tx: SqlClient, orderId: string): Promise<void> {
  const lines = await tx.query<ReservationLine>(
    'SELECT sku, quantity FROM reservation_lines WHERE order_id = $1 ORDER BY sku',
    [orderId],
  );
  for (const { sku, quantity } of lines.rows) {
    await tx.query(
      'UPDATE stock SET available = available + $2, reserved = reserved - $2, updated_at = now() WHERE sku = $1',
      [sku, quantity],
    );
  }
}

/** The change recorded under a key already used: returned again when it is the same change, refused otherwise. */
async function earlierChange(
  tx: SqlClient,
  idempotency: StockChangeKey,
  sku: string,
  change: StockChange,
): Promise<AppliedStockChange> {
  const earlier = await tx.query<{
    sku: string;
    change: StockChange;
    before: StockLevel | null;
    after: StockLevel;
    audit_event_id: string;
    audited_at: Date | string | null;
  }>(
    `SELECT sku, change, before, after, audit_event_id, audited_at FROM stock_changes
     WHERE requested_by = $1 AND idempotency_key = $2`,
    [idempotency.by, idempotency.key],
  );
  const row = earlier.rows[0]!;
  if (row.sku !== sku || !sameChange(row.change, change))
    throw new StockChangeKeyReusedError(idempotency.key, { sku: row.sku, change: row.change });
  return {
    sku,
    change: row.change,
    before: row.before ?? undefined,
    after: row.after,
    auditEventId: row.audit_event_id,
    replayed: true,
    audited: row.audited_at !== null,
  };
}

/** A line of the order could not be reserved; nothing of the order was. */
export class OutOfStockError extends Error {
  constructor(
    readonly sku: string,
    readonly requested: number,
    readonly available: number | undefined,
  ) {
    super(
      available === undefined ? `unknown SKU "${sku}"` : `SKU "${sku}": requested ${requested}, available ${available}`,
    );
    this.name = 'OutOfStockError';
  }
}

/** The order's reservation was already released, so it cannot be reserved again. */
export class ReservationReleasedError extends Error {
  constructor(readonly orderId: string) {
    super(`the reservation of order ${orderId} was already released`);
    this.name = 'ReservationReleasedError';
  }
}

/** Sums quantities per SKU and sorts by SKU, so concurrent orders lock rows in one order (no deadlocks). */
function consolidate(lines: readonly ReservationLine[]): ReservationLine[] {
  const bySku = new Map<string, number>();
  for (const { sku, quantity } of lines) bySku.set(sku, (bySku.get(sku) ?? 0) + quantity);
  return [...bySku.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([sku, quantity]) => ({ sku, quantity }));
}

export class InventoryStore {
  constructor(readonly db: SqlClient) {}

  /** Reserves every line of the order, or none; a second call for the same order changes nothing. */
  async reserve(
    orderId: string,
    lines: readonly ReservationLine[],
  ): Promise<{ reservationId: string; alreadyReserved: boolean }> {
    return this.db.transaction(async (tx) => {
      // The primary key serialises concurrent calls for one order: the second waits, then sees the first.
      const inserted = await tx.query(
        'INSERT INTO reservations (order_id, status) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING RETURNING order_id',
        [orderId, 'RESERVED'],
      );
      if (inserted.rows.length === 0) {
        const existing = await tx.query<{ status: string }>('SELECT status FROM reservations WHERE order_id = $1', [
          orderId,
        ]);
        if (existing.rows[0]?.status === 'RELEASED') throw new ReservationReleasedError(orderId);
        return { reservationId: orderId, alreadyReserved: true };
      }
      for (const { sku, quantity } of consolidate(lines)) {
        const updated = await tx.query(
          `UPDATE stock SET available = available - $2, reserved = reserved + $2, updated_at = now()
           WHERE sku = $1 AND available >= $2 RETURNING sku`,
          [sku, quantity],
        );
        if (updated.rows.length === 0) {
          const level = await tx.query<{ available: number }>('SELECT available FROM stock WHERE sku = $1', [sku]);
          throw new OutOfStockError(sku, quantity, level.rows[0]?.available);
        }
        await tx.query('INSERT INTO reservation_lines (order_id, sku, quantity) VALUES ($1, $2, $3)', [
          orderId,
          sku,
          quantity,
        ]);
      }
      return { reservationId: orderId, alreadyReserved: false };
    });
  }

  /**
   * Returns the order's reserved stock; true when this call released it, false when there was
   * nothing to release. Safe against a reserve attempt still in flight (one that outlived its
   * activity timeout): whichever commits first, the order ends with nothing reserved.
   */
  async release(orderId: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // First claim the order's row with a tombstone. The primary key makes this wait for a reserve
      // still in flight, so the update below (a new snapshot) sees that reserve once it committed;
      // when nothing was ever reserved, the tombstone makes a later reserve fail.
      await tx.query(
        `INSERT INTO reservations (order_id, status, released_at) VALUES ($1, 'RELEASED', now()) ON CONFLICT (order_id) DO NOTHING`,
        [orderId],
      );
      const released = await tx.query(
        `UPDATE reservations SET status = 'RELEASED', released_at = now() WHERE order_id = $1 AND status = 'RESERVED' RETURNING order_id`,
        [orderId],
      );
      if (released.rows.length === 0) return false;
      await returnReservedUnits(tx, orderId);
      return true;
    });
  }

  /**
   * An operator's release: returns the order's stock only when it holds a reservation, and answers
   * the reservation's status before the call (undefined: none). Unlike release(), it leaves no
   * tombstone for an order with no reservation: that order's saga may not have started yet, and
   * a tombstone would make its reservation, and so the saga, fail when it does.
   */
  async releaseHeld(orderId: string): Promise<'RESERVED' | 'RELEASED' | undefined> {
    return this.db.transaction(async (tx) => {
      const found = await tx.query<{ status: 'RESERVED' | 'RELEASED' }>(
        'SELECT status FROM reservations WHERE order_id = $1 FOR UPDATE',
        [orderId],
      );
      const status = found.rows[0]?.status;
      if (status !== 'RESERVED') return status;
      await tx.query(`UPDATE reservations SET status = 'RELEASED', released_at = now() WHERE order_id = $1`, [orderId]);
      await returnReservedUnits(tx, orderId);
      return status;
    });
  }

  /** Adds stock (creates the SKU when new). */
  async restock(sku: string, quantity: number): Promise<void> {
    await this.db.query(
      `INSERT INTO stock (sku, available) VALUES ($1, $2)
       ON CONFLICT (sku) DO UPDATE SET available = stock.available + EXCLUDED.available, updated_at = now()`,
      [sku, quantity],
    );
  }

  /**
   * An operator's change of a SKU's available units (the SKU is created when new): `set` replaces
   * them, `add` adds to them; reserved units are never touched, so stock put in changes by the
   * difference. Returns the level before (undefined for a new SKU) and after.
   *
   * With `idempotency` (the operator and the Idempotency-Key they sent), the key is recorded in the
   * same transaction as the change: a repeat (a retry after an answer was lost, say a slow worker's)
   * changes nothing and returns the first change as it was applied, and the key sent with another
   * change throws StockChangeKeyReusedError. A concurrent repeat waits for the first on the key's row.
   */
  async adjustAvailable(
    sku: string,
    change: StockChange,
    options: { auditEventId: string; idempotency?: StockChangeKey },
  ): Promise<AppliedStockChange> {
    const { auditEventId, idempotency } = options;
    const newAvailable = 'set' in change ? 'EXCLUDED.available' : 'stock.available + EXCLUDED.available';
    return this.db.transaction(async (tx) => {
      if (idempotency) {
        const claimed = await tx.query(
          `INSERT INTO stock_changes (requested_by, idempotency_key, sku, change, audit_event_id)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (requested_by, idempotency_key) DO NOTHING RETURNING sku`,
          [idempotency.by, idempotency.key, sku, JSON.stringify(change), auditEventId],
        );
        if (claimed.rows.length === 0) return earlierChange(tx, idempotency, sku, change);
      }
      const before = await tx.query<StockLevel>(
        'SELECT sku, available, reserved FROM stock WHERE sku = $1 FOR UPDATE',
        [sku],
      );
      const after = await tx.query<StockLevel>(
        `INSERT INTO stock (sku, available) VALUES ($1, $2)
         ON CONFLICT (sku) DO UPDATE SET available = ${newAvailable}, updated_at = now()
         RETURNING sku, available, reserved`,
        [sku, 'set' in change ? change.set : change.add],
      );
      const applied = { sku, change, before: before.rows[0], after: after.rows[0]!, auditEventId };
      if (idempotency)
        await tx.query(
          'UPDATE stock_changes SET before = $3, after = $4 WHERE requested_by = $1 AND idempotency_key = $2',
          [
            idempotency.by,
            idempotency.key,
            applied.before ? JSON.stringify(applied.before) : null,
            JSON.stringify(applied.after),
          ],
        );
      return { ...applied, replayed: false, audited: false };
    });
  }

  /** Records that the audit event of a keyed change is stored, so a repeat does not store it again. */
  async markStockChangeAudited(idempotency: StockChangeKey): Promise<void> {
    await this.db.query(
      'UPDATE stock_changes SET audited_at = now() WHERE requested_by = $1 AND idempotency_key = $2',
      [idempotency.by, idempotency.key],
    );
  }

  /** Current levels, for a SKU or all of them. */
  async levels(sku?: string): Promise<StockLevel[]> {
    const result = await this.db.query<StockLevel>(
      `SELECT sku, available, reserved FROM stock ${sku ? 'WHERE sku = $1' : ''} ORDER BY sku`,
      sku ? [sku] : [],
    );
    return result.rows;
  }

  /**
   * Reservations made in [createdFrom, createdTo), by order id, at most `limit` after the order id
   * `after` (the last of the previous page).
   */
  async reservations(window: {
    createdFrom: string;
    createdTo: string;
    after?: string;
    limit: number;
  }): Promise<ReservationRecord[]> {
    const result = await this.db.query<{
      order_id: string;
      status: 'RESERVED' | 'RELEASED';
      created_at: Date | string;
      released_at: Date | string | null;
    }>(
      `SELECT order_id, status, created_at, released_at FROM reservations
       WHERE created_at >= $1 AND created_at < $2 AND order_id > $3 ORDER BY order_id LIMIT $4`,
      [window.createdFrom, window.createdTo, window.after ?? '', window.limit],
    );
    const iso = (time: Date | string) => new Date(time).toISOString();
    return result.rows.map((row) => ({
      orderId: row.order_id,
      status: row.status,
      createdAt: iso(row.created_at),
      releasedAt: row.released_at === null ? null : iso(row.released_at),
    }));
  }

  /** Status of an order's reservation, or undefined when there is none. */
  async reservationStatus(orderId: string): Promise<'RESERVED' | 'RELEASED' | undefined> {
    const result = await this.db.query<{ status: 'RESERVED' | 'RELEASED' }>(
      'SELECT status FROM reservations WHERE order_id = $1',
      [orderId],
    );
    return result.rows[0]?.status;
  }
}
