// A minimal SQL client with transactions, over PostgreSQL (`pg`) or embedded PGlite.
// Both speak the same SQL, so the inventory store has one implementation.
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import type { PGlite as PGliteInstance } from '@electric-sql/pglite';

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface SqlClient {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** "postgres" or "embedded", for logs and readiness. */
  readonly kind: 'postgres' | 'embedded';
}

/** Connects to PostgreSQL at `url`. */
export function postgresClient(url: string, maxConnections = 10): SqlClient {
  const pool = new pg.Pool({ connectionString: url, max: maxConnections, connectionTimeoutMillis: 5_000 });
  // An idle client's connection dropping (database restart) must not crash the process.
  pool.on('error', () => undefined);
  const query = async <Row>(runner: pg.Pool | pg.PoolClient, sql: string, params?: unknown[]) => {
    const result = await runner.query(sql, params);
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  };
  return {
    kind: 'postgres',
    query: (sql, params) => query(pool, sql, params),
    exec: async (sql) => void (await pool.query(sql)),
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const tx: SqlClient = {
          kind: 'postgres',
          query: (sql, params) => query(client, sql, params),
          exec: async (sql) => void (await client.query(sql)),
          transaction: (inner) => inner(tx),
          close: () => Promise.resolve(),
        };
        const result = await work(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/** Opens (or creates) an embedded PGlite database in `dataDir`; "memory://" keeps it in memory. */
export async function embeddedClient(dataDir: string): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const db: PGliteInstance = await PGlite.create(dataDir);
  const wrap =
    (runner: Pick<PGliteInstance, 'query'>): SqlClient['query'] =>
    async <Row>(sql: string, params?: unknown[]) => {
      const result = await runner.query<Row>(sql, params);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    };
  return {
    kind: 'embedded',
    query: wrap(db),
    exec: async (sql) => void (await db.exec(sql)),
    // PGlite has one connection; its transaction() holds it exclusively, which serialises writers.
    transaction: (work) =>
      db.transaction(async (tx) => {
        const inner: SqlClient = {
          kind: 'embedded',
          query: wrap(tx),
          exec: async (sql) => void (await tx.exec(sql)),
          transaction: (w) => w(inner),
          close: () => Promise.resolve(),
        };
        return work(inner);
      }),
    close: () => db.close(),
  };
}
