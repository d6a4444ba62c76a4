// The faults the chaos suite injects into a running tier. Each one breaks something, keeps it
// broken for a few seconds while orders keep arriving, and heals it: processes killed with
// SIGKILL and started again on the same address and data, a worker frozen past the starter's ack
// wait, the payment gateway down, slow or hanging after it charged, the database unreachable
// while orders reserve or release, and OrderCreated events delivered twice and out of order. On a
// Temporal cluster: a history node killed under load (its shards move to the other), the frontend
// killed, matching restarted, PostgreSQL unreachable for 20 s (Temporal and inventory alike).
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connectNats, STREAMS, SUBJECTS } from '../../lib/nats.js';
import { publishEnvelope } from '../../lib/envelope.js';
import { NO_FAULTS } from '../../sandbox/payment-gateway/server.js';
import { readStream } from '../support/streams.js';
import type { ChaosProcess } from '../support/processes.js';
import type { ChaosTier, TemporalKind } from './chaos-tier.js';
import { HISTORY_SHARDS } from '../../scripts/temporal-cluster.mjs';
import type { Traffic } from './traffic.js';

export interface Fault {
  name: string;
  /** Breaks, waits, heals; resolves when the stack is whole again. */
  inject(tier: ChaosTier, traffic: Traffic, random: () => number): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function killAndRestart(name: string, pick: (tier: ChaosTier, random: () => number) => ChaosProcess, downMs: number) {
  return {
    name,
    async inject(tier: ChaosTier, _traffic: Traffic, random: () => number) {
      const target = pick(tier, random);
      await target.kill();
      await sleep(downMs);
      await target.start();
    },
  } satisfies Fault;
}

function gatewayFault(name: string, faults: Partial<typeof NO_FAULTS>, forMs: number): Fault {
  return {
    name,
    async inject(tier) {
      await tier.gateway.setFaults(faults);
      await sleep(forMs);
      await tier.gateway.setFaults(NO_FAULTS);
    },
  };
}

const pickOne = <T>(list: readonly T[], random: () => number): T => list[Math.floor(random() * list.length)]!;
const aWorker = (tier: ChaosTier, random: () => number) => pickOne(tier.workers, random);
/** The tier's Temporal process called `name` (the cluster's members are named by service). */
function temporalProcess(tier: ChaosTier, name: string): ChaosProcess {
  const found = tier.temporal.find((process) => process.name === name);
  if (!found)
    throw new Error(`no Temporal process ${name} in this tier (${tier.temporal.map((p) => p.name).join(', ')})`);
  return found;
}

/** Faults of the dev server: one process holds all of Temporal. */
const DEV_SERVER_FAULTS: readonly Fault[] = [killAndRestart('kill -9 temporal', (tier) => tier.temporal[0]!, 3_000)];

/** How many history shards a cluster process owns, from its numshards_gauge metric. */
async function shardsOwned(tier: ChaosTier, name: string): Promise<number> {
  const text = await (await fetch(tier.temporalMetrics[name]!)).text();
  const line = text.split('\n').find((l) => l.startsWith('numshards_gauge'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/**
 * A history node killed under load: down until the other one owns every shard (membership declared
 * it dead and its shards moved; the fault fails if they do not within 60 s), then started again
 * until it owns shards again.
 */
export const historyNodeKilled: Fault = {
  name: 'kill -9 history node',
  async inject(tier, _traffic, random) {
    const [victim, survivor] = random() < 0.5 ? ['history-1', 'history-2'] : ['history-2', 'history-1'];
    const before = await shardsOwned(tier, survivor);
    await temporalProcess(tier, victim).kill();
    // Down until the survivor owns every shard (membership declared the node dead and the shards
    // moved): the fault fails if they never do.
    const began = Date.now();
    let owned = before;
    while (owned < HISTORY_SHARDS && Date.now() - began < 60_000) {
      await sleep(500);
      owned = await shardsOwned(tier, survivor).catch(() => owned);
    }
    if (owned < HISTORY_SHARDS)
      throw new Error(`${survivor} owned ${owned} of ${HISTORY_SHARDS} shards 60 s after ${victim} was killed`);
    process.stderr.write(
      `[chaos] ${survivor} took ${victim}'s shards (${before} → ${owned}) in ${Date.now() - began} ms\n`,
    );
    await temporalProcess(tier, victim).start();
    // Back in the ring once it owns shards again (the next kill of it must take some away).
    const back = Date.now();
    while ((await shardsOwned(tier, victim).catch(() => 0)) === 0) {
      if (Date.now() - back > 60_000) throw new Error(`${victim} owned no shard 60 s after it was started again`);
      await sleep(500);
    }
  },
};

/** Faults of a Temporal cluster's processes and of the database under it. */
const CLUSTER_FAULTS: readonly Fault[] = [
  historyNodeKilled,
  killAndRestart('kill -9 frontend', (tier) => temporalProcess(tier, 'frontend'), 3_000),
  {
    name: 'matching restarted',
    async inject(tier) {
      const matching = temporalProcess(tier, 'matching');
      await matching.stop();
      await matching.start();
    },
  },
  {
    name: 'PostgreSQL unreachable for 20 s',
    async inject(tier) {
      // The one server both use: Temporal's persistence and visibility, and the inventory.
      await Promise.all([tier.temporalDatabase!.cut(), tier.database.cut()]);
      await sleep(20_000);
      await Promise.all([tier.temporalDatabase!.restore(), tier.database.restore()]);
    },
  },
];

/** What the suite injects into a tier on `temporal`: the product's faults and those of its Temporal. */
export function faultsFor(temporal: TemporalKind): readonly Fault[] {
  return [...PRODUCT_FAULTS, ...(temporal === 'cluster' ? CLUSTER_FAULTS : DEV_SERVER_FAULTS)];
}

const PRODUCT_FAULTS: readonly Fault[] = [
  killAndRestart('kill -9 ingress', (tier, random) => pickOne(tier.ingresses, random), 1_000),
  killAndRestart('kill -9 worker', aWorker, 2_000),
  killAndRestart('kill -9 nats-server', (tier, random) => pickOne(tier.nats, random), 2_000),
  {
    name: 'SIGSTOP worker past the ack wait',
    async inject(tier, _traffic, random) {
      const worker = aWorker(tier, random);
      worker.freeze();
      await sleep(8_000); // the stack's STARTER_ACK_WAIT is 4 s
      worker.thaw();
    },
  },
  gatewayFault('gateway outage', { outage: true }, 5_000),
  gatewayFault('gateway slow', { latencyMs: 900 }, 5_000),
  // Charges recorded but never answered, and charges that land after the client gave up.
  gatewayFault('gateway charges then hangs', { chargeThenTimeout: 3, chargeLatencyMs: 1_500 }, 5_000),
  {
    name: 'database unreachable during reserve',
    async inject(tier) {
      await tier.database.cut();
      await sleep(4_000);
      await tier.database.restore();
    },
  },
  {
    name: 'database unreachable during release',
    async inject(tier, traffic) {
      // Declined orders reserve (database up), wait at the slow gateway, are declined while the
      // database is unreachable, so their releases meet the cut.
      await tier.gateway.setFaults({ chargeLatencyMs: 1_500 });
      traffic.burst(6, 'declined');
      await sleep(1_000);
      await tier.database.cut();
      await sleep(4_000);
      await tier.database.restore();
      await tier.gateway.setFaults(NO_FAULTS);
    },
  },
  {
    name: 'duplicate and out-of-order deliveries',
    async inject(tier) {
      // OrderCreated events published again under new message ids (JetStream stores them), the
      // newest first: every one must be recognised as an order that already has its saga.
      const nc = await connectNats(tier.natsUrls, 'chaos-replayer');
      try {
        const js = jetstream(nc);
        const newestFirst = (await readStream(js, await jetstreamManager(nc), STREAMS.orders.name))
          .slice(-15)
          .reverse();
        for (const [copy, event] of [...newestFirst, ...newestFirst].entries()) {
          const { subject: _subject, headers: _headers, ...envelope } = event;
          await publishEnvelope(js, SUBJECTS.orderCreated, { ...envelope, id: `${envelope.id}:chaos-copy-${copy}` });
        }
      } finally {
        await nc.close();
      }
    },
  },
];

/** The ORDERS stream's leader steps down (a cluster only): another node leads, publishes carry on. */
export const ordersLeaderChange: Fault = {
  name: 'ORDERS leader steps down',
  async inject(tier) {
    const nc = await connectNats(tier.natsUrls, 'chaos-stepdown');
    try {
      const before = (await (await jetstreamManager(nc)).streams.info(STREAMS.orders.name)).cluster?.leader;
      await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAMS.orders.name}`, '', { timeout: 5_000 });
      // Resolves once another node leads.
      for (let tries = 0; tries < 50; tries += 1) {
        const info = await (await jetstreamManager(nc)).streams.info(STREAMS.orders.name).catch(() => undefined);
        const leader = info?.cluster?.leader;
        if (leader && leader !== before) return;
        await sleep(200);
      }
      throw new Error(`ORDERS kept its leader ${before} after a step-down`);
    } finally {
      await nc.close();
    }
  },
};
