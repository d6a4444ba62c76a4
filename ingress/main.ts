// The ingress process: the HTTP API on PORT, publishing orders to JetStream.
import type { AddressInfo } from 'node:net';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Histogram } from 'prom-client';
import { loadConfigOrExit } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';
import { createRegistry } from '../lib/metrics.js';
import { connectNats, ensureStreams, watchConnection } from '../lib/nats.js';
import { temporalReachable } from '../lib/ops-server.js';
import { startTelemetry } from '../lib/telemetry.js';
import { connectTemporalClient } from '../lib/temporal-client.js';
import { createIngressApp } from './app.js';
import { IDEMPOTENCY_BUCKET, IDEMPOTENCY_TTL_MS, OrderIntake } from './order-intake.js';

const config = loadConfigOrExit();
const logger = createLogger('ingress', config.logLevel);
const telemetry = startTelemetry('order-saga-ingress', config.otlpEndpoint);
const registry = createRegistry('ingress');

const nc = await connectNats(config.nats.servers, 'order-saga-ingress');
const natsConnected = watchConnection(nc, (change) => logger.warn({ nats: change }, 'NATS connection changed'));
await ensureStreams(await jetstreamManager(nc));
const js = jetstream(nc);
const idempotency = await new Kvm(js).create(IDEMPOTENCY_BUCKET, { ttl: IDEMPOTENCY_TTL_MS, history: 1 });

const { client: temporal, connection: temporalConnection } = await connectTemporalClient(config.temporal);

const intake = new OrderIntake({
  js,
  idempotency,
  connected: natsConnected,
  publishDuration: new Histogram({
    name: 'order_publish_duration_seconds',
    help: 'Time to store an OrderCreated event in JetStream, by outcome',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  }),
});

const app = createIngressApp({
  intake,
  temporal,
  logger,
  registry,
  readiness: {
    nats: natsConnected,
    temporal: temporalReachable(temporalConnection),
  },
});

const server = app.listen(config.http.port, () => {
  logger.info(
    { port: (server.address() as AddressInfo).port, traces: telemetry.exportUrl ?? 'not exported' },
    'ingress listening',
  );
});
server.on('error', (error) => {
  logger.fatal({ err: error }, `cannot listen on port ${config.http.port}; set PORT to a free port`);
  process.exit(1);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: no new requests, finishing those in flight');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await nc.drain();
  await temporalConnection.close();
  await telemetry.shutdown();
  logger.info('stopped');
}
process.once('SIGTERM', () => void shutdown('SIGTERM').then(() => process.exit(0)));
process.once('SIGINT', () => void shutdown('SIGINT').then(() => process.exit(0)));
