// How long a Temporal cluster on PostgreSQL takes to serve again after its database was
// unreachable. A cluster as the tests run it (frontend, two history nodes, matching, internal
// worker) reaches PostgreSQL through a TCP proxy; a worker runs the saga's shape (bench/
// baseline-workflows.ts: status upserts, local activities, one regular activity) and a client
// starts one every 200 ms, retrying a refused start, and waits for each to end. The proxy is cut
// (connections refused, open ones dropped) for --outage seconds, then restored; this is repeated
// --repeats times. Reported per outage: when the last start was refused, when the sagas sent
// before the restore had all ended, the slowest start sent after it, and from when on a new
// saga's start-to-end took its normal time again (every later one too). The client retries a
// refused start every 250 ms; the product's starter backs off up to 15 s (workers/order-starter.ts),
// which real orders may wait on top. The report also goes to .data/outage-report.json.
//
//   npm run bench:outage [-- --outage 20 --repeats 3 --json --keep-logs]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
import { percentile } from './percentile.js';

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
  console.error(`--outage must be a number of seconds above 0, at most 600 (got ${given.outage})`);
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
/** Before the first settling: the first sagas meet cold caches and a fresh worker. */
const WARM_UP_MS = 10_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (what: string) => process.stderr.write(`[outage] ${what}\n`);

interface Saga {
  /** When the first start was sent. */
  sentAt: number;
  /** When Temporal accepted the start (after retries). */
  acceptedAt?: number;
  /** When a start of it was last refused. */
  refusedAt?: number;
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
let proxy: Awaited<ReturnType<typeof startTcpProxy>> | undefined;
let cluster: Awaited<ReturnType<typeof startTemporalCluster>> | undefined;
let worker: Worker | undefined;
let workerRunning: Promise<void> | undefined;
const connections: { close(): Promise<void> }[] = [];
let stopping = false;
const sagas: Saga[] = [];

let load: NodeJS.Timeout | undefined;
let cleaningUp: Promise<void> | undefined;
/** Stops everything this run started and drops its databases; once, whoever asks first. */
const cleanUp = () =>
  (cleaningUp ??= (async () => {
    stopping = true;
    clearInterval(load);
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await workerRunning?.catch(() => undefined);
    await cluster?.close();
    await proxy?.close();
    await dropDatabases();
    if (given['keep-logs']) progress(`the cluster's logs are in ${join(dir, 'temporal')}`);
    else rmSync(dir, { recursive: true, force: true });
    // Last: a client call still retrying throws once its channel is closed.
    for (const connection of connections) await connection.close().catch(() => undefined);
  })());
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    progress(`${signal}: stopping the cluster and dropping its databases`);
    void cleanUp().finally(() => process.exit(130));
  });

try {
  proxy = await startTcpProxy(`${server.hostname}:${server.port || 5432}`);
  const [proxyHost, proxyPort] = proxy.address.split(':');
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
  // Signals are this script's (it stops the cluster and drops the databases), not the worker's.
  Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
  const taskQueue = 'outage';
  const workerConnection = await NativeConnection.connect({ address: cluster.address });
  connections.push(workerConnection);
  worker = await Worker.create({
    connection: workerConnection,
    namespace: cluster.namespace,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('./baseline-workflows.ts', import.meta.url)),
    activities: { nothing: async (): Promise<void> => {} },
  });
  workerRunning = worker.run();
  const clientConnection = await Connection.connect({ address: cluster.address });
  connections.unshift(clientConnection);
  const client = new Client({ connection: clientConnection, namespace: cluster.namespace });

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
        else {
          saga.refusedAt = Date.now();
          await sleep(250);
        }
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
  load = setInterval(() => {
    const saga = oneSaga((n += 1)).finally(() => inFlight.delete(saga));
    inFlight.add(saga);
  }, START_EVERY_MS);

  const latency = (saga: Saga) => saga.endedAt! - saga.sentAt;

  await sleep(WARM_UP_MS + SETTLE_MS);
  const results = [];
  for (let round = 1; round <= repeats; round += 1) {
    // The settling window's sagas, those sent in its last 2 s left out (some are still running).
    const now = Date.now();
    const normal = sagas.filter((saga) => saga.sentAt > now - SETTLE_MS && saga.sentAt < now - 2_000);
    const normalP95 = percentile(
      normal.map((saga) => (saga.endedAt ?? now) - saga.sentAt).sort((a, b) => a - b),
      95,
    );
    /** A start-to-end within this took its normal time. */
    const normalLimit = Math.max(1_000, 2 * normalP95);
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
      normalP95Ms: normalP95,
      sagasSentDuringOutage: sagas.filter((saga) => saga.sentAt >= cutAt && saga.sentAt < restoredAt).length,
      /** A start was last refused then (0: none after the restore). */
      lastStartRefusedAfterS: Math.max(
        0,
        ...sagas
          .filter((saga) => (saga.refusedAt ?? 0) > restoredAt)
          .map((saga) => secondsAfterRestore(saga.refusedAt!)),
      ),
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
  let lastWait: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(inFlight), new Promise((resolve) => (lastWait = setTimeout(resolve, 60_000)))]);
  clearTimeout(lastWait);
  const report = { outageSeconds, startEveryMs: START_EVERY_MS, results };
  mkdirSync('.data', { recursive: true });
  writeFileSync('.data/outage-report.json', `${JSON.stringify(report, null, 2)}\n`);
  if (given.json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(`PostgreSQL unreachable for ${outageSeconds} s, a saga's shape started every ${START_EVERY_MS} ms:`);
    console.log(
      '| outage | start to end before (p95) | sagas sent during it | last start refused | all of them ended | slowest start after the restore | normal again from |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    const notWithin = `not within ${RECOVERY_LIMIT_MS / 1_000} s`;
    for (const r of results)
      console.log(
        `| ${r.round} | ${r.normalP95Ms} ms | ${r.sagasSentDuringOutage} | +${r.lastStartRefusedAfterS} s | ` +
          `${r.backlogEndedAfterS === null ? notWithin : `+${r.backlogEndedAfterS} s`} | ${r.slowestStartAfterRestoreS} s | ` +
          `${r.normalAgainAfterS === null ? notWithin : `+${r.normalAgainAfterS} s`} |`,
      );
    console.log(
      '(+N s: after the restore; "normal": within twice the p95 before, at least 1 s; .data/outage-report.json)',
    );
  }
} finally {
  await cleanUp();
}
