// The runbook's `nats` CLI commands (natscli, built by the toolchain) work as written against the
// product's streams and its starter consumer: stream list and info, the consumer's backlog, a
// look at the dead letters.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { ensureTool } from '../../scripts/toolchain.mjs';
import { connectNats } from '../../lib/nats.js';
import { STARTER_CONSUMER } from '../../workers/order-starter.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

const run = promisify(execFile);
let stack: ProcessTier;
let natsCli: string;

beforeAll(async () => {
  natsCli = await ensureTool('nats');
  stack = await startProcessTier('nats-cli');
  await stack.start('workers/main.ts');
  const nc = await connectNats([stack.nats.url], 'nats-cli-test');
  await jetstream(nc).publish('orders.created', 'not an order', { msgID: `poison-${randomUUID()}` });
  await nc.close();
});

afterAll(async () => {
  await stack?.close();
});

/** Runs `nats <args>` as the runbook writes it, with --server pointing at this file's NATS. */
async function nats(...args: string[]): Promise<string> {
  const { stdout } = await run(natsCli, ['--server', stack.nats.url, ...args], { timeout: 20_000 });
  return stdout;
}

describe('nats CLI (runbook commands)', () => {
  it('when an operator lists and inspects the streams, then the contract streams and their settings show', async () => {
    const list = await nats('stream', 'ls', '--names');
    for (const stream of ['ORDERS', 'AUDIT', 'ORDERS_DLQ', 'NOTIFICATIONS']) expect(list).toContain(stream);
    const info = JSON.parse(await nats('stream', 'info', 'ORDERS', '--json')) as {
      config: { subjects: string[]; discard: string; max_bytes: number };
    };
    expect(info.config).toMatchObject({ subjects: ['orders.>'], discard: 'new', max_bytes: 1024 ** 3 });
  });

  it("when an operator looks at the starter's consumer, then its backlog figures show", async () => {
    const info = JSON.parse(await nats('consumer', 'info', 'ORDERS', STARTER_CONSUMER, '--json')) as {
      name: string;
      num_pending: number;
      num_ack_pending: number;
    };
    expect(info.name).toBe(STARTER_CONSUMER);
    await expect
      .poll(
        async () =>
          (JSON.parse(await nats('consumer', 'info', 'ORDERS', STARTER_CONSUMER, '--json')) as typeof info).num_pending,
        {
          timeout: 10_000,
        },
      )
      .toBe(0);
  });

  it('when an operator reads a dead letter, then its reason header and original body show', async () => {
    await expect
      .poll(async () => (await nats('stream', 'info', 'ORDERS_DLQ', '--json')).includes('"messages": 1'), {
        timeout: 15_000,
      })
      .toBe(true);
    const letter = await nats('stream', 'get', 'ORDERS_DLQ', '1');
    expect(letter).toContain('Dlq-Reason');
    expect(letter).toContain('not an order');
  });
});
