// `npm run bench`: open-loop load at fixed arrival rates against a stack of its own (Temporal
// dev server, nats-server, payment sandbox, the product's worker and ingress, a baseline
// worker), measuring what docs/benchmarks.md reports. See that file for the method.
//
//   npm run bench -- [--rates 300,600,900,1200,1500] [--ceiling-rates 1200,2400,3600,4800,6000] [--duration 30] [--drain 10] [--out docs/benchmarks.md]
//   npm run bench -- --quick    one step per scenario (≈ 3 min), report in .data/: for checking a change to the hot path
//   npm run bench -- --profile  also CPU-profiles the worker and the ingress (node --cpu-prof) and reports where their time goes
//   npm run bench -- --temporal cluster --family servers --json FILE
//       the stack on a Temporal cluster on PostgreSQL (scripts/temporal-cluster.mjs), the server
//       family only (empty workflow, saga shape, product end to end); `npm run bench:servers` runs
//       that family on both servers and writes them side by side into docs/benchmarks.md
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { Client, Connection } from '@temporalio/client';
import { openInventory } from '../activities/inventory/open-inventory.js';
import { loadConfig } from '../lib/config.js';
import { connectNats } from '../lib/nats.js';
import { dataConverter } from '../lib/temporal-client.js';
import { decodeEnvelope } from '../lib/envelope.js';
import { startPaymentGateway } from '../sandbox/payment-gateway/server.js';
import { freePort, sqlitePragmas, startNats, startTemporal, stopProcess, waitFor } from '../scripts/local-servers.mjs';
import { setUpSchemas, startTemporalCluster } from '../scripts/temporal-cluster.mjs';
import { ROOT, setUp, step } from '../scripts/setup.mjs';
import { auditEventTypeFor } from '../domain/events.js';
import { orderWorkflowId, type OrderSagaInput } from '../workflows/contract.js';
import type { Order } from '../domain/order.js';
import {
  cpuProfileShares,
  eagerDispatch,
  historyShape,
  type EagerDispatch,
  type HistoryShape,
} from './cost-breakdown.js';
import { EAGER_START_SUBJECT } from './eager-start.js';
import { createTemporaryDatabase } from '../test/harness/postgres.js';
import { latencySvg } from './latency-plot.js';
import { percentile } from './percentile.js';
import { SERVERS_SECTION } from './servers-section.js';

const { values: given } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    rates: { type: 'string' },
    'ceiling-rates': { type: 'string' },
    duration: { type: 'string' },
    drain: { type: 'string' },
    out: { type: 'string' },
    plot: { type: 'string' },
    temporal: { type: 'string', default: 'dev' },
    family: { type: 'string' },
    json: { type: 'string' },
  },
});
if (given.temporal !== 'dev' && given.temporal !== 'cluster') {
  console.error(`--temporal takes dev or cluster (got ${given.temporal})`);
  process.exit(2);
}
const onCluster = given.temporal === 'cluster';
/** all: every scenario; servers: those that measure the Temporal under the product (the cluster runs those). */
const family = given.family ?? (onCluster ? 'servers' : 'all');
if (family !== 'all' && family !== 'servers') {
  console.error(`--family takes all or servers (got ${family})`);
  process.exit(2);
}
if (onCluster && family === 'all') {
  // The scaled-out scenario keeps its inventory on the same PostgreSQL, whose CPU counts as Temporal's here.
  console.error('--temporal cluster runs the servers family only (--family servers)');
  process.exit(2);
}
// --quick: one step per scenario, near where each tops out on this machine, and a report that
// does not replace the committed one; so does the servers family (bench/servers.ts writes its
// figures into docs/benchmarks.md). Any option given explicitly still wins.
const writesDocs = !given.quick && family === 'all';
const reportName = given.quick ? 'bench-quick' : `bench-${given.temporal}`;
const defaults = {
  rates: given.quick ? '450' : '300,600,900,1200,1500',
  'ceiling-rates': given.quick ? '1200' : '1200,2400,3600,4800,6000',
  duration: given.quick ? '20' : '30',
  drain: '10',
  out: join(ROOT, writesDocs ? 'docs/benchmarks.md' : `.data/${reportName}.md`),
  plot: join(ROOT, writesDocs ? 'docs/images/bench-latency.svg' : `.data/${reportName}.svg`),
};
const options = {
  ...defaults,
  ...Object.fromEntries(
    Object.entries(given).filter(
      ([key, v]) => v !== undefined && !['profile', 'quick', 'temporal', 'family', 'json'].includes(key),
    ),
  ),
};
/** Where --profile writes each process's V8 CPU profiles (kept after the run for a closer look). */
const profileDir = given.profile
  ? join(ROOT, '.data/bench-profiles', new Date().toISOString().replaceAll(':', '-'))
  : undefined;
const rates = options.rates.split(',').map(Number);
const ceilingRates = options['ceiling-rates'].split(',').map(Number);
const durationS = Number(options.duration);
const drainS = Number(options.drain);
if ([...rates, ...ceilingRates].some((r) => !(r > 0)) || !(durationS > 0) || !(drainS >= 0)) {
  console.error(
    'usage: npm run bench -- [--quick] [--rates 300,600,900,1200,1500] [--ceiling-rates 1200,2400,3600,4800,6000] [--duration 30] [--drain 10] [--out FILE] [--plot FILE.svg]',
  );
  console.error('rates are orders (ceiling: empty workflows) per minute; duration and drain are seconds per step');
  process.exit(2);
}

const SKU = 'SKU-BENCH';
const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

// ---------------------------------------------------------------------------- the stack
const tools = await setUp(
  onCluster ? ['temporal', 'nats-server', 'temporal-server', 'temporal-sql-tool'] : ['temporal', 'nats-server'],
);
step(
  `Starting the benchmark stack on the Temporal ${onCluster ? 'cluster' : 'dev server'} (servers of its own, on free ports)`,
);
const dir = mkdtempSync(join(tmpdir(), 'order-saga-bench-'));

/** The Temporal under the benchmark: its address, its processes by name, their metrics. */
interface BenchTemporal {
  address: string;
  processes: Record<string, ChildProcess>;
  metricsUrls: string[];
  stop(): Promise<void>;
}

/** The dev server: one process, SQLite. */
async function startDevTemporal(): Promise<BenchTemporal> {
  const server = await startTemporal({
    binary: tools.temporal!,
    port: await freePort(),
    dataDir: join(dir, 'temporal'),
  });
  return {
    address: server.address,
    processes: { temporal: server.process },
    metricsUrls: [server.metricsUrl],
    stop: () => stopProcess(server.process),
  };
}

/** The cluster: frontend, two history nodes, matching, internal worker, on the local PostgreSQL. */
async function startClusterTemporal(): Promise<BenchTemporal> {
  const [persistence, visibility] = [await createTemporaryDatabase(), await createTemporaryDatabase()];
  const drop = () => Promise.all([persistence.drop(), visibility.drop()]);
  if (!persistence.url || !visibility.url) {
    await drop();
    throw new Error(`the cluster needs PostgreSQL: ${persistence.reason ?? visibility.reason}`);
  }
  const server = new URL(persistence.url);
  const postgres = {
    host: server.hostname,
    port: Number(server.port || 5432),
    user: decodeURIComponent(server.username),
    password: decodeURIComponent(server.password),
  };
  const databases = {
    persistence: server.pathname.slice(1),
    visibility: new URL(visibility.url).pathname.slice(1),
  };
  await setUpSchemas(tools['temporal-sql-tool']!, postgres, databases);
  const cluster = await startTemporalCluster({
    serverBinary: tools['temporal-server']!,
    temporalCli: tools.temporal!,
    dataDir: join(dir, 'temporal'),
    postgres,
    databases,
  });
  return {
    address: cluster.address,
    processes: Object.fromEntries(
      cluster.members.map((m) => [m.name === 'worker' ? 'temporal-worker' : m.name, m.process()]),
    ),
    metricsUrls: cluster.members.map((m) => m.metricsUrl),
    async stop() {
      await cluster.close();
      await drop();
    },
  };
}

const [temporal, nats] = await Promise.all([
  onCluster ? startClusterTemporal() : startDevTemporal(),
  startNats({ binary: tools['nats-server']!, port: await freePort(), dataDir: join(dir, 'nats') }),
]);
/** The CPU of PostgreSQL (every postgres process, and the backends that exited), in the cluster's CPU lists. */
const POSTGRES = 'postgres';
/** What counts as Temporal's CPU: its processes, and on the cluster PostgreSQL's. */
const TEMPORAL_CPU = [...Object.keys(temporal.processes), ...(onCluster ? [POSTGRES] : [])];
const sandbox = await startPaymentGateway(0);
const stores = { product: join(dir, 'inventory-product'), baseline: join(dir, 'inventory-baseline') };
for (const embeddedDir of Object.values(stores)) {
  const store = await openInventory({ url: undefined, embeddedDir });
  await store.restock(SKU, 100_000_000);
  await store.db.close();
}
// The scaled-out scenario needs PostgreSQL (TEST_DATABASE_URL, or the local server): a database of
// its own. --quick leaves it out (it checks a change to the hot path, which the other scenarios show).
const scaledOut =
  given.quick || family === 'servers'
    ? {
        url: undefined,
        reason: given.quick ? 'left out by --quick' : 'not in the servers family',
        drop: () => Promise.resolve(),
      }
    : await createTemporaryDatabase();
const scaledApis: string[] = [];
let nextIngress = 0;
const PRODUCT_SCENARIO = 'product end to end: POST /orders → JetStream → starter → order saga';
const SCALED_SCENARIO = 'product scaled out: 2 ingresses, 2 workers, inventory on PostgreSQL';
const SHAPE_SCENARIO = "order saga's shape, activities doing nothing";
const TEXTBOOK_SCENARIO = 'textbook saga (regular activities, default worker)';
const [ingressPort, metricsPort, ingressOpsPort] = [await freePort(), await freePort(), await freePort()];
// The product runs as deployed: payloads encrypted, callers authenticated (a service's API key).
// Rate limits are off: the load comes from one address and one caller.
const BENCH_API_KEY = `bench_${randomUUID()}`;
const payloadKeys = [{ id: 'bench', key: randomBytes(32) }];
const productSecurityEnv = {
  PAYLOAD_ENCRYPTION_KEYS: `bench=${payloadKeys[0]!.key.toString('base64')}`,
  AUTH_API_KEYS: `bench:service:${createHash('sha256').update(BENCH_API_KEY).digest('hex')}`,
  RATE_LIMIT_PER_ADDRESS: '0',
  RATE_LIMIT_PER_IDENTITY: '0',
};
const baseEnv = {
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '/tmp',
  LOG_LEVEL: 'warn',
  TEMPORAL_ADDRESS: temporal.address,
  NATS_URL: nats.url,
  PAYMENT_GATEWAY_URL: sandbox.url,
  APPROVAL_THRESHOLD: '100000000',
  // Stopped with SIGTERM at the end: quick enough that stopProcess never needs SIGKILL (a profile is written on exit).
  WORKER_SHUTDOWN_GRACE: '5s',
};
const children: ChildProcess[] = [];
function spawnProcess(entry: string, env: Record<string, string>, profileAs?: string): ChildProcess {
  const profiling = profileDir && profileAs ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, profileAs)}`] : [];
  const child = spawn(process.execPath, [...profiling, '--import', 'tsx', entry], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(`[${entry}] ${chunk.toString()}`));
  children.push(child);
  return child;
}
const processes: Record<string, ChildProcess> = {
  worker: spawnProcess(
    'workers/main.ts',
    {
      ...baseEnv,
      ...productSecurityEnv,
      EMBEDDED_DATABASE_DIR: stores.product,
      METRICS_PORT: String(metricsPort),
      TEMPORAL_TASK_QUEUE: 'orders',
    },
    'worker',
  ),
  ingress: spawnProcess(
    'ingress/main.ts',
    {
      ...baseEnv,
      ...productSecurityEnv,
      PORT: String(ingressPort),
      METRICS_PORT: String(ingressOpsPort),
      TEMPORAL_TASK_QUEUE: 'orders',
    },
    'ingress',
  ),
  baselineWorker: spawnProcess('bench/bench-worker.ts', {
    ...baseEnv,
    EMBEDDED_DATABASE_DIR: stores.baseline,
    TEMPORAL_TASK_QUEUE: 'baseline',
  }),
  ...temporal.processes,
  nats: nats.process,
};
async function stopAll() {
  for (const child of children) await stopProcess(child, 20_000);
  await scaledOut.drop();
  await sandbox.close();
  await Promise.all([temporal.stop(), stopProcess(nats.process)]);
  rmSync(dir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void stopAll().then(() => process.exit(130)));

const api = `http://127.0.0.1:${ingressPort}`;
const ok = (url: string) => async () => (await fetch(url)).ok;
await waitFor('worker', ok(`http://127.0.0.1:${metricsPort}/ready`), { timeoutMs: 120_000 });
await waitFor('ingress', ok(`${api}/ready`), { timeoutMs: 60_000 });

const connection = await Connection.connect({ address: temporal.address });
const client = new Client({ connection });
// The order saga's client encrypts as the product's clients do; the baselines' payloads stay plain (the textbook way).
const productClient = new Client({ connection, dataConverter: dataConverter(payloadKeys) });
// Give the baseline worker its start-up bundling, then warm both task queues.
await client.workflow.execute('emptyWorkflow', { taskQueue: 'baseline', workflowId: `warm-${randomUUID()}` });

// When each saga's final audit event was stored (JetStream's own timestamp), by order id.
const FINAL_EVENTS = new Set([auditEventTypeFor('COMPLETED'), auditEventTypeFor('COMPENSATED')]);
const finalStoredAt = new Map<string, number>();
const nc = await connectNats([nats.url], 'order-saga-bench');
const auditConsumer = await jetstream(nc).consumers.get('AUDIT', { deliver_policy: DeliverPolicy.New });
void (async () => {
  for await (const message of await auditConsumer.consume()) {
    const event = decodeEnvelope(message.data);
    if (FINAL_EVENTS.has(event.type)) finalStoredAt.set(event.aggregate_id, message.info.timestampNanos / 1e6);
  }
})();

// -------------------------------------------------------------------------- measurement
const sagaSettings = loadConfig({}).saga;
function newOrder(): Order {
  return {
    orderId: randomUUID(),
    customerId: 'c-bench',
    items: [{ sku: SKU, quantity: 1, unitPrice: 1_000 }],
    currency: 'EUR',
    total: 1_000,
    paymentToken: 'tok_visa',
    createdAt: new Date().toISOString(),
    traceId: randomUUID().replaceAll('-', ''),
  };
}

interface Scenario {
  name: string;
  /** Runs before the scenario's first step (e.g. to change the processes under test). */
  prepare?: () => Promise<void>;
  /** Sends one unit of work; resolves with the key its completion is found under. */
  send(): Promise<string>;
  /** When the unit finished (epoch ms), if it has. */
  completedAt(key: string): Promise<number | undefined> | number | undefined;
  /** Processes whose CPU time counts for this scenario. */
  cpu: string[];
  /** Arrival rates (orders per minute) tried; default --rates. */
  rates?: number[];
  /** The workflow a key stands for, to read its history's shape (sagas only). */
  workflowIdOf?: (key: string) => string;
}

/** Starts a saga for a new order directly (no HTTP, no JetStream); resolves with the order id. */
async function startSaga(
  by: Client,
  type: string,
  taskQueue: string,
  workflowId: (orderId: string) => string,
): Promise<string> {
  const order = newOrder();
  const input: OrderSagaInput = { order, settings: sagaSettings };
  await by.workflow.start(type, { taskQueue, workflowId: workflowId(order.orderId), args: [input] });
  return order.orderId;
}

const closeTimeOf = async (workflowId: string) => {
  const description = await client.workflow.getHandle(workflowId).describe();
  return description.closeTime?.getTime();
};

/** Has the baseline worker start a workflow of `type` eagerly (bench/eager-start.ts); resolves with its id. */
async function startEagerly(type: string): Promise<string> {
  const answer = (await nc.request(EAGER_START_SUBJECT, type, { timeout: 10_000 })).string();
  if (answer.startsWith('error')) throw new Error(answer);
  return answer;
}

const CEILING_SCENARIO = 'empty workflow (the server ceiling)';
/** The scenarios that measure the Temporal under the product: its ceiling, the saga's shape, the product. */
const SERVER_FAMILY = [CEILING_SCENARIO, SHAPE_SCENARIO, PRODUCT_SCENARIO];
const allScenarios: Scenario[] = [
  {
    name: CEILING_SCENARIO,
    // Started eagerly by the baseline worker itself: the fastest start the SDK has.
    send: () => startEagerly('emptyWorkflow'),
    completedAt: closeTimeOf,
    cpu: ['baselineWorker', ...TEMPORAL_CPU],
    rates: ceilingRates,
  },
  {
    name: SHAPE_SCENARIO,
    send: () => startEagerly('sagaShape'),
    completedAt: closeTimeOf,
    workflowIdOf: (workflowId) => workflowId,
    cpu: ['baselineWorker', ...TEMPORAL_CPU],
  },
  {
    name: TEXTBOOK_SCENARIO,
    send: () => startSaga(client, 'textbookSaga', 'baseline', (orderId) => `textbook-${orderId}`),
    completedAt: (orderId) => finalStoredAt.get(orderId),
    workflowIdOf: (orderId) => `textbook-${orderId}`,
    cpu: ['baselineWorker', ...TEMPORAL_CPU, 'nats'],
  },
  {
    name: 'order saga, started by a client',
    send: () => startSaga(productClient, 'orderSaga', 'orders', orderWorkflowId),
    completedAt: (orderId) => finalStoredAt.get(orderId),
    workflowIdOf: orderWorkflowId,
    cpu: ['worker', ...TEMPORAL_CPU, 'nats'],
  },
  {
    name: PRODUCT_SCENARIO,
    send: () => postOrder(api),
    completedAt: (orderId) => finalStoredAt.get(orderId),
    workflowIdOf: orderWorkflowId,
    cpu: ['ingress', 'worker', ...TEMPORAL_CPU, 'nats'],
  },
  ...(scaledOut.url
    ? [
        {
          name: SCALED_SCENARIO,
          // The chart's shape: the single worker and ingress give way to two of each, the inventory
          // on PostgreSQL (two workers cannot share the embedded database), orders spread over both ingresses.
          prepare: () => scaleOut(scaledOut.url!),
          send: () => postOrder(scaledApis[nextIngress++ % scaledApis.length]!),
          completedAt: (orderId: string) => finalStoredAt.get(orderId),
          workflowIdOf: orderWorkflowId,
          cpu: ['ingress', 'ingress2', 'worker', 'worker2', ...TEMPORAL_CPU, 'nats'],
        },
      ]
    : []),
];
const scenarios =
  family === 'servers' ? allScenarios.filter((scenario) => SERVER_FAMILY.includes(scenario.name)) : allScenarios;

/** POST /orders to one ingress; resolves with the order id. */
async function postOrder(base: string): Promise<string> {
  const response = await fetch(`${base}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': BENCH_API_KEY },
    body: JSON.stringify({
      customerId: 'c-bench',
      items: [{ sku: SKU, quantity: 1, unitPrice: 1_000 }],
      currency: 'EUR',
      paymentToken: 'tok_visa',
    }),
  });
  if (response.status !== 202) throw new Error(`POST /orders answered ${response.status}`);
  return ((await response.json()) as { orderId: string }).orderId;
}

/** Replaces the product's worker and ingress with two of each on PostgreSQL, ready to take orders. */
async function scaleOut(databaseUrl: string): Promise<void> {
  await Promise.all([stopProcess(processes.worker, 20_000), stopProcess(processes.ingress, 20_000)]);
  const store = await openInventory({ url: databaseUrl, embeddedDir: '' });
  await store.restock(SKU, 100_000_000);
  await store.db.close();
  for (const n of [1, 2]) {
    const [port, workerOps, ingressOps] = [await freePort(), await freePort(), await freePort()];
    const suffix = n === 1 ? '' : String(n);
    const common = { ...baseEnv, ...productSecurityEnv, TEMPORAL_TASK_QUEUE: 'orders' };
    processes[`worker${suffix}`] = spawnProcess(
      'workers/main.ts',
      { ...common, DATABASE_URL: databaseUrl, METRICS_PORT: String(workerOps) },
      `worker${suffix}-scaled`,
    );
    processes[`ingress${suffix}`] = spawnProcess(
      'ingress/main.ts',
      { ...common, PORT: String(port), METRICS_PORT: String(ingressOps) },
      `ingress${suffix}-scaled`,
    );
    await waitFor(`worker ${n}`, ok(`http://127.0.0.1:${workerOps}/ready`), { timeoutMs: 120_000 });
    await waitFor(`ingress ${n}`, ok(`http://127.0.0.1:${port}/ready`), { timeoutMs: 60_000 });
    scaledApis.push(`http://127.0.0.1:${port}`);
  }
}

/** utime + stime (and, with `children`, cutime + cstime: the exited children's) of a /proc/<pid>/stat, in ms. */
function cpuOfStat(stat: string, children = false): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0);
  return (ticks * 1000) / CLOCK_TICKS_PER_S;
}

/**
 * PostgreSQL's CPU on this machine: every postgres process, with the exited backends' time the
 * postmaster collected. Nothing else uses that server during a run.
 */
function postgresCpuMs(): number {
  let total = 0;
  let found = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
      total += cpuOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8'), true);
      found += 1;
    } catch {
      // Exited while we read.
    }
  }
  // A PostgreSQL on another host (TEST_DATABASE_URL) cannot be measured from here: say so, not 0.
  if (found === 0)
    throw new Error('no postgres process on this machine: the cluster benchmark measures a local PostgreSQL');
  return total;
}

function cpuMs(name: string): number {
  if (name === POSTGRES) return postgresCpuMs();
  const child = processes[name];
  if (!child) throw new Error(`no process ${name} in this benchmark`);
  return cpuOfStat(readFileSync(`/proc/${child.pid}/stat`, 'utf8'));
}

interface StepResult {
  scenario: string;
  rate: number;
  arrivals: number;
  sendErrors: number;
  completed: number;
  p50: number;
  p99: number;
  cpuMsPerOrder: Record<string, number>;
  backlogGrowing: boolean;
  sustained: boolean;
  /** A few of the step's keys, for the history shape. */
  sample: string[];
  /**
   * Product scenarios: ms from a saga's final audit event to the search index listing the saga as
   * completed (what GET /orders and operators' searches see), for one order in ten.
   */
  visibilityLag?: { p50: number; p99: number; samples: number };
}

/**
 * Waits for an order's final audit event, then polls the search index until it lists the saga as
 * completed; resolves the lag in ms (undefined if either does not happen within 60 s).
 */
async function visibilityLagOf(orderId: string): Promise<number | undefined> {
  const deadline = Date.now() + 60_000;
  while (!finalStoredAt.has(orderId)) {
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const query = `WorkflowId = '${orderWorkflowId(orderId)}' AND ExecutionStatus = 'Completed'`;
  while ((await client.workflow.count(query)).count === 0) {
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - finalStoredAt.get(orderId)!;
}

/** Open loop: the i-th send is due at t0 + i/rate whatever happened to earlier ones; latency counts from then. */
async function runStep(scenario: Scenario, ratePerMin: number): Promise<StepResult> {
  const arrivals = Math.round((ratePerMin * durationS) / 60);
  const intervalMs = 60_000 / ratePerMin;
  const cpuBefore = Object.fromEntries(scenario.cpu.map((name) => [name, cpuMs(name)]));
  const t0 = Date.now() + 100;
  const sends: Promise<{ key?: string; dueAt: number }>[] = [];
  const lagProbes: Promise<number | undefined>[] = [];
  for (let i = 0; i < arrivals; i += 1) {
    const dueAt = t0 + i * intervalMs;
    const wait = dueAt - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const sending = scenario.send();
    sends.push(
      sending.then(
        (key) => ({ key, dueAt }),
        () => ({ dueAt }),
      ),
    );
    if (scenario.workflowIdOf === orderWorkflowId && i % 10 === 0)
      // A probe that fails (a send refused, a count that errs) is left out, never a crash mid-run.
      lagProbes.push(sending.then(visibilityLagOf).catch(() => undefined));
  }
  const lastDue = t0 + (arrivals - 1) * intervalMs;
  const sent = await Promise.all(sends);
  const keys = sent.filter((s) => s.key !== undefined) as { key: string; dueAt: number }[];
  const finishedBy = new Map<string, number>();
  const deadline = lastDue + drainS * 1_000;
  while (Date.now() < deadline && finishedBy.size < keys.length) {
    for (const { key } of keys) {
      if (finishedBy.has(key)) continue;
      const at = await scenario.completedAt(key);
      if (at !== undefined) finishedBy.set(key, at);
    }
    if (finishedBy.size < keys.length) await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // Orders not finished by the deadline (by their own timestamps: checking them takes time too)
  // count as slower than any that did: they push p99 up, never down.
  const latencies = keys
    .map(({ key, dueAt }) => {
      const finishedAt = finishedBy.get(key);
      return finishedAt !== undefined && finishedAt <= deadline ? finishedAt - dueAt : Number.POSITIVE_INFINITY;
    })
    .sort((a, b) => a - b);
  const completed = latencies.filter(Number.isFinite).length;
  // A backlog that grows during the step shows as later arrivals waiting longer than earlier ones.
  const half = Math.floor(keys.length / 2);
  const medianOf = (part: typeof keys) =>
    percentile(
      part.map(({ key, dueAt }) => (finishedBy.get(key) ?? Number.POSITIVE_INFINITY) - dueAt).sort((a, b) => a - b),
      50,
    );
  const [firstHalf, secondHalf] = [medianOf(keys.slice(0, half)), medianOf(keys.slice(half))];
  const backlogGrowing = secondHalf > 2 * firstHalf + 500;
  // Let the stragglers finish before the next step, so steps do not bleed into each other.
  await waitFor(
    `${scenario.name} @ ${ratePerMin}/min to finish`,
    async () => {
      for (const { key } of keys)
        if (!finishedBy.has(key) && (await scenario.completedAt(key)) === undefined) return false;
      return true;
    },
    { timeoutMs: 300_000, intervalMs: 500 },
  );
  const cpuMsPerOrder = Object.fromEntries(
    scenario.cpu.map((name) => [name, (cpuMs(name) - cpuBefore[name]!) / Math.max(keys.length, 1)]),
  );
  const lags = (await Promise.all(lagProbes)).filter((lag): lag is number => lag !== undefined).sort((a, b) => a - b);
  return {
    scenario: scenario.name,
    rate: ratePerMin,
    arrivals,
    sendErrors: arrivals - keys.length,
    completed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    cpuMsPerOrder,
    backlogGrowing,
    sustained: keys.length === arrivals && completed >= 0.99 * arrivals && !backlogGrowing,
    sample: keys.slice(0, 5).map(({ key }) => key),
    ...(lagProbes.length > 0 && {
      visibilityLag: { p50: percentile(lags, 50), p99: percentile(lags, 99), samples: lags.length },
    }),
  };
}

/** The server's eager dispatch counters, summed over its processes. */
async function eagerDispatchOf(metricsUrls: string[]): Promise<EagerDispatch> {
  const each = await Promise.all(metricsUrls.map((url) => eagerDispatch(url)));
  return {
    activities: each.reduce((sum, e) => sum + e.activities, 0),
    workflowStarts: each.reduce((sum, e) => sum + e.workflowStarts, 0),
  };
}

const results: StepResult[] = [];
const shapes = new Map<string, HistoryShape>();
/** Per scenario: the server's eager dispatches per order accepted, over all its steps. */
const eagerPerOrder = new Map<string, EagerDispatch>();
try {
  for (const scenario of scenarios) {
    step(`Benchmark: ${scenario.name}`);
    await scenario.prepare?.();
    const eagerBefore = await eagerDispatchOf(temporal.metricsUrls);
    const stepsBefore = results.length;
    for (const rate of scenario.rates ?? rates) {
      process.stdout.write(`  ${rate} per minute for ${durationS}s ... `);
      const result = await runStep(scenario, rate);
      results.push(result);
      process.stdout.write(
        `${result.completed}/${result.arrivals} within ${drainS}s, p50 ${fmtMs(result.p50)}, p99 ${fmtMs(result.p99)}${result.backlogGrowing ? ', backlog growing' : ''}${result.sustained ? '' : '  (not sustained)'}\n`,
      );
    }
    const eagerAfter = await eagerDispatchOf(temporal.metricsUrls);
    const accepted = results.slice(stepsBefore).reduce((n, r) => n + r.arrivals - r.sendErrors, 0);
    eagerPerOrder.set(scenario.name, {
      activities: (eagerAfter.activities - eagerBefore.activities) / Math.max(accepted, 1),
      workflowStarts: (eagerAfter.workflowStarts - eagerBefore.workflowStarts) / Math.max(accepted, 1),
    });
  }
  for (const scenario of scenarios) {
    const sample = results.find((r) => r.scenario === scenario.name)?.sample ?? [];
    if (scenario.workflowIdOf) shapes.set(scenario.name, await historyShape(client, sample.map(scenario.workflowIdOf)));
  }
} finally {
  await nc.close();
  await connection.close();
  await stopAll();
}

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'unfinished';
  return ms >= 1_000 ? `${(ms / 1_000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

// ---------------------------------------------------------------------------- the report
/** Cores per process for 10,000 orders/min, from the CPU per order each used at the highest rate sustained. */
function sizingSection(): string {
  const target = 10_000;
  const sized = [PRODUCT_SCENARIO, SCALED_SCENARIO]
    .map((name) => bestStep(name))
    .filter((r): r is StepResult => r !== undefined);
  if (sized.length === 0) return '';
  const tables = sized.map((r) => {
    const rows = Object.entries(r.cpuMsPerOrder).map(
      ([name, ms]) => `| ${name} | ${ms.toFixed(1)} | ${((ms * target) / 60 / 1_000).toFixed(1)} |`,
    );
    return `${r.scenario}, at ${r.rate} orders/min:

| Process | CPU ms per order | Cores for ${target.toLocaleString('en')} orders/min |
| --- | ---: | ---: |
${rows.join('\n')}
| all | ${sumOf(r).toFixed(1)} | ${((sumOf(r) * target) / 60 / 1_000).toFixed(1)} |`;
  });
  return `
## What ${target.toLocaleString('en')} orders/min needs

CPU per order of each process at the highest rate sustained, times ${target.toLocaleString('en')} / 60 orders per second.
Workers and ingresses scale out as the chart runs them (the scaled-out rows: two of each); add
headroom (×1.5) for bursts and rolling restarts. ${
    onCluster
      ? `The Temporal rows are a cluster on PostgreSQL on this machine (its services as processes of their
own, PostgreSQL's CPU included): the shape production runs, at one machine's scale.`
      : `The Temporal row is the dev server on SQLite on
this machine: production's Temporal costs differently; \`npm run bench:servers\` measures a cluster on
PostgreSQL beside it (below).`
  }

${tables.join('\n\n')}
${scaledOut.url ? '' : `\nThe scaled-out scenario did not run: ${scaledOut.reason}.\n`}`;
}

/** With --profile: the worker's and the ingress's CPU self time by package, over the whole run. */
function profileSection(): string {
  if (!profileDir) return '';
  const shares = (name: string) =>
    cpuProfileShares(join(profileDir, name), ROOT)
      .slice(0, 12)
      .map(({ bucket, share }) => `${bucket} ${(share * 100).toFixed(1)} %`)
      .join(', ');
  return `
CPU self time by package over the whole run (\`npm run bench -- --profile\`, V8 sampling profiler, idle
excluded; profiles in \`${relative(ROOT, profileDir)}\`). The profiler itself costs the worker and the
ingress CPU (measured here: up to 4 × the ingress's): take rates and CPU per order from a run without it.

- worker: ${shares('worker')}
- ingress: ${shares('ingress')}
`;
}

const best = (name: string) =>
  Math.max(0, ...results.filter((r) => r.scenario === name && r.sustained).map((r) => r.rate));
const [ceilingScenario, textbookScenario] = [scenarios[0]!, scenarios.find((s) => s.name === TEXTBOOK_SCENARIO)];
const ceiling = best(ceilingScenario.name);
const ceilingFound = results.some((r) => r.scenario === ceilingScenario.name && !r.sustained);
const textbook = textbookScenario ? best(textbookScenario.name) : 0;
const rows = results.map((r) => {
  const cpu = Object.entries(r.cpuMsPerOrder)
    .map(([name, ms]) => `${name} ${ms.toFixed(1)}`)
    .join(', ');
  const verdict = r.sustained ? 'yes' : r.backlogGrowing ? 'no (backlog growing)' : 'no';
  return `| ${r.scenario} | ${r.rate} | ${r.completed}/${r.arrivals}${r.sendErrors ? ` (${r.sendErrors} refused)` : ''} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${cpu} | ${verdict} |`;
});
/** Temporal server CPU per order at the lowest rate: what a design costs the shared server. */
const temporalCpu = (name: string) => {
  const step = results.find((r) => r.scenario === name && r.rate === Math.min(...rates));
  return step ? TEMPORAL_CPU.reduce((sum, process) => sum + (step.cpuMsPerOrder[process] ?? 0), 0) : Number.NaN;
};
/** A scenario's step at its highest sustained rate (where fixed costs weigh least per order). */
const bestStep = (name: string) => results.find((r) => r.scenario === name && r.rate === best(name) && r.sustained);
const sumOf = (r: StepResult | undefined) =>
  r ? Object.values(r.cpuMsPerOrder).reduce((sum, ms) => sum + ms, 0) : Number.NaN;
const ceilingCpu = sumOf(bestStep(ceilingScenario.name));
const summary = [
  `- ${ceilingScenario.name}: ${ceilingFound ? '' : '≥ '}${ceiling} workflows/min sustained${ceilingFound ? '' : ' (the highest rate tried)'}`,
  ...scenarios.slice(1).map((s) => {
    const rate = best(s.name);
    if (rate === 0) return `- ${s.name}: no rate sustained among ${rates.join(', ')} per minute`;
    const ratios = [
      `${ceilingFound ? '' : '≤ '}${(rate / ceiling).toFixed(2)} × the ceiling`,
      ...(s === textbookScenario || textbook === 0 ? [] : [`${(rate / textbook).toFixed(2)} × the textbook saga`]),
      `Temporal CPU ${temporalCpu(s.name).toFixed(0)} ms per order`,
      `all processes ${sumOf(bestStep(s.name)).toFixed(0)} ms per order at ${rate}/min, ${(sumOf(bestStep(s.name)) / ceilingCpu).toFixed(1)} × the empty workflow's`,
    ];
    return `- ${s.name}: ${rate} orders/min sustained (${ratios.join('; ')})`;
  }),
];
const report = `# Benchmarks

Made by \`npm run bench -- --rates ${rates.join(',')} --ceiling-rates ${ceilingRates.join(',')} --duration ${durationS} --drain ${drainS}\` on
${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB,
Node ${process.versions.node}. Load generator, servers and processes share the machine.

## Method

- **Open loop**: at each rate, the i-th order is due at t0 + i/rate whether or not earlier ones
  finished; latency counts from that due time, so a stall shows as latency, not as a slower
  arrival rate.
- **Latency** ends when the saga's final audit event (\`OrderCompleted\` / \`OrderCompensated\`)
  is stored in JetStream (the stream's own timestamp); for the empty workflow, at its close time.
- **Sustained**: every order accepted, at least 99 % of them finished within ${drainS} s of the
  last arrival, and no growing backlog: the second half of the step's arrivals may not wait more
  than twice as long (median, + 0.5 s) as the first half. Orders not finished by the end of the
  drain count as infinitely slow in the percentiles.
- **CPU ms per order**: user + system CPU time of each process over the step (including its
  drain), divided by the orders.
- **Durability**: ${
  onCluster
    ? `a Temporal cluster (temporal-server 1.29.1: frontend, two history nodes, matching and the internal
  worker as processes of their own, 8 history shards) on this machine's PostgreSQL, persistence and
  SQL visibility in databases of their own, with PostgreSQL's defaults (fsync, synchronous commit);`
    : `Temporal dev server (\`temporal server start-dev\`) persisting to SQLite on disk
  (pragmas \`${sqlitePragmas().join(', ')}\`: commits survive a process crash, an OS crash may lose the last ones);`
}
  JetStream file storage with nats-server's default sync (fsync every 2 minutes, not per
  message). Production may set JetStream \`sync_interval: always\`, which lowers the absolute
  figures, so compare ratios.
- **Baselines** on the same server in the same run (\`bench/baseline-workflows.ts\`): an empty
  workflow's start-to-complete rate (the ceiling); the order saga's shape with activities that do
  nothing (its history event for event, started like the empty workflow: what Temporal and the SDK
  cost an order before any of the saga's own work); and the saga written the textbook way (one
  regular activity per step and per audit event, default worker settings).

## Results

${summary.join('\n')}

![p50 and p99 latency of the sagas against the arrival rate](${relative(dirname(options.out), options.plot)})

| Scenario | Orders/min | Finished | p50 | p99 | CPU ms per order | Sustained |
| --- | ---: | ---: | ---: | ---: | --- | :---: |
${rows.join('\n')}

## Where an order's cost goes

Temporal history of one saga (average of 5 from the scenario's first step): every workflow task
and activity task is server work and a round trip to the worker; every search-attribute upsert
is also a visibility write. Local activities count every marker (the saga's patch markers too).
Eager columns, from the server's counters over all the scenario's steps, per order: activity
tasks the server handed back with the workflow task's completion instead of queueing them for a
poller, and workflows whose first task came back with the start call.

| Scenario | History events | Workflow tasks | Activity tasks | Local activities | Search-attribute upserts | Activities dispatched eagerly | Started eagerly |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${[...shapes.entries()]
  .map(([name, h]) => {
    const eager = eagerPerOrder.get(name);
    return `| ${name} | ${h.events.toFixed(1)} | ${h.workflowTasks.toFixed(1)} | ${h.activityTasks.toFixed(1)} | ${h.localActivities.toFixed(1)} | ${h.searchAttributeUpserts.toFixed(1)} | ${eager?.activities.toFixed(2) ?? '–'} | ${eager?.workflowStarts.toFixed(2) ?? '–'} |`;
  })
  .join('\n')}
${profileSection()}${sizingSection()}`;
for (const file of [options.out, options.plot]) mkdirSync(dirname(file), { recursive: true });
// The servers side by side (bench/servers.ts) stay in the report this run rewrites.
const kept = existsSync(options.out) ? SERVERS_SECTION.exec(readFileSync(options.out, 'utf8'))?.[0] : undefined;
writeFileSync(options.out, kept ? `${report}\n${kept}\n` : report);
if (given.json) {
  mkdirSync(dirname(given.json), { recursive: true });
  writeFileSync(
    given.json,
    `${JSON.stringify(
      {
        temporal: given.temporal,
        date: new Date().toISOString(),
        machine: `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`,
        options: { rates, ceilingRates, durationS, drainS },
        temporalProcesses: TEMPORAL_CPU,
        results,
        shapes: Object.fromEntries(shapes),
        eager: Object.fromEntries(eagerPerOrder),
      },
      null,
      2,
    )}\n`,
  );
}
writeFileSync(
  options.plot,
  latencySvg(
    scenarios.slice(1).map((s) => ({ name: s.name, points: results.filter((r) => r.scenario === s.name) })),
    `End-to-end latency, open loop, ${durationS} s per rate`,
  ),
);
step(`Report written to ${options.out}, plot to ${options.plot}`);
process.stdout.write(`\n${summary.join('\n')}\n`);
process.exit(0);
