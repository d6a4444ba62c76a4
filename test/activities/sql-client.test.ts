// The PostgreSQL client when the database connection drops under it. A connection that drops
// while a transaction holds it, between two of its queries, makes pg's client emit 'error' with
// no query to fail; without a listener that is an uncaught exception, and the worker process died
// (the chaos suite's database cut showed it once the tier restarted and reported such exits).
import { afterAll, describe, expect, inject, it } from 'vitest';
import { postgresClient } from '../../activities/inventory/sql-client.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const postgresUrl = inject('postgresUrl');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let proxy: TcpProxy | undefined;

afterAll(async () => {
  await proxy?.close();
});

// Skipped only when the harness found no PostgreSQL; it printed why at the start of the run.
describe.skipIf(!postgresUrl)('PostgreSQL client', () => {
  it('when the connection drops between two queries of a transaction, then that transaction fails, the process goes on, and the next one works once the database is back', async () => {
    const target = new URL(postgresUrl!);
    proxy = await startTcpProxy(`${target.hostname}:${target.port || 5432}`);
    const viaProxy = new URL(postgresUrl!);
    viaProxy.host = proxy.address;
    const db = postgresClient(viaProxy.toString(), 2);
    try {
      const dropped = db.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await proxy!.cut(); // the connection drops while the transaction holds it, no query running
        await sleep(300);
        await tx.query('SELECT 1');
      });
      await expect(dropped).rejects.toThrow();
      await proxy.restore();
      const answer = await db.transaction(async (tx) => (await tx.query<{ n: number }>('SELECT 1 AS n')).rows[0]?.n);
      expect(answer).toBe(1);
    } finally {
      await db.close().catch(() => undefined);
    }
  });
});
