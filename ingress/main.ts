// The ingress process: the HTTP API on PORT, publishing orders to JetStream; the operations
// endpoints (/health, /ready with details, /metrics) on METRICS_PORT; the payload codec server for
// the Temporal Web UI on CODEC_PORT when set. It listens at once and waits for NATS and Temporal:
// until both answer, /ready says which is missing and the API answers 503 with Retry-After.
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { Connection } from '@temporalio/client';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { loadConfigOrExit } from '../lib/config.js';
import { createLogger } from '../lib/logger.js';
import { createRegistry, orderPublishDurationHistogram, streamFillMetrics } from '../lib/metrics.js';
import { connectNats, ensureStreams, readStreamFill, watchConnection } from '../lib/nats.js';
import { readinessReport, startOpsServer, temporalReachable, type ReadinessChecks } from '../lib/ops-server.js';
import { untilAvailable } from '../lib/dependencies.js';
import { startTelemetry } from '../lib/telemetry.js';
import { connectTemporalClient } from '../lib/temporal-client.js';
import { Keyring, PAYLOADS_IN_CLEAR_WARNING } from '../lib/encryption.js';
import { INVENTORY_ADMIN_SUBJECT } from '../lib/inventory-admin.js';
import { createIngressApp, OPEN_API_WARNING } from './app.js';
import { renderOpenApi } from './openapi.js';
import { Authenticator } from './callers.js';
import { startCodecServer } from './codec-server.js';
import { createPublicServer } from './http-server.js';
import { IDEMPOTENCY_BUCKET, openIdempotencyBucket, OrderIntake } from './order-intake.js';

const config = loadConfigOrExit(process.env, { ingress: true });
const logger = createLogger('ingress', config.logLevel);
const telemetry = startTelemetry('order-saga-ingress', config.otlpEndpoint);
const registry = createRegistry('ingress');

const waiting: { nats?: () => boolean; temporal?: Connection } = {};
const readiness: ReadinessChecks = {
  nats: () => waiting.nats?.() ?? false,
  temporal: () => (waiting.temporal ? temporalReachable(waiting.temporal)() : false),
};
const authenticator = new Authenticator(config.auth);
if (authenticator.open) logger.warn(OPEN_API_WARNING);
const keyring = new Keyring(config.payloadKeys);
if (!keyring.enabled) logger.warn(PAYLOADS_IN_CLEAR_WARNING);
const ops = await startOpsServer(config.http.metricsPort, registry, readiness).catch((error: unknown) => {
  logger.fatal({ err: error }, `cannot listen on port ${config.http.metricsPort}; set METRICS_PORT to a free port`);
  process.exit(1);
});
const serving: { app?: express.Express } = {};
/** The contract is served from the first moment, also while the API waits for NATS and Temporal. */
const openApi = renderOpenApi();
const server = createPublicServer(config.http, (req, res) => {
  if (serving.app) return void serving.app(req, res);
  // Starting: the probes answer (not ready); the API asks the client to come back.
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  if (path === '/openapi.json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(openApi);
  if (path === '/ready') {
    return void readinessReport(readiness).then(({ ready }) =>
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready })),
    );
  }
  res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '5' }).end(
    JSON.stringify({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'the ingress is starting and waits for NATS and Temporal; retry after 5 seconds',
      instance: (req.url ?? '/').slice(0, 200),
    }),
  );
});
server.on('error', (error) => {
  logger.fatal({ err: error }, `cannot listen on port ${config.http.port}; set PORT to a free port`);
  process.exit(1);
});
server.listen(config.http.port, () => {
  logger.info(
    {
      port: (server.address() as AddressInfo).port,
      opsPort: ops.port,
      authentication: authenticator.open ? 'OFF' : 'required',
      traces: telemetry.exportUrl ?? 'not exported',
    },
    'ingress listening',
  );
});

const nc = await untilAvailable(
  `NATS at ${config.nats.servers.join(',')}`,
  () => connectNats(config.nats, 'order-saga-ingress'),
  logger,
);
const natsConnected = watchConnection(nc, (change) => logger.warn({ nats: change }, 'NATS connection changed'));
waiting.nats = natsConnected;
const jsm = await jetstreamManager(nc);
// A cluster still electing leaders, or busy creating replicas, times out: wait, as for the connection.
await untilAvailable('the JetStream streams', () => ensureStreams(jsm, config.nats), logger);
const js = jetstream(nc);
const idempotency = await untilAvailable(
  'the idempotency bucket',
  () =>
    openIdempotencyBucket(
      js,
      jsm,
      {
        ttlMs: config.idempotencyTtlMs,
        replicas: config.nats.streamReplicas,
        maxBytes: config.nats.idempotencyMaxBytes,
      },
      logger,
    ),
  logger,
);
// The bucket's stream: full, it refuses new keys and the API answers 503 (the worker reports the contract streams).
streamFillMetrics(registry, () => readStreamFill(jsm, [`KV_${IDEMPOTENCY_BUCKET}`]));

const { client: temporal, connection: temporalConnection } = await untilAvailable(
  `Temporal at ${config.temporal.address}`,
  () => connectTemporalClient(config),
  logger,
);
waiting.temporal = temporalConnection;

const intake = new OrderIntake({
  js,
  idempotency,
  connected: natsConnected,
  keyring,
  publishDuration: orderPublishDurationHistogram(registry),
});

serving.app = createIngressApp({
  intake,
  temporal,
  logger,
  registry,
  readiness,
  authenticator,
  rateLimits: config.rateLimits,
  trustProxy: config.http.trustProxy,
  inventoryAdmin: async (request) =>
    (await nc.request(INVENTORY_ADMIN_SUBJECT, JSON.stringify(request), { timeout: 10_000 })).json(),
});
const codec =
  config.http.codecPort === undefined
    ? undefined
    : await startCodecServer({
        port: config.http.codecPort,
        codecCorsOrigins: config.http.codecCorsOrigins,
        keys: config.payloadKeys,
        authenticator,
        logger,
      });
logger.info('ingress ready: NATS and Temporal answer');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: no new requests, finishing those in flight');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await codec?.close();
  ops.server.close();
  await nc.drain();
  await temporalConnection.close();
  await telemetry.shutdown();
  logger.info('stopped');
}
process.once('SIGTERM', () => void shutdown('SIGTERM').then(() => process.exit(0)));
process.once('SIGINT', () => void shutdown('SIGINT').then(() => process.exit(0)));
