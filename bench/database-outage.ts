// How long a Temporal cluster on PostgreSQL takes to serve again after its database was
// unreachable. A cluster as the tests run it (frontend, two history nodes, matching, internal
// worker) reaches PostgreSQL through a TCP proxy; a worker runs the saga's shape (bench/
// baseline-workflows.ts: status upserts, local activities, one regular activity) and a client
// starts one every 200 ms, retrying a refused start, and waits for each to end. The proxy is cut
// (connections refused, open ones dropped) for --outage seconds, then restored; this is repeated
// --repeats times. Reported per outage: how long starts were still refused after the restore,
// when the sagas started before or during the outage had all ended, and how long after the
// restore a new saga's start-to-end took its normal time again (every later one too).
//
//   npm run bench:outage [-- --outage 20 --repeats 3 --json --keep-logs]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { ensureTools } from '../scripts/toolchain.mjs';
import { setUpSchemas, startTemporalCluster } from '../scripts/temporal-cluster.mjs';
import { createTemporaryDatabase } from '../test/harness/postgres.js';
import { startTcpProxy } from '../test/support/tcp-proxy.js';

const { values: given } = parseArgs({
  options: {
    outage: { type: 'string', default: '20' },
    repeats: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
    'keep-logs': { type: 'boolean', default: false },
  },
});
const outageSeconds = Number(given.outage);
const repeats = Number(given.repeats);
if (!Number.isFinite(outageSeconds) || outageSeconds <= 0 || outageSeconds > 600) {
  console.error(`--outage must be a number of seconds between 0 and 600 (got ${given.outage})`);
  process.exit(2);
}
if (!Number.isInteger(repeats) || repeats < 1 || repeats > 20) {
  console.error(`--repeats must be a whole number from 1 to 20 (got ${given.repeats})`);
  process.exit(2);
}

const START_EVERY_MS = 200;
/** How long after a restore the measurement waits for the cluster to serve normally again. */
const RECOVERY_LIMIT_MS = 300_000;
/** Normal operation before the first outage and between outages. */
const SETTLE_MS = 15_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (what: string) => process.stderr.write(`[outage] ${what}\n`);

interface Saga {
  /** When the first start was sent. */
  sentAt: number;
  /** When Temporal accepted the start (after retries). */
  acceptedAt?: number;
  endedAt?: number;
}

const tools = await ensureTools(['temporal', 'temporal-server', 'temporal-sql-tool']);
const persistence = await createTemporaryDatabase();
const visibility = await createTemporaryDatabase();
const dropDatabases = () => Promise.all([persistence.drop(), visibility.drop()]);
if (!persistence.url || !visibility.url) {
  await dropDatabases();
  console.error(`this measurement needs PostgreSQL: ${persistence.reason ?? visibility.reason}`);
  process.exit(1);
}
const server = new URL(persistence.url);
const login = { user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) };
const databases = {
  persistence: server.pathname.slice(1),
  visibility: new URL(visibility.url).pathname.slice(1),
};
const dir = mkdtempSync(join(tmpdir(), 'order-saga-outage-'));
const proxy = await startTcpProxy(`${server.hostname}:${server.port || 5432}`);
const [proxyHost, proxyPort] = proxy.address.split(':');

let cluster: Awaited<ReturnType<typeof startTemporalCluster>> | undefined;
let worker: Worker | undefined;
let stopping = false;
const sagas: Saga[] = [];
try {
  await setUpSchemas(
    tools['temporal-sql-tool']!,
    { host: server.hostname, port: Number(server.port || 5432), ...login },
    databases,
  );
  progress('starting the cluster');
  cluster = await startTemporalCluster({
    serverBinary: tools['temporal-server']!,
    temporalCli: tools.temporal!,
    dataDir: join(dir, 'temporal'),
    postgres: { host: proxyHost!, port: Number(proxyPort), ...login },
    databases,
  });
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const taskQueue = 'outage';
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address: cluster.address }),
    namespace: cluster.namespace,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('./baseline-workflows.ts', import.meta.url)),
    activities: { nothing: async (): Promise<void> => {} },
  });
  const running = worker.run();
  const client = new Client({
    connection: await Connection.connect({ address: cluster.address }),
    namespace: cluster.namespace,
  });

  /** Starts one saga, retrying a refused start, and waits for it to end. */
  async function oneSaga(n: number): Promise<void> {
    const saga: Saga = { sentAt: Date.now() };
    sagas.push(saga);
    const workflowId = `outage-${n}`;
    while (!stopping && saga.acceptedAt === undefined) {
      try {
        await client.workflow.start('sagaShape', { workflowId, taskQueue });
        saga.acceptedAt = Date.now();
      } catch (error) {
        // Accepted by an earlier try whose answer was lost: the saga runs.
        if ((error as Error).name === 'WorkflowExecutionAlreadyStartedError') saga.acceptedAt = Date.now();
        else await sleep(250);
      }
    }
    while (!stopping && saga.endedAt === undefined) {
      try {
        await client.workflow.getHandle(workflowId).result();
        saga.endedAt = Date.now();
      } catch {
        await sleep(250);
      }
    }
  }
  let n = 0;
  const inFlight = new Set<Promise<void>>();
  const load = setInterval(() => {
    const saga = oneSaga((n += 1)).finally(() => inFlight.delete(saga));
    inFlight.add(saga);
  }, START_EVERY_MS);

  const latency = (saga: Saga) => saga.endedAt! - saga.sentAt;
  const percentile = (values: number[], p: number) =>
    [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))] ?? NaN;

  await sleep(SETTLE_MS);
  const results = [];
  for (let round = 1; round <= repeats; round += 1) {
    const normal = sagas.filter((saga) => saga.endedAt !== undefined && saga.sentAt > Date.now() - SETTLE_MS);
    const normalP99 = percentile(normal.map(latency), 99);
    /** A start-to-end within this took its normal time. */
    const normalLimit = Math.max(1_000, 2 * normalP99);
    const cutAt = Date.now();
    await proxy.cut();
    progress(`outage ${round}/${repeats}: PostgreSQL cut for ${outageSeconds} s`);
    await sleep(outageSeconds * 1_000);
    await proxy.restore();
    const restoredAt = Date.now();
    progress(`outage ${round}/${repeats}: restored; waiting for the cluster to serve normally`);
    // Recovered: from the first saga sent after the restore from which on every saga sent ended
    // within the normal limit, for at least 10 s of sagas.
    let recoveredAt: number | undefined;
    while (Date.now() - restoredAt < RECOVERY_LIMIT_MS) {
      await sleep(1_000);
      const after = sagas.filter((saga) => saga.sentAt >= restoredAt && saga.sentAt < Date.now() - normalLimit);
      const slowOrOpen = after.filter((saga) => saga.endedAt === undefined || latency(saga) > normalLimit);
      const lastSlow = slowOrOpen.at(-1);
      const fine = after.filter((saga) => !lastSlow || saga.sentAt > lastSlow.sentAt);
      const backlogEnded = sagas.filter((saga) => saga.sentAt < restoredAt).every((saga) => saga.endedAt !== undefined);
      if (backlogEnded && fine.length >= 10_000 / START_EVERY_MS) {
        recoveredAt = fine[0]!.sentAt;
        break;
      }
    }
    const before = sagas.filter((saga) => saga.sentAt < restoredAt);
    const sentAfter = sagas.filter((saga) => saga.sentAt >= restoredAt && saga.acceptedAt !== undefined);
    const secondsAfterRestore = (at: number) => Math.round((at - restoredAt) / 100) / 10;
    const result = {
      round,
      outageSeconds,
      normalP99Ms: normalP99,
      sagasSentDuringOutage: sagas.filter((saga) => saga.sentAt >= cutAt && saga.sentAt < restoredAt).length,
      /** Every saga sent before the restore had ended by then (null: not within the limit). */
      backlogEndedAfterS: before.every((saga) => saga.endedAt !== undefined)
        ? secondsAfterRestore(Math.max(...before.map((saga) => saga.endedAt!)))
        : null,
      /** The longest a start sent after the restore waited to be accepted (the client's own retries included). */
      slowestStartAfterRestoreS: Math.max(0, ...sentAfter.map((saga) => saga.acceptedAt! - saga.sentAt)) / 1_000,
      /** From the saga sent this long after the restore on, every saga ended within its normal time. */
      normalAgainAfterS: recoveredAt === undefined ? null : secondsAfterRestore(recoveredAt),
    };
    results.push(result);
    progress(`outage ${round}/${repeats}: ${JSON.stringify(result)}`);
    await sleep(SETTLE_MS);
  }
  clearInterval(load);
  await Promise.race([Promise.all(inFlight), sleep(60_000)]);
  stopping = true;
  worker.shutdown();
  await running;
  if (given.json) console.log(JSON.stringify({ outageSeconds, startEveryMs: START_EVERY_MS, results }, null, 2));
  else {
    console.log(`PostgreSQL unreachable for ${outageSeconds} s, a saga's shape started every ${START_EVERY_MS} ms:`);
    console.log(
      '| outage | start to end before (p99) | sagas sent during it | all of them ended | slowest start after the restore | normal again from |',
    );
    console.log('| --- | --- | --- | --- | --- | --- |');
    const notWithin = `not within ${RECOVERY_LIMIT_MS / 1_000} s`;
    for (const r of results)
      console.log(
        `| ${r.round} | ${r.normalP99Ms} ms | ${r.sagasSentDuringOutage} | ` +
          `${r.backlogEndedAfterS === null ? notWithin : `+${r.backlogEndedAfterS} s`} | ${r.slowestStartAfterRestoreS} s | ` +
          `${r.normalAgainAfterS === null ? notWithin : `+${r.normalAgainAfterS} s`} |`,
      );
    console.log('(+N s: after the restore; "normal": within twice the p99 before, at least 1 s.)');
  }
} finally {
  stopping = true;
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await cluster?.close();
  await proxy.close();
  await dropDatabases();
  if (given['keep-logs']) progress(`the cluster's logs are in ${join(dir, 'temporal')}`);
  else rmSync(dir, { recursive: true, force: true });
}
