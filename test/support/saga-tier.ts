// Saga tier: the activity tier (activity-tier.ts) plus an order worker in this process on its
// own task queue, and a Temporal client, started together and closed together.
import type { Client } from '@temporalio/client';
import { startActivityTier, type ActivityTier } from './activity-tier.js';
import { connectClient, startInProcessWorker, type RunningWorker } from './temporal.js';

export interface SagaTier {
  stack: ActivityTier;
  worker: RunningWorker;
  client: Client;
  close(): Promise<void>;
}

export async function startSagaTier(options?: Parameters<typeof startActivityTier>[0]): Promise<SagaTier> {
  const stack = await startActivityTier(options);
  const worker = await startInProcessWorker(stack.clients);
  const { client, close: closeClient } = await connectClient();
  return {
    stack,
    worker,
    client,
    async close() {
      await worker.stop();
      await closeClient();
      await stack.close();
    },
  };
}
