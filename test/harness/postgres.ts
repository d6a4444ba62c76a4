// Finds a PostgreSQL server for the inventory tests and makes a throw-away database on it.
// TEST_DATABASE_URL names one; otherwise the local server on 127.0.0.1:5432 is tried. A tier that
// needs a database of its own (the chaos tier: its reconciliation reads every reservation) makes
// one more on the same server.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface TemporaryDatabase {
  url: string | undefined;
  reason: string | undefined;
  drop(): Promise<void>;
}

export async function createTemporaryDatabase(
  adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
): Promise<TemporaryDatabase> {
  const name = `order_saga_test_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    await admin.end().catch(() => undefined);
    const why = error instanceof Error ? error.message : String(error);
    return {
      url: undefined,
      reason: `${adminUrl.replace(/\/\/[^@]*@/, '//…@')}: ${why}. Set TEST_DATABASE_URL to a server where the user may CREATE DATABASE.`,
      drop: () => Promise.resolve(),
    };
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    reason: undefined,
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin.end().catch(() => undefined);
    },
  };
}
