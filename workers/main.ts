// The worker process: runs the orderSaga worker and the starter (ORDERS → Temporal), and
// serves /health, /ready and /metrics on METRICS_PORT. SIGTERM/SIGINT drain it gracefully.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { NativeConnection } from '@temporalio/worker';
import { Counter, Gauge } from 'prom-client';
import { loadConfigOrExit } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';
import { createRegistry, paymentDurationHistogram, sagaMetrics } from '../lib/metrics.js';
import { connectNats, ensureStreams, watchConnection } from '../lib/nats.js';
import { startOpsServer, temporalReachable } from '../lib/ops-server.js';
import { startTelemetry } from '../lib/telemetry.js';
import { connectTemporalClient } from '../lib/temporal-client.js';
import { openInventory, seedDemoCatalogIfEmpty } from '../activities/inventory/open-inventory.js';
import { PaymentGatewayClient } from '../activities/payment/gateway-client.js';
import { installTemporalRuntime } from './temporal-runtime.js';
import { freeLoopbackPort } from '../lib/free-port.js';
import { createOrderWorker, WORKFLOW_BUNDLE_PATH } from './order-worker.js';
import { existsSync } from 'node:fs';
import { startOrderStarter } from './order-starter.js';

const config = loadConfigOrExit();
const logger = createLogger('worker', config.logLevel);
const telemetry = startTelemetry('order-saga-worker', config.otlpEndpoint);
const temporalMetrics = installTemporalRuntime(logger, await freeLoopbackPort());
const registry = createRegistry('worker');

const nc = await connectNats(config.nats.servers, 'order-saga-worker');
const natsConnected = watchConnection(nc, (change) => logger.warn({ nats: change }, 'NATS connection changed'));
const jsm = await jetstreamManager(nc);
await ensureStreams(jsm);
const js = jetstream(nc);

const inventory = await openInventory(config.database);
if (config.database.seedDemoCatalog && (await seedDemoCatalogIfEmpty(inventory)))
  logger.info('inventory: demo catalog stocked');

const payments = new PaymentGatewayClient({
  baseUrl: config.payment.gatewayUrl,
  timeoutMs: config.payment.timeoutMs,
  breakerFailureThreshold: config.payment.breakerFailureThreshold,
  breakerHalfOpenAfterMs: config.payment.breakerHalfOpenAfterMs,
  duration: paymentDurationHistogram(registry),
});
new Gauge({
  name: 'payment_circuit_open',
  help: 'Payment gateway circuit breaker state: 0 closed, 0.5 half-open, 1 open',
  registers: [registry],
  collect() {
    this.set({ closed: 0, 'half-open': 0.5, open: 1 }[payments.circuitState]);
  },
});

const workerConnection = await NativeConnection.connect({ address: config.temporal.address });
const { client, connection: clientConnection } = await connectTemporalClient(config.temporal);
const worker = await createOrderWorker({
  connection: workerConnection,
  config,
  clients: { inventory, payments, js, metrics: sagaMetrics(registry) },
  telemetry,
});
const workerRun = worker.run();

const starter = config.starter.enabled
  ? await startOrderStarter({
      js,
      jsm,
      client,
      taskQueue: config.temporal.taskQueue,
      settings: config.saga,
      limits: config.starter,
      logger: logger.child({ component: 'starter' }),
      metrics: {
        inFlight: new Gauge({
          name: 'starter_in_flight',
          help: 'OrderCreated events being turned into sagas',
          registers: [registry],
        }),
        redeliveries: new Counter({
          name: 'starter_redeliveries_total',
          help: 'OrderCreated events delivered more than once',
          registers: [registry],
        }),
        deadLettered: new Counter({
          name: 'starter_dead_lettered_total',
          help: 'Events moved to ORDERS_DLQ',
          labelNames: ['reason'],
          registers: [registry],
        }),
        started: new Counter({
          name: 'starter_sagas_total',
          help: 'Saga starts by result',
          labelNames: ['result'],
          registers: [registry],
        }),
      },
    })
  : undefined;

const ops = await startOpsServer(
  config.http.metricsPort,
  registry,
  {
    nats: natsConnected,
    temporal: temporalReachable(clientConnection),
    worker: () => worker.getState() === 'RUNNING',
  },
  temporalMetrics,
);
logger.info(
  {
    taskQueue: config.temporal.taskQueue,
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
