// What a saga-level test file needs: real activity clients (stack.ts), an order worker on its
// own task queue, and a Temporal client, started together and closed together.
import type { Client } from '@temporalio/client';
import { createTestStack, type TestStack } from './stack.js';
import { connectClient, startOrderWorker, type RunningWorker } from './temporal.js';

export interface SagaEnvironment {
  stack: TestStack;
  worker: RunningWorker;
  client: Client;
  close(): Promise<void>;
}

export async function startSagaEnvironment(options?: Parameters<typeof createTestStack>[0]): Promise<SagaEnvironment> {
  const stack = await createTestStack(options);
  const worker = await startOrderWorker(stack.clients);
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
