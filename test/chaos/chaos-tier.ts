// Chaos tier: the product as the chaos suite breaks it: every process its own, so it can be killed,
// frozen and started again without touching the servers other test files share. Temporal (a
// cluster shaped as production runs it: frontend, two history nodes, matching and the internal
// worker as processes of their own on PostgreSQL with SQL visibility; or the dev server on SQLite)
// and a nats-server with their data on disk, two workers (their starters on one durable
// consumer), one ingress, the payment sandbox, and PostgreSQL behind TCP proxies (one for the
// product, one for the Temporal cluster) that can be cut to make the database unreachable.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { freePort, startNats, startTemporal, stopProcess } from '../../scripts/local-servers.mjs';
import { setUpSchemas, SMALL_POOL_SIZES, startTemporalCluster } from '../../scripts/temporal-cluster.mjs';
import { ensureTools } from '../../scripts/toolchain.mjs';
import { openInventory } from '../../activities/inventory/open-inventory.js';
import type { InventoryStore } from '../../activities/inventory/inventory-store.js';
import { startPaymentGateway } from '../../sandbox/payment-gateway/server.js';
import {
  productEnv,
  recordPid,
  type ChaosProcess,
  spawnProductProcess,
  waitUntilReady,
  type ProductEntrypoint,
  type ProductProcess,
} from '../support/processes.js';
import { PaymentSandbox } from '../support/payment-sandbox.js';
import { registerIngressOrigin, unregisterIngressOrigin } from '../support/api-contract.js';
import { startNatsCluster } from '../support/nats-cluster.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { takeRunLock } from '../support/run-lock.js';
import { createTemporaryDatabase } from '../harness/postgres.js';
import { loadConfig } from '../../lib/config.js';
import { dataConverter } from '../../lib/temporal-client.js';

export interface ChaosTier {
  /** Every ingress's base URL; clients move to another when one does not answer. */
  apis: string[];
  /** Which Temporal the tier runs on. */
  temporalKind: TemporalKind;
  /** Temporal's processes: the dev server alone, or the cluster's frontend, history-1, history-2, matching, worker. */
  temporal: ChaosProcess[];
  /** PostgreSQL as the Temporal cluster reaches it (the cluster only); cut() makes it unreachable. */
  temporalDatabase: Pick<TcpProxy, 'cut' | 'restore'> | undefined;
  /**
   * The history nodes' way to the visibility database (the cluster only): cut, the search index
   * stops following the histories (as when visibility writes fall behind) and can still be read.
   */
  temporalVisibilityWrites: TcpProxy | undefined;
  /** The Prometheus endpoint of each Temporal cluster process, by name (empty for the dev server). */
  temporalMetrics: Record<string, string>;
  /** One nats-server, or the nodes of a cluster. */
  nats: ChaosProcess[];
  ingresses: ChaosProcess[];
  workers: ChaosProcess[];
  natsUrls: string[];
  gateway: PaymentSandbox;
  /** PostgreSQL as the workers reach it; cut() makes it unreachable for them. */
  database: TcpProxy;
  /** The inventory, read directly (not through the proxy), for the checker. */
  inventory: InventoryStore;
  /** Temporal client on this tier's server, and the server's address. */
  temporalClient: Client;
  temporalAddress: string;
  /** The workers' task queue, and the Worker Deployment they join (named alike). */
  taskQueue: string;
  sku: string;
  stock: number;
  /** When the tier started: its sagas, charges and reservations are all after this. */
  startedAt: Date;
  /** What each product process printed, for a failure's report. */
  output(): string;
  /** Product processes that exited without the suite killing them (each was started again). */
  unexpectedExits: UnexpectedExit[];
  /**
   * Starts one more worker, from `entry` (another build of the product, e.g.) with `env` added to
   * the tier's settings; resolves once it is ready. The tier stops it on close.
   */
  addWorker(name: string, entry: ProductEntrypoint, env?: Record<string, string>): Promise<ChaosProcess>;
  close(): Promise<void>;
}

/** A product process that exited by itself: which and how, and the end of what it printed. */
export interface UnexpectedExit {
  summary: string;
  lastOutput: string;
}

/** The Temporal dev server (one process, SQLite), or a cluster on PostgreSQL as production runs it. */
export type TemporalKind = 'dev' | 'cluster';

/**
 * The shape of the product: which Temporal, how many NATS nodes (3 = a JetStream cluster, streams
 * with 3 replicas), ingresses and workers.
 */
export interface ChaosTopology {
  temporal: TemporalKind;
  natsNodes: 1 | 3;
  ingresses: number;
  workers: number;
}

/** The Temporal a tier runs on when its caller does not say: CHAOS_TEMPORAL, else the cluster. */
export function temporalKindFromEnv(value = process.env.CHAOS_TEMPORAL ?? 'cluster'): TemporalKind {
  if (value !== 'dev' && value !== 'cluster') throw new Error(`CHAOS_TEMPORAL must be dev or cluster (got "${value}")`);
  return value;
}

/** Saga timings for the suite: retries ride out the faults (a few seconds each), as production's would. */
const CHAOS_ENV = {
  LOG_LEVEL: 'warn',
  ACTIVITY_TIMEOUT: '3s',
  RETRY_INITIAL_INTERVAL: '200ms',
  RETRY_MAX_INTERVAL: '1s',
  STEP_MAX_ATTEMPTS: '40',
  COMPENSATION_MAX_ATTEMPTS: '60',
  PAYMENT_TIMEOUT: '1s',
  BREAKER_HALF_OPEN_AFTER: '1s',
  // Short, so a frozen worker's held events are redelivered to the other worker within the test.
  STARTER_ACK_WAIT: '4s',
  APPROVAL_THRESHOLD: '5000',
};

/** Wraps a server child process that `launch` starts on fixed ports and data. */
function serverProcess(name: string, launch: () => Promise<ChildProcess>, first: ChildProcess): ChaosProcess {
  let child = first;
  return {
    name,
    async kill() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async start() {
      child = await launch();
    },
    freeze: () => child.kill('SIGSTOP'),
    thaw: () => child.kill('SIGCONT'),
    async stop() {
      child.kill('SIGCONT');
      await stopProcess(child);
    },
  };
}

/**
 * Wraps a product process (worker or ingress) that restarts with the same environment. One that
 * exits by itself (not killed or stopped by the suite) is recorded in `unexpectedExits` with
 * the end of its output and started again a second later, as a supervisor (Kubernetes, Compose,
 * `npm start`) would: the run goes on, and the exit is a finding of its own.
 */
function productProcess(
  name: string,
  entry: ProductEntrypoint,
  env: Record<string, string>,
  readyUrl: string,
  logs: string[],
  unexpectedExits: UnexpectedExit[],
): ChaosProcess & { output(): string } {
  let running: ProductProcess | undefined;
  let closing = false;
  /** The runs the suite ended itself (kill, stop): their exits are meant. */
  const ended = new WeakSet<ProductProcess>();
  const launch = async (): Promise<void> => {
    const current = spawnProductProcess(entry, env);
    running = current;
    current.child.once('exit', (code, signal) => {
      if (ended.has(current) || closing) return;
      const output = current.output();
      unexpectedExits.push({
        summary: `${name} exited by itself (code ${code}, signal ${signal})`,
        lastOutput: output.slice(-3_000),
      });
      logs.push(`--- ${name} (exited by itself)\n${output}`);
      setTimeout(() => {
        if (!closing && running === current) launch().catch(() => undefined);
      }, 1_000);
    });
    await waitUntilReady(readyUrl, current, 90_000);
  };
  return {
    name,
    output: () => running?.output() ?? '(not started)',
    async kill() {
      if (!running) return;
      ended.add(running);
      await running.kill();
      logs.push(`--- ${name} (killed)\n${running.output()}`);
    },
    start: launch,
    freeze: () => running?.child.kill('SIGSTOP'),
    thaw: () => running?.child.kill('SIGCONT'),
    async stop() {
      closing = true;
      running?.child.kill('SIGCONT');
      await running?.stop();
    },
  };
}

export async function startChaosTier(
  name: string,
  topology: ChaosTopology = { temporal: temporalKindFromEnv(), natsNodes: 1, ingresses: 1, workers: 2 },
  /** Settings of every product process beyond the suite's (CHAOS_ENV). */
  extraEnv: Record<string, string> = {},
): Promise<ChaosTier> {
  if (topology.temporal !== 'cluster') return startTier(name, topology, extraEnv);
  // One cluster tier at a time in a run (test/support/run-lock.ts says why).
  const release = await takeRunLock('temporal-cluster');
  try {
    const tier = await startTier(name, topology, extraEnv);
    return {
      ...tier,
      async close() {
        try {
          await tier.close();
        } finally {
          release();
        }
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}

async function startTier(name: string, topology: ChaosTopology, extraEnv: Record<string, string>): Promise<ChaosTier> {
  const startedAt = new Date();
  const sharedPostgresUrl = inject('postgresUrl');
  if (!sharedPostgresUrl) throw new Error('the chaos tier needs PostgreSQL');
  // A database of its own, as a deployment has: the reconciliation reads every reservation in it.
  const ownDatabase = await createTemporaryDatabase(sharedPostgresUrl);
  if (!ownDatabase.url) throw new Error(`the chaos tier could not make its database: ${ownDatabase.reason}`);
  const postgresUrl = ownDatabase.url;
  const dataDir = mkdtempSync(join(tmpdir(), `order-saga-${name}-`));
  const logs: string[] = [];
  const unexpectedExits: UnexpectedExit[] = [];
  const [startedTemporal, startedNats] = await Promise.allSettled([
    topology.temporal === 'cluster'
      ? startClusterTemporal(sharedPostgresUrl, dataDir, unexpectedExits)
      : startDevTemporal(dataDir),
    startNatsServers(name, topology, dataDir),
  ]);
  if (startedTemporal.status === 'rejected' || startedNats.status === 'rejected') {
    // One that started must not run on for the rest of the test run.
    await Promise.all([
      startedTemporal.status === 'fulfilled' && startedTemporal.value.close(),
      startedNats.status === 'fulfilled' && startedNats.value.close(),
    ]);
    await ownDatabase.drop();
    rmSync(dataDir, { recursive: true, force: true });
    throw startedTemporal.status === 'rejected'
      ? startedTemporal.reason
      : (startedNats as PromiseRejectedResult).reason;
  }
  const [temporal, natsServers] = [startedTemporal.value, startedNats.value];
  const temporalAddress = temporal.address;

  const sandbox = await startPaymentGateway(0);
  const database = await startTcpProxy(`${new URL(postgresUrl).hostname}:${new URL(postgresUrl).port || 5432}`);
  const proxiedUrl = new URL(postgresUrl);
  proxiedUrl.host = database.address;
  const inventory = await openInventory({ url: postgresUrl, embeddedDir: '' });
  const sku = `SKU-${name.toUpperCase()}-${randomUUID().slice(0, 8)}`;
  const stock = 1_000_000;
  await inventory.restock(sku, stock);

  const taskQueue = `orders-${name}-${randomUUID()}`;
  const env = (overrides: Record<string, string>) =>
    productEnv({
      ...CHAOS_ENV,
      TEMPORAL_ADDRESS: temporalAddress,
      NATS_URL: natsServers.urls.join(','),
      NATS_STREAM_REPLICAS: String(topology.natsNodes),
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: proxiedUrl.toString(),
      PAYMENT_GATEWAY_URL: sandbox.url,
      ...extraEnv,
      ...overrides,
    });
  const apis: string[] = [];
  const ingresses = [];
  for (let n = 1; n <= topology.ingresses; n += 1) {
    const [port, opsPort] = [await freePort(), await freePort()];
    apis.push(`http://127.0.0.1:${port}`);
    registerIngressOrigin(`http://127.0.0.1:${port}`); // answers checked against docs/openapi.json
    ingresses.push(
      productProcess(
        `ingress-${n}`,
        'ingress/main.ts',
        env({ PORT: String(port), METRICS_PORT: String(opsPort) }),
        `http://127.0.0.1:${port}/ready`,
        logs,
        unexpectedExits,
      ),
    );
  }
  const workers = [];
  for (let n = 1; n <= topology.workers; n += 1) {
    const opsPort = await freePort();
    workers.push(
      productProcess(
        `worker-${n}`,
        'workers/main.ts',
        env({ METRICS_PORT: String(opsPort) }),
        `http://127.0.0.1:${opsPort}/ready`,
        logs,
        unexpectedExits,
      ),
    );
  }
  const products: (ChaosProcess & { output(): string })[] = [...ingresses, ...workers];
  const stopAll = async () => {
    await Promise.all(products.map((p) => p.stop()));
    for (const api of apis) unregisterIngressOrigin(api);
    await inventory.db.close();
    await database.close();
    await ownDatabase.drop();
    await sandbox.close();
    await Promise.all([temporal.close(), natsServers.close()]);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await Promise.all(products.map((p) => p.start()));
  } catch (error) {
    // A process that could not start must not leave the others running for the rest of the test run.
    await stopAll();
    throw error;
  }
  const connection = await Connection.connect({ address: temporalAddress });
  // Encrypted payloads (PAYLOAD_ENCRYPTION_KEYS set): the tier's client reads them as the product's do.
  const payloadKeys = loadConfig({ PAYLOAD_ENCRYPTION_KEYS: extraEnv.PAYLOAD_ENCRYPTION_KEYS ?? '' }).payloadKeys;
  return {
    apis,
    temporalKind: topology.temporal,
    temporal: temporal.processes,
    temporalDatabase: temporal.database,
    temporalVisibilityWrites: temporal.visibilityWrites,
    temporalMetrics: temporal.metrics,
    nats: natsServers.processes,
    ingresses,
    workers,
    natsUrls: natsServers.urls,
    gateway: new PaymentSandbox(sandbox.url),
    database,
    inventory,
    temporalClient: new Client({
      connection,
      namespace: 'default',
      dataConverter: dataConverter(payloadKeys),
    }),
    temporalAddress,
    sku,
    stock,
    startedAt,
    output: () => [...logs, ...products.map((p) => `--- ${p.name}\n${p.output()}`)].join('\n'),
    unexpectedExits,
    taskQueue,
    async addWorker(workerName, entry, overrides = {}) {
      const opsPort = await freePort();
      const worker = productProcess(
        workerName,
        entry,
        env({ METRICS_PORT: String(opsPort), ...overrides }),
        `http://127.0.0.1:${opsPort}/ready`,
        logs,
        unexpectedExits,
      );
      products.push(worker);
      await worker.start();
      return worker;
    },
    async close() {
      await connection.close();
      await stopAll();
    },
  };
}

interface TemporalUnderTest {
  address: string;
  processes: ChaosProcess[];
  database: Pick<TcpProxy, 'cut' | 'restore'> | undefined;
  visibilityWrites: TcpProxy | undefined;
  metrics: Record<string, string>;
  close(): Promise<void>;
}

/** The Temporal CLI's dev server with its SQLite file on disk. */
async function startDevTemporal(dataDir: string): Promise<TemporalUnderTest> {
  const port = await freePort();
  const launch = async () => {
    const server = await startTemporal({ binary: inject('temporalBinary'), port, dataDir: join(dataDir, 'temporal') });
    recordPid(server.process.pid);
    return server.process;
  };
  const server = serverProcess('temporal', launch, await launch());
  return {
    address: `127.0.0.1:${port}`,
    processes: [server],
    database: undefined,
    visibilityWrites: undefined,
    metrics: {},
    close: () => server.stop(),
  };
}

/**
 * A Temporal cluster (frontend, two history nodes, matching, internal worker) on two databases of
 * its own on the tests' PostgreSQL, which it reaches through a proxy the suite can cut.
 */
async function startClusterTemporal(
  postgresUrl: string,
  dataDir: string,
  unexpectedExits: UnexpectedExit[],
): Promise<TemporalUnderTest> {
  const tools = await ensureTools(['temporal-server', 'temporal-sql-tool']);
  const persistence = await createTemporaryDatabase(postgresUrl);
  const visibility = await createTemporaryDatabase(postgresUrl);
  const dropDatabases = () => Promise.all([persistence.drop(), visibility.drop()]);
  if (!persistence.url || !visibility.url) {
    await dropDatabases();
    throw new Error(`the Temporal cluster could not make its databases: ${persistence.reason ?? visibility.reason}`);
  }
  const server = new URL(postgresUrl);
  const login = { user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) };
  const databases = {
    persistence: new URL(persistence.url).pathname.slice(1),
    visibility: new URL(visibility.url).pathname.slice(1),
  };
  const [proxy, visibilityWrites] = await Promise.all([
    startTcpProxy(`${server.hostname}:${server.port || 5432}`),
    startTcpProxy(`${server.hostname}:${server.port || 5432}`),
  ]);
  const reachedThrough = (through: TcpProxy) => {
    const [host, port] = through.address.split(':');
    return { host: host!, port: Number(port) };
  };
  const closeProxies = () => Promise.all([proxy.close(), visibilityWrites.close()]);
  /** The processes the suite killed or stopped: their exits are meant. */
  const meant = new WeakSet<ChildProcess>();
  let closing = false;
  try {
    await setUpSchemas(
      tools['temporal-sql-tool']!,
      { host: server.hostname, port: Number(server.port || 5432), ...login },
      databases,
    );
    const cluster = await startTemporalCluster({
      serverBinary: tools['temporal-server']!,
      temporalCli: inject('temporalBinary'),
      dataDir: join(dataDir, 'temporal'),
      postgres: { ...reachedThrough(proxy), ...login },
      historyVisibility: reachedThrough(visibilityWrites),
      databases,
      poolSizes: SMALL_POOL_SIZES,
      onStart: (child, started) => {
        recordPid(child.pid);
        // A server process that exits without the suite ending it is a finding, as a product process's is.
        child.once('exit', (code, signal) => {
          if (meant.has(child) || closing) return;
          const log = existsSync(started.logFile) ? readFileSync(started.logFile, 'utf8') : '';
          unexpectedExits.push({
            summary: `temporal ${started.name} exited by itself (code ${code}, signal ${signal})`,
            lastOutput: log.slice(-3_000),
          });
        });
      },
    });
    const ending = (member: (typeof cluster.members)[number]) => {
      const child = member.process();
      if (child) meant.add(child);
    };
    const processes = cluster.members.map((member): ChaosProcess => ({
      name: member.name,
      async kill() {
        ending(member);
        await member.kill();
      },
      start: () => member.start(),
      freeze: () => member.process()?.kill('SIGSTOP'),
      thaw: () => member.process()?.kill('SIGCONT'),
      async stop() {
        ending(member);
        member.process()?.kill('SIGCONT');
        await member.stop();
      },
    }));
    return {
      address: cluster.address,
      processes,
      database: {
        cut: () => Promise.all([proxy.cut(), visibilityWrites.cut()]).then(() => undefined),
        restore: () => Promise.all([proxy.restore(), visibilityWrites.restore()]).then(() => undefined),
      },
      visibilityWrites,
      metrics: Object.fromEntries(cluster.members.map((member) => [member.name, member.metricsUrl])),
      async close() {
        closing = true;
        await cluster.close();
        await closeProxies();
        await dropDatabases();
      },
    };
  } catch (error) {
    closing = true;
    await closeProxies();
    await dropDatabases();
    throw error;
  }
}

/** One nats-server, or a three-node JetStream cluster. */
async function startNatsServers(
  name: string,
  topology: ChaosTopology,
  dataDir: string,
): Promise<{ processes: ChaosProcess[]; urls: string[]; close(): Promise<void> }> {
  if (topology.natsNodes === 3) {
    const cluster = await startNatsCluster(name);
    return { processes: cluster.nodes, urls: cluster.urls, close: () => cluster.close() };
  }
  const port = await freePort();
  const launch = async () => {
    const server = await startNats({ binary: inject('natsBinary'), port, dataDir: join(dataDir, 'nats') });
    recordPid(server.process.pid);
    return server.process;
  };
  const server = serverProcess('nats-server', launch, await launch());
  return { processes: [server], urls: [`nats://127.0.0.1:${port}`], close: () => server.stop() };
}
