// Versioned schema migrations for the inventory store. Append only: never edit a shipped one.
import type { SqlClient } from './sql-client.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'stock and reservations',
    sql: `
      CREATE TABLE stock (
        sku        TEXT PRIMARY KEY,
        available  INTEGER NOT NULL CHECK (available >= 0),
        reserved   INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      CREATE TABLE reservations (
        order_id    TEXT PRIMARY KEY,
        status      TEXT NOT NULL CHECK (status IN ('RESERVED', 'RELEASED')),
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        released_at TIMESTAMPTZ
      );
      CREATE TABLE reservation_lines (
        order_id TEXT NOT NULL REFERENCES reservations (order_id),
        sku      TEXT NOT NULL REFERENCES stock (sku),
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (order_id, sku)
      );`,
  },
  {
    version: 2,
    name: 'reservations by creation time',
    // Reconciliation reads the reservations made in a time window.
    sql: `CREATE INDEX reservations_created_at ON reservations (created_at);`,
  },
  {
    version: 3,
    name: 'stock changes by idempotency key',
    // An operator's stock change sent with an Idempotency-Key, stored in the transaction that
    // applies it: a retry of a change whose answer was lost (a slow worker) answers this row
    // instead of applying the change again. Keys are per operator (requested_by).
    sql: `
      CREATE TABLE stock_changes (
        requested_by    TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        sku             TEXT NOT NULL,
        change          JSONB NOT NULL,
        before          JSONB,
        after           JSONB,
        audit_event_id  TEXT NOT NULL,
        audited_at      TIMESTAMPTZ,
        created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (requested_by, idempotency_key)
      );`,
  },
];

/** Held (per transaction) by whoever changes the schema, so processes starting together wait in turn. */
const MIGRATION_LOCK = 7233001;

/**
 * Applies the migrations not yet recorded in schema_migrations, each in its own transaction.
 * A transaction-scoped advisory lock makes concurrent starters wait instead of racing, also
 * while the bookkeeping table itself is created (CREATE TABLE IF NOT EXISTS alone is not safe
 * against a concurrent one: the loser fails on a duplicate type).
 */
export async function migrate(db: SqlClient): Promise<number[]> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
  });
  const applied: number[] = [];
  for (const migration of MIGRATIONS) {
    const ran = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const done = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
      if (done.rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (ran) applied.push(migration.version);
  }
  return applied;
}
