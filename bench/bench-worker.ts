// The baselines' worker process: the workflows of baseline-workflows.ts with the product's own
// activities (and one that does nothing), on TEMPORAL_TASK_QUEUE, with the SDK's default worker
// settings. It also starts the workflows that take no input (the ceiling's empty workflow, the
// saga's shape) the fastest way the SDK allows: on request over NATS (EAGER_START_SUBJECT), from a
// client on this worker's own connection, eagerly, so the first workflow task comes back in the
// start call's answer instead of through the task queue.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { EAGER_START_SUBJECT, EAGER_START_TYPES } from './eager-start.js';
import { jetstream } from '@nats-io/jetstream';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { openInventory } from '../activities/inventory/open-inventory.js';
import { PaymentGatewayClient } from '../activities/payment/gateway-client.js';
import { loadConfigOrExit } from '../lib/config.js';
import { connectNats } from '../lib/nats.js';

const config = loadConfigOrExit();
Runtime.install({ logger: new DefaultLogger('WARN') }); // worker settings stay the SDK's defaults; only its chatter goes
const nc = await connectNats(config.nats, 'order-saga-bench-baselines');
const inventory = await openInventory(config.database);
const payments = new PaymentGatewayClient({
  baseUrl: config.payment.gatewayUrl,
  timeoutMs: config.payment.timeoutMs,
  breakerFailureThreshold: config.payment.breakerFailureThreshold,
  breakerHalfOpenAfterMs: config.payment.breakerHalfOpenAfterMs,
});
/** The activity of the saga's shape: a round trip through the SDK and the server, and nothing else. */
const noWork = { nothing: async (): Promise<void> => {} };
export type NoWork = typeof noWork;

const connection = await NativeConnection.connect({ address: config.temporal.address });
const worker = await Worker.create({
  connection,
  namespace: config.temporal.namespace,
  taskQueue: config.temporal.taskQueue,
  workflowsPath: fileURLToPath(new URL('./baseline-workflows.ts', import.meta.url)),
  activities: { ...createActivities({ inventory, payments, js: jetstream(nc) }), ...noWork },
});
const starter = new Client({ connection, namespace: config.temporal.namespace });
const startRequests = nc.subscribe(EAGER_START_SUBJECT);
void (async () => {
  for await (const request of startRequests) {
    const type = request.string() || 'emptyWorkflow';
    if (!EAGER_START_TYPES.includes(type)) {
      request.respond(`error: no workflow ${type} to start; one of ${EAGER_START_TYPES.join(', ')}`);
      continue;
    }
    const workflowId = `${type}-${randomUUID()}`;
    starter.workflow.start(type, { taskQueue: config.temporal.taskQueue, workflowId, requestEagerStart: true }).then(
      () => request.respond(workflowId),
      (error: Error) => request.respond(`error: ${error.message}`),
    );
  }
})();
process.once('SIGTERM', () => worker.shutdown());
console.log('baseline worker running');
await worker.run();
await nc.drain();
await inventory.db.close();
