// The worker process: runs the orderSaga worker and the starter (ORDERS → Temporal), and
// serves /health, /ready and /metrics on METRICS_PORT. It serves those first and then waits for
// NATS and Temporal (not ready meanwhile); it refuses to start when the namespace forgets sagas
// sooner than ORDERS forgets events. SIGTERM/SIGINT drain it gracefully.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { NativeConnection } from '@temporalio/worker';
import { loadConfigOrExit } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';
import {
  createRegistry,
  paymentCircuitGauge,
  paymentDurationHistogram,
  sagaMetrics,
  starterMetrics,
  consumerBacklogMetrics,
  streamFillMetrics,
} from '../lib/metrics.js';
import {
  connectNats,
  ensureStreams,
  ORDERS_MAX_AGE_MS,
  readStreamFill,
  STREAMS,
  watchConnection,
} from '../lib/nats.js';
import { startOpsServer, temporalReachable } from '../lib/ops-server.js';
import {
  assertRetentionCoversOrders,
  namespaceRetentionMs,
  RetentionTooShortError,
  untilAvailable,
} from '../lib/dependencies.js';
import type { Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { startTelemetry } from '../lib/telemetry.js';
import { connectTemporalClient, temporalClientOn, temporalConnectionOptions } from '../lib/temporal-client.js';
import { Keyring, PAYLOADS_IN_CLEAR_WARNING } from '../lib/encryption.js';
import { openInventory, seedDemoCatalogIfEmpty } from '../activities/inventory/open-inventory.js';
import { PAYMENT_OPERATIONS, PaymentGatewayClient } from '../activities/payment/gateway-client.js';
import { installTemporalRuntime } from './temporal-runtime.js';
import { freeLoopbackPort } from '../lib/free-port.js';
import { createOrderWorker, WORKFLOW_BUNDLE_PATH } from './order-worker.js';
import { joinDeployment } from './worker-versioning.js';
import { existsSync } from 'node:fs';
import { EmbeddedDatabaseInUseError } from '../activities/inventory/sql-client.js';
import { serveInventoryAdmin } from './inventory-admin.js';
import { startOrderStarter, readConsumerBacklog } from './order-starter.js';

const config = loadConfigOrExit();
const logger = createLogger('worker', config.logLevel);

/** Runs `work`; when it fails with `refusal` (a set-up this worker must not run in), logs why and exits 2. */
async function refusingToStartOn<T>(refusal: new (...args: never[]) => Error, work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof refusal)) throw error;
    logger.fatal(error.message);
    process.exit(2);
  }
}

const telemetry = startTelemetry('order-saga-worker', config.otlpEndpoint);
const temporalMetrics = installTemporalRuntime(logger, await freeLoopbackPort());
const registry = createRegistry('worker');

// Served before anything else connects, so a probe sees "not ready" (and why) while dependencies are awaited.
const readiness: { nats?: () => boolean; temporal?: Connection; worker?: Worker } = {};
const ops = await startOpsServer(
  config.http.metricsPort,
  registry,
  {
    nats: () => readiness.nats?.() ?? false,
    temporal: () => (readiness.temporal ? temporalReachable(readiness.temporal)() : false),
    worker: () => readiness.worker?.getState() === 'RUNNING',
  },
  temporalMetrics,
);

const nc = await untilAvailable(
  `NATS at ${config.nats.servers.join(',')}`,
  () => connectNats(config.nats, 'order-saga-worker'),
  logger,
);
const natsConnected = watchConnection(nc, (change) => logger.warn({ nats: change }, 'NATS connection changed'));
readiness.nats = natsConnected;
const jsm = await jetstreamManager(nc);
// A cluster still electing leaders, or busy creating replicas, times out: wait, as for the connection.
await untilAvailable('the JetStream streams', () => ensureStreams(jsm, config.nats), logger);
// Each contract stream against its byte limit (the ingress reports the idempotency bucket).
const streamNames = Object.values(STREAMS).map((stream) => stream.name);
streamFillMetrics(registry, () => readStreamFill(jsm, streamNames));
const js = jetstream(nc);

const inventory = await refusingToStartOn(EmbeddedDatabaseInUseError, () => openInventory(config.database));
if (config.database.seedDemoCatalog && (await seedDemoCatalogIfEmpty(inventory)))
  logger.info('inventory: demo catalog stocked');

const payments = new PaymentGatewayClient({
  baseUrl: config.payment.gatewayUrl,
  timeoutMs: config.payment.timeoutMs,
  breakerFailureThreshold: config.payment.breakerFailureThreshold,
  breakerHalfOpenAfterMs: config.payment.breakerHalfOpenAfterMs,
  duration: paymentDurationHistogram(registry),
});
paymentCircuitGauge(registry, PAYMENT_OPERATIONS, (operation) => payments.circuitState(operation));

const keyring = new Keyring(config.payloadKeys);
if (!keyring.enabled) logger.warn(PAYLOADS_IN_CLEAR_WARNING);
const workerConnection = await untilAvailable(
  `Temporal at ${config.temporal.address}`,
  () => NativeConnection.connect(temporalConnectionOptions(config.temporal)),
  logger,
);
const { connection: clientConnection } = await untilAvailable(
  `Temporal at ${config.temporal.address}`,
  () => connectTemporalClient(config),
  logger,
);
readiness.temporal = clientConnection;
const retentionMs = await untilAvailable(
  `namespace "${config.temporal.namespace}"`,
  () => namespaceRetentionMs(clientConnection, config.temporal.namespace),
  logger,
);
await refusingToStartOn(RetentionTooShortError, () =>
  assertRetentionCoversOrders(config.temporal.namespace, retentionMs, ORDERS_MAX_AGE_MS),
);
const worker = await createOrderWorker({
  connection: workerConnection,
  config,
  clients: { inventory, payments, js, metrics: sagaMetrics(registry), keyring },
  telemetry,
});
const workerRun = worker.run();
// A versioned worker's build (workers/worker-versioning.ts). Made current, when configured so,
// before the starter starts sagas: a saga started while no build is current waits for one.
const build = await joinDeployment(worker, clientConnection.workflowService, {
  namespace: config.temporal.namespace,
  versioning: config.versioning,
  logger,
});
const inventoryAdmin = serveInventoryAdmin({
  nc,
  js,
  inventory,
  logger: logger.child({ component: 'inventory-admin' }),
});
readiness.worker = worker;

const starter = config.starter.enabled
  ? await startOrderStarter({
      js,
      jsm,
      // On the worker's own connection, which eager start needs (see temporalClientOn): each new
      // saga's first workflow task comes back in the start call's answer, to this worker. Only
      // unversioned: Temporal hands an eagerly started saga to the worker that started it whatever
      // build is current or ramping, so during a rollout an old build's starter would keep pinning
      // new sagas to the old build (and after a rollback, to the build rolled back from).
      // test/end-to-end/live-upgrade.test.ts places orders with both builds' starters running.
      client: temporalClientOn(workerConnection, config),
      eagerStart: build === undefined,
      taskQueue: config.temporal.taskQueue,
      settings: config.saga,
      limits: config.starter,
      retentionMs,
      logger: logger.child({ component: 'starter' }),
      metrics: starterMetrics(registry),
    })
  : undefined;
if (starter) consumerBacklogMetrics(registry, () => readConsumerBacklog(jsm));

logger.info(
  {
    taskQueue: config.temporal.taskQueue,
    build: build ? `${build.deploymentName}:${build.buildId}` : 'unversioned',
    starter: config.starter.enabled,
    opsPort: ops.port,
    database: config.database.url ? 'postgres' : 'embedded',
    workflowBundle: existsSync(WORKFLOW_BUNDLE_PATH) ? WORKFLOW_BUNDLE_PATH : 'bundled at start-up (run from source)',
    traces: telemetry.exportUrl ?? 'not exported',
  },
  'worker running',
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info(
    { signal, graceMs: config.worker.shutdownGraceMs },
    'shutting down: draining the starter, then the worker',
  );
  await starter?.stop();
  inventoryAdmin.stop();
  worker.shutdown();
  await workerRun;
  ops.server.close();
  await nc.drain();
  await clientConnection.close();
  await workerConnection.close();
  await inventory.db.close();
  await telemetry.shutdown();
  logger.info('stopped');
}
process.once('SIGTERM', () => void shutdown('SIGTERM').then(() => process.exit(0)));
process.once('SIGINT', () => void shutdown('SIGINT').then(() => process.exit(0)));

// The worker stops by itself on a fatal error (e.g. its connection is unusable): exit non-zero so it is restarted.
workerRun.catch((error: unknown) => {
  logger.fatal({ err: error }, 'worker failed');
  process.exit(1);
});
