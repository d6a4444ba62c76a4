// Records workflow histories for the replay tests. Set UPDATE_HISTORIES=1 to (re)write
// test/histories/<name>.json from a real run; the replay test replays every file there.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { orderWorkflowId } from '../../workflows/contract.js';
import type { Order } from '../../domain/order.js';

export const HISTORIES_DIR = fileURLToPath(new URL('../histories/', import.meta.url));

export async function recordHistory(client: Client, order: Order, name: string): Promise<void> {
  if (!process.env.UPDATE_HISTORIES) return;
  const history = await client.workflow.getHandle(orderWorkflowId(order.orderId)).fetchHistory();
  mkdirSync(HISTORIES_DIR, { recursive: true });
  writeFileSync(`${HISTORIES_DIR}${name}.json`, `${historyToJSON(history)}\n`);
}
