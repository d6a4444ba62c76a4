// The baselines' worker process: emptyWorkflow and textbookSaga (baseline-workflows.ts) with
// the product's own activities, on TEMPORAL_TASK_QUEUE, with the SDK's default worker settings.
import { fileURLToPath } from 'node:url';
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
const worker = await Worker.create({
  connection: await NativeConnection.connect({ address: config.temporal.address }),
  namespace: config.temporal.namespace,
  taskQueue: config.temporal.taskQueue,
  workflowsPath: fileURLToPath(new URL('./baseline-workflows.ts', import.meta.url)),
  activities: createActivities({ inventory, payments, js: jetstream(nc) }),
});
process.once('SIGTERM', () => worker.shutdown());
console.log('baseline worker running');
await worker.run();
await nc.drain();
await inventory.db.close();
