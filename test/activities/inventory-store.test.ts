// The inventory store on both engines it supports: embedded PGlite and a real PostgreSQL.
// Invariant under test everywhere: available + reserved = stock put in, never negative.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import {
  InventoryStore,
  OutOfStockError,
  ReservationReleasedError,
  StockChangeKeyReusedError,
} from '../../activities/inventory/inventory-store.js';
import { migrate, MIGRATIONS } from '../../activities/inventory/migrations.js';
import { embeddedClient, postgresClient, type SqlClient } from '../../activities/inventory/sql-client.js';
import { createTemporaryDatabase } from '../harness/postgres.js';

const postgresUrl = inject('postgresUrl');
const engines: { name: string; open: () => Promise<SqlClient>; reasonUnavailable?: string }[] = [
  { name: 'embedded (PGlite)', open: () => embeddedClient('memory://') },
  {
    name: 'PostgreSQL',
    open: () => Promise.resolve(postgresClient(postgresUrl!)),
    reasonUnavailable: postgresUrl ? undefined : inject('postgresUnavailableReason'),
  },
];

for (const engine of engines) {
  // Skipped only when the harness found no PostgreSQL; it printed why at the start of the run.
  describe.skipIf(engine.reasonUnavailable !== undefined)(`inventory store on ${engine.name}`, () => {
    let db: SqlClient;
    let store: InventoryStore;
    beforeAll(async () => {
      db = await engine.open();
      await migrate(db);
      store = new InventoryStore(db);
    });
    afterAll(async () => db?.close());

    async function sku(stock: number): Promise<string> {
      const name = `SKU-${randomUUID().slice(0, 8)}`;
      await store.restock(name, stock);
      return name;
    }

    it('when migrations run twice, then the second run applies nothing', async () => {
      expect(await migrate(db)).toEqual([]);
      const versions = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(versions.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    });

    it('when an order is reserved twice, then stock moves once', async () => {
      const a = await sku(5);
      const orderId = randomUUID();
      expect(await store.reserve(orderId, [{ sku: a, quantity: 2 }])).toEqual({
        reservationId: orderId,
        alreadyReserved: false,
      });
      expect(await store.reserve(orderId, [{ sku: a, quantity: 2 }])).toEqual({
        reservationId: orderId,
        alreadyReserved: true,
      });
      expect(await store.levels(a)).toEqual([{ sku: a, available: 3, reserved: 2 }]);
    });

    it('when one line cannot be reserved, then no line is', async () => {
      const a = await sku(5);
      const b = await sku(1);
      const orderId = randomUUID();
      await expect(
        store.reserve(orderId, [
          { sku: a, quantity: 2 },
          { sku: b, quantity: 2 },
        ]),
      ).rejects.toBeInstanceOf(OutOfStockError);
      expect(await store.levels(a)).toEqual([{ sku: a, available: 5, reserved: 0 }]);
      expect(await store.levels(b)).toEqual([{ sku: b, available: 1, reserved: 0 }]);
      expect(await store.reservationStatus(orderId)).toBeUndefined();
    });

    it('when a SKU is unknown, then the error says so and nothing is reserved', async () => {
      const orderId = randomUUID();
      await expect(store.reserve(orderId, [{ sku: 'SKU-NOPE', quantity: 1 }])).rejects.toThrow(
        'unknown SKU "SKU-NOPE"',
      );
      expect(await store.reservationStatus(orderId)).toBeUndefined();
    });

    it('when lines repeat a SKU, then their quantities are reserved together', async () => {
      const a = await sku(3);
      await expect(
        store.reserve(randomUUID(), [
          { sku: a, quantity: 2 },
          { sku: a, quantity: 2 },
        ]),
      ).rejects.toBeInstanceOf(OutOfStockError);
      await store.reserve(randomUUID(), [
        { sku: a, quantity: 1 },
        { sku: a, quantity: 2 },
      ]);
      expect(await store.levels(a)).toEqual([{ sku: a, available: 0, reserved: 3 }]);
    });

    it('when a release is repeated, then stock returns once', async () => {
      const a = await sku(4);
      const orderId = randomUUID();
      await store.reserve(orderId, [{ sku: a, quantity: 3 }]);
      expect(await store.release(orderId)).toBe(true);
      expect(await store.release(orderId)).toBe(false);
      expect(await store.levels(a)).toEqual([{ sku: a, available: 4, reserved: 0 }]);
    });

    it('when the same keyed stock change arrives twice at once, then it is applied once and both answer it', async () => {
      const a = await sku(5);
      const key = { by: 'ops', key: randomUUID() };
      const [one, two] = await Promise.all(
        ['first', 'second'].map((attempt) =>
          store.adjustAvailable(a, { add: 3 }, { auditEventId: `stock:${a}:${attempt}`, idempotency: key }),
        ),
      );
      expect([one!.replayed, two!.replayed].sort()).toEqual([false, true]);
      expect(two!.after).toEqual(one!.after);
      expect(two!.before).toEqual(one!.before);
      expect(two!.auditEventId).toBe(one!.auditEventId); // audited once, under one id
      expect(await store.levels(a)).toEqual([{ sku: a, available: 8, reserved: 0 }]);
      // The key for another change is refused; another operator's same key is theirs.
      await expect(
        store.adjustAvailable(a, { set: 3 }, { auditEventId: `stock:${a}:third`, idempotency: key }),
      ).rejects.toBeInstanceOf(StockChangeKeyReusedError);
      const theirs = await store.adjustAvailable(
        a,
        { add: 3 },
        {
          auditEventId: `stock:${a}:theirs`,
          idempotency: { by: 'other-operator', key: key.key },
        },
      );
      expect(theirs.replayed).toBe(false);
      expect(await store.levels(a)).toEqual([{ sku: a, available: 11, reserved: 0 }]);
    });

    it("when an operator releases an order that reserved nothing, then nothing is written and the order's reservation still works", async () => {
      const a = await sku(4);
      const orderId = randomUUID();
      expect(await store.releaseHeld(orderId)).toBeUndefined();
      await store.reserve(orderId, [{ sku: a, quantity: 1 }]); // no tombstone refused it
      expect(await store.releaseHeld(orderId)).toBe('RESERVED');
      expect(await store.releaseHeld(orderId)).toBe('RELEASED');
      expect(await store.levels(a)).toEqual([{ sku: a, available: 4, reserved: 0 }]);
    });

    it('when a release comes before its reservation, then the late reservation is refused', async () => {
      const a = await sku(4);
      const orderId = randomUUID();
      expect(await store.release(orderId)).toBe(false);
      await expect(store.reserve(orderId, [{ sku: a, quantity: 1 }])).rejects.toBeInstanceOf(ReservationReleasedError);
      expect(await store.levels(a)).toEqual([{ sku: a, available: 4, reserved: 0 }]);
    });

    it('when 20 orders race for the last 3 units, then exactly 3 win and stock is conserved', async () => {
      const a = await sku(3);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, () => store.reserve(randomUUID(), [{ sku: a, quantity: 1 }])),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
      expect(outcomes.filter((o) => o.status === 'rejected').every((o) => o.reason instanceof OutOfStockError)).toBe(
        true,
      );
      expect(await store.levels(a)).toEqual([{ sku: a, available: 0, reserved: 3 }]);
    });

    it('when two orders lock two SKUs in opposite line order, then neither deadlocks', async () => {
      const a = await sku(50);
      const b = await sku(50);
      const work = Array.from({ length: 20 }, (_, i) =>
        store.reserve(
          randomUUID(),
          i % 2
            ? [
                { sku: a, quantity: 1 },
                { sku: b, quantity: 1 },
              ]
            : [
                { sku: b, quantity: 1 },
                { sku: a, quantity: 1 },
              ],
        ),
      );
      await Promise.all(work);
      expect(await store.levels(a)).toEqual([{ sku: a, available: 30, reserved: 20 }]);
      expect(await store.levels(b)).toEqual([{ sku: b, available: 30, reserved: 20 }]);
    });

    it('when a late reserve attempt is still in flight as the release runs, then the stock still ends released', async () => {
      // A reserve attempt that outlived its activity timeout: the saga compensates (release) while
      // the attempt's transaction is still open. Here it is held open by a row lock on the SKU.
      const a = await sku(5);
      const orderId = randomUUID();
      const holder = await heldStockRow(db, a);
      const lateReserve = store.reserve(orderId, [{ sku: a, quantity: 2 }]).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      await new Promise((resolve) => setTimeout(resolve, 200)); // the reserve has inserted its row and waits
      const release = store.release(orderId);
      await new Promise((resolve) => setTimeout(resolve, 200)); // the release runs into the reserve
      await holder.let();
      await Promise.all([lateReserve, release]);

      expect(await store.reservationStatus(orderId)).toBe('RELEASED');
      expect(await store.levels(a)).toEqual([{ sku: a, available: 5, reserved: 0 }]);
    });
  });
}

/**
 * Locks a stock row from a transaction of its own until `let()` commits it, so a reserve of that
 * SKU waits mid-transaction. Only PostgreSQL has concurrent transactions; on the embedded engine
 * (one connection, writers serialised) there is nothing to hold, and `let()` does nothing.
 */
async function heldStockRow(db: SqlClient, sku: string): Promise<{ let: () => Promise<void> }> {
  if (db.kind !== 'postgres') return { let: () => Promise.resolve() };
  let letGo!: () => void;
  const released = new Promise<void>((resolve) => (letGo = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const done = db.transaction(async (tx) => {
    await tx.query('SELECT sku FROM stock WHERE sku = $1 FOR UPDATE', [sku]);
    locked();
    await released;
  });
  await isLocked;
  return {
    let: async () => {
      letGo();
      await done;
    },
  };
}

// Workers started together on a fresh database all migrate it at once; every one must succeed.
describe.skipIf(!postgresUrl)('migrations on a fresh PostgreSQL database', () => {
  it('when several processes migrate a fresh database at once, then each succeeds and every migration runs once', async () => {
    const fresh = await createTemporaryDatabase();
    const clients = Array.from({ length: 6 }, () => postgresClient(fresh.url!));
    try {
      const applied = await Promise.all(clients.map((client) => migrate(client)));
      expect(applied.flat().sort()).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      await Promise.all(clients.map((client) => client.close()));
      await fresh.drop();
    }
  });
});
