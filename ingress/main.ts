// The ingress process: the HTTP API on PORT, publishing orders to JetStream. It listens at once
// and waits for NATS and Temporal: until both answer, /ready says which is missing and the API
// answers 503 with Retry-After.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { Connection } from '@temporalio/client';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { loadConfigOrExit } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';
import { createRegistry, orderPublishDurationHistogram } from '../lib/metrics.js';
import { connectNats, ensureStreams, watchConnection } from '../lib/nats.js';
import { handleOpsRequest, temporalReachable, type ReadinessChecks } from '../lib/ops-server.js';
import { untilAvailable } from '../lib/dependencies.js';
import { startTelemetry } from '../lib/telemetry.js';
import { connectTemporalClient } from '../lib/temporal-client.js';
import { createIngressApp } from './app.js';
import { IDEMPOTENCY_BUCKET, OrderIntake } from './order-intake.js';

const config = loadConfigOrExit();
const logger = createLogger('ingress', config.logLevel);
const telemetry = startTelemetry('order-saga-ingress', config.otlpEndpoint);
const registry = createRegistry('ingress');

const waiting: { nats?: () => boolean; temporal?: Connection } = {};
const readiness: ReadinessChecks = {
  nats: () => waiting.nats?.() ?? false,
  temporal: () => (waiting.temporal ? temporalReachable(waiting.temporal)() : false),
};
const serving: { app?: express.Express } = {};
const server = createServer((req, res) => {
  if (serving.app) return void serving.app(req, res);
  // Starting: the operations endpoints answer (not ready); the API asks the client to come back.
  void handleOpsRequest(req, res, registry, readiness).then((handled) => {
    if (handled) return;
    res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '5' }).end(
      JSON.stringify({
        type: 'about:blank',
        title: 'Service Unavailable',
        status: 503,
        detail: 'the ingress is starting and waits for NATS and Temporal; retry after 5 seconds',
      }),
    );
  });
});
server.on('error', (error) => {
  logger.fatal({ err: error }, `cannot listen on port ${config.http.port}; set PORT to a free port`);
  process.exit(1);
});
server.listen(config.http.port, () => {
  logger.info(
    { port: (server.address() as AddressInfo).port, traces: telemetry.exportUrl ?? 'not exported' },
    'ingress listening',
  );
});

const nc = await untilAvailable(
  `NATS at ${config.nats.servers.join(',')}`,
  () => connectNats(config.nats.servers, 'order-saga-ingress'),
  logger,
);
const natsConnected = watchConnection(nc, (change) => logger.warn({ nats: change }, 'NATS connection changed'));
waiting.nats = natsConnected;
const jsm = await jetstreamManager(nc);
// A cluster still electing leaders, or busy creating replicas, times out: wait, as for the connection.
await untilAvailable('the JetStream streams', () => ensureStreams(jsm, config.nats.streamReplicas), logger);
const js = jetstream(nc);
const idempotency = await untilAvailable(
  'the idempotency bucket',
  () =>
    new Kvm(js).create(IDEMPOTENCY_BUCKET, {
      ttl: config.idempotencyTtlMs,
      history: 1,
      replicas: config.nats.streamReplicas,
    }),
  logger,
);

const { client: temporal, connection: temporalConnection } = await untilAvailable(
  `Temporal at ${config.temporal.address}`,
  () => connectTemporalClient(config.temporal),
  logger,
);
waiting.temporal = temporalConnection;

const intake = new OrderIntake({
  js,
  idempotency,
  connected: natsConnected,
  publishDuration: orderPublishDurationHistogram(registry),
});

serving.app = createIngressApp({ intake, temporal, logger, registry, readiness });
logger.info('ingress ready: NATS and Temporal answer');

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
