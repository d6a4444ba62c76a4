// A minimal SQL client with transactions, over PostgreSQL (`pg`) or embedded PGlite.
// Both speak the same SQL, so the inventory store has one implementation.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { isProcessRunning } from '../../lib/process-running.js';
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
      // A connection that drops while this transaction holds it, between two queries, makes the
      // client emit 'error' with no query to fail: unheard, that crashed the worker. The next
      // query fails instead, and the broken client is discarded on release, not pooled again.
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken = error;
      };
      client.on('error', onError);
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
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken ??= rollbackError;
        });
        throw error;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/** A second process asked for an embedded database that another running process has open. */
export class EmbeddedDatabaseInUseError extends Error {
  constructor(dataDir: string, pid: number) {
    super(
      `the embedded database in ${dataDir} is open in process ${pid}; it serves one process only. ` +
        'Run a single worker on it, or set DATABASE_URL to PostgreSQL to run several workers.',
    );
    this.name = 'EmbeddedDatabaseInUseError';
  }
}

/**
 * Claims `dataDir` for this process (`<dataDir>.lock` beside it, holding its pid); returns the
 * release. A lock left by a process that is no longer running (killed) is taken over.
 */
function claimEmbeddedDirectory(dataDir: string): () => void {
  const lockFile = `${dataDir.replace(/\/+$/, '')}.lock`;
  for (;;) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
      return () => rmSync(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(lockFile, 'utf8'));
      if (Number.isInteger(holder) && holder !== process.pid && isProcessRunning(holder))
        throw new EmbeddedDatabaseInUseError(dataDir, holder);
      rmSync(lockFile, { force: true });
    }
  }
}

/**
 * Opens (or creates) an embedded PGlite database in `dataDir`; "memory://" keeps it in memory.
 * PGlite is one process's database: a second process opening the same folder is refused.
 */
export async function embeddedClient(dataDir: string): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  let release = () => {};
  if (!dataDir.startsWith('memory://')) {
    mkdirSync(dataDir, { recursive: true });
    release = claimEmbeddedDirectory(dataDir);
  }
  const db: PGliteInstance = await PGlite.create(dataDir).catch((error: unknown) => {
    release();
    throw error;
  });
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
    close: async () => {
      await db.close();
      release();
    },
  };
}
