// The production topology on one machine: a three-node NATS JetStream cluster (streams and the
// idempotency bucket with 3 replicas), two workers whose starters share the durable consumer, two
// ingresses, a Temporal cluster (frontend, two history nodes, matching, internal worker) on
// PostgreSQL, inventory on PostgreSQL. Under steady orders: kill -9 the node leading ORDERS, then
// a worker, then a history node (its shards move to the other), then an ingress (clients move to
// the other one with the same Idempotency-Key), each brought back; then ORDERS' leader steps
// down. Afterwards the chaos
// suite's checker finds every order at its right end, one saga, at most one charge, stock
// conserved, audit ids unique, and one OrderCreated per order in ORDERS.
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectNats, STREAMS } from '../../lib/nats.js';
import { IDEMPOTENCY_BUCKET } from '../../ingress/order-intake.js';
import type { ChaosProcess } from '../support/processes.js';
import { startChaosTier, type ChaosTier } from '../chaos/chaos-tier.js';
import { historyNodeKilled, ordersLeaderChange } from '../chaos/faults.js';
import { checkInvariants } from '../chaos/invariants.js';
import { startTraffic } from '../chaos/traffic.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const postgresUrl = inject('postgresUrl');
let tier: ChaosTier | undefined;
const started = (): ChaosTier => {
  if (!tier) throw new Error('the tier did not start');
  return tier;
};

/** Starting may wait for another file's Temporal cluster tier to finish (test/support/run-lock.ts). */
const TIER_START_TIMEOUT_MS = 22 * 60_000;

afterAll(async () => {
  await tier?.close();
});

/** Kills a process, waits, starts it again. */
async function bounce(target: ChaosProcess, downMs: number): Promise<void> {
  await target.kill();
  await sleep(downMs);
  await target.start();
}

// Two workers cannot share the embedded database: the scaled-out topology runs on PostgreSQL.
describe.skipIf(!postgresUrl)('scale-out topology', () => {
  beforeAll(async () => {
    tier = await startChaosTier('scale-out', { temporal: 'cluster', natsNodes: 3, ingresses: 2, workers: 2 });
  }, TIER_START_TIMEOUT_MS);

  it('when a NATS node, a worker, a Temporal history node and an ingress are killed and ORDERS changes leader under load, then no order is lost or doubled', async () => {
    const tier = started();
    const nc = await connectNats(tier.natsUrls, 'scale-out-test');
    const jsm = await jetstreamManager(nc);
    const replicasOf = async (stream: string) => {
      const info = await jsm.streams.info(stream);
      return {
        configured: info.config.num_replicas,
        followers: info.cluster?.replicas?.length ?? 0,
        leader: info.cluster?.leader,
      };
    };
    for (const stream of [...Object.values(STREAMS).map((s) => s.name), `KV_${IDEMPOTENCY_BUCKET}`])
      expect(await replicasOf(stream), stream).toMatchObject({ configured: 3, followers: 2 });

    const traffic = startTraffic(tier.apis, tier.sku, 4, Math.random);
    const events: string[] = [];
    await sleep(3_000);
    // The node leading ORDERS, so the kill also forces a leader election under load.
    const leader = (await replicasOf(STREAMS.orders.name)).leader;
    const leaderNode = tier.nats.find((node) => node.name === leader);
    expect(leaderNode, `ORDERS leader ${leader} is one of the nodes`).toBeDefined();
    await bounce(leaderNode!, 3_000);
    events.push(`killed ${leaderNode!.name}, the ORDERS leader`);
    await sleep(2_000);
    await bounce(tier.workers[0]!, 2_000);
    events.push('killed worker-1');
    await sleep(2_000);
    await historyNodeKilled.inject(tier, traffic, Math.random);
    events.push('killed a history node; the other took its shards');
    await sleep(2_000);
    await bounce(tier.ingresses[0]!, 1_000);
    events.push('killed ingress-1');
    await sleep(2_000);
    await ordersLeaderChange.inject(tier, traffic, Math.random);
    events.push(`ORDERS leader ${(await replicasOf(STREAMS.orders.name)).leader} after a step-down`);
    await sleep(3_000);
    await traffic.stop();
    await nc.close();

    const verdict = await checkInvariants(tier, traffic.placed);
    console.log(
      `[scale-out] ${JSON.stringify({ events, orders: traffic.placed.length, statuses: verdict.statuses, clientErrors: traffic.errors, violations: verdict.violations }, null, 2)}`,
    );
    for (const exit of tier.unexpectedExits) console.log(`[scale-out] ${exit.summary}:\n${exit.lastOutput}`);
    if (verdict.violations.length > 0) console.log(tier.output().slice(-20_000));
    expect(traffic.placed.length).toBeGreaterThan(50);
    expect(traffic.errors).toEqual([]);
    expect(verdict.violations).toEqual([]);
    // A process that died by itself was restarted and the invariants held; the exit (printed
    // above) is a defect of its own (see test/chaos/chaos.test.ts).
    expect(tier.unexpectedExits.map((exit) => exit.summary)).toEqual([]);
  }, 300_000);
});
