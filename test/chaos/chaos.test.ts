// The chaos suite: the product under steady orders while faults hit it one after another, then
// one checker over everything (see invariants.ts). `npm test` runs the short version: every
// fault once, in a fixed order. `npm run chaos` runs the long one: CHAOS_ROUNDS faults picked at
// random (CHAOS_SEED repeats a run), at CHAOS_RATE orders per second. Both run on a Temporal
// cluster on PostgreSQL, as production does; CHAOS_TEMPORAL=dev runs them on the dev server.
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startChaosTier, temporalKindFromEnv, type ChaosTier } from './chaos-tier.js';
import { faultsFor, type Fault } from './faults.js';
import { checkInvariants } from './invariants.js';
import { GIVE_UP_AFTER_MS, startTraffic } from './traffic.js';
import { orderWorkflowId } from '../../workflows/contract.js';

const temporalKind = temporalKindFromEnv();
const FAULTS = faultsFor(temporalKind);
const rounds = Number(process.env.CHAOS_ROUNDS ?? FAULTS.length);
const ordersPerSecond = Number(process.env.CHAOS_RATE ?? 3);
const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);

/** A small seeded generator (mulberry32), so a failing run can be repeated with its seed. */
function seededRandom(start: number): () => number {
  let state = start >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const postgresUrl = inject('postgresUrl');
let tier: ChaosTier | undefined;

afterAll(async () => {
  await tier?.close();
});

// The database faults need a database outside the worker; the embedded one lives inside it.
describe.skipIf(!postgresUrl)('chaos', () => {
  // Starting may wait for another file's Temporal cluster tier to finish (test/support/run-lock.ts).
  beforeAll(async () => {
    tier = await startChaosTier('chaos', { temporal: temporalKind, natsNodes: 1, ingresses: 1, workers: 2 });
  }, 22 * 60_000);

  it(
    `every accepted order reaches the right end through ${rounds} faults on the Temporal ${temporalKind === 'cluster' ? 'cluster' : 'dev server'} (seed ${seed})`,
    async () => {
      const random = seededRandom(seed);
      // The short run takes every fault once in order; the long one draws them.
      const plan: Fault[] = Array.from({ length: rounds }, (_, i) =>
        process.env.CHAOS_ROUNDS ? FAULTS[Math.floor(random() * FAULTS.length)]! : FAULTS[i % FAULTS.length]!,
      );
      if (!tier) throw new Error('the tier did not start');
      const traffic = startTraffic(tier.apis, tier.sku, ordersPerSecond, random);
      const injected: Record<string, number> = {};
      const began = Date.now();
      const progress = (what: string) =>
        process.stderr.write(`[chaos] ${((Date.now() - began) / 1_000).toFixed(0)} s: ${what}\n`);
      for (const [i, fault] of plan.entries()) {
        await sleep(1_000 + random() * 2_000); // a random point in the traffic
        await fault.inject(tier, traffic, random);
        injected[fault.name] = (injected[fault.name] ?? 0) + 1;
        progress(`fault ${i + 1}/${plan.length} (${fault.name}) done, ${traffic.placed.length} orders placed`);
      }
      await sleep(2_000);
      await traffic.stop();
      progress(`traffic stopped: ${traffic.placed.length} orders; checking`);
      const verdict = await checkInvariants(tier, traffic.placed, { progress });
      progress('checked');

      const report = {
        seed,
        temporal: temporalKind,
        ordersPerSecond,
        faults: plan.length,
        injected,
        orders: traffic.placed.length,
        byKind: Object.fromEntries(
          ['plain', 'declined', 'cancelled', 'approval'].map((kind) => {
            const ofKind = traffic.placed.filter((o) => o.kind === kind);
            return [kind, { orders: ofKind.length, decisions: countBy(ofKind, (o) => o.decision ?? 'none') }];
          }),
        ),
        statuses: verdict.statuses,
        compensatedByOutage: verdict.compensatedByOutage,
        clientErrors: traffic.errors,
        violations: verdict.violations,
        unexpectedExits: tier.unexpectedExits.map((exit) => exit.summary),
      };
      mkdirSync('.data', { recursive: true });
      writeFileSync('.data/chaos-report.json', `${JSON.stringify(report, null, 2)}\n`);
      console.log(`[chaos] ${JSON.stringify(report, null, 2)}`);
      for (const exit of tier.unexpectedExits) console.log(`[chaos] ${exit.summary}:\n${exit.lastOutput}`);
      if (verdict.violations.length > 0 || traffic.errors.length > 0)
        console.log(`[chaos] process output:\n${tier.output().slice(-20_000)}`);
      // The history of each order left unfinished, event by event: what the saga saw and when.
      for (const violation of verdict.violations.filter((v) => v.includes('not terminal')).slice(0, 3)) {
        const orderId = violation.split(' ')[0]!;
        const history = await tier.temporalClient.workflow.getHandle(orderWorkflowId(orderId)).fetchHistory();
        const events = (history.events ?? []).map((event) => {
          const type = String(event.eventType).replace('EVENT_TYPE_', '');
          const when = event.eventTime?.seconds ? new Date(Number(event.eventTime.seconds) * 1_000).toISOString() : '';
          const detail =
            event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId ??
            event.workflowExecutionSignaledEventAttributes?.signalName ??
            event.activityTaskScheduledEventAttributes?.activityType?.name ??
            '';
          return `${String(event.eventId)} ${when} ${type} ${detail}`;
        });
        console.log(`[chaos] history of ${orderId}:\n${events.join('\n')}`);
      }

      expect(traffic.placed.length).toBeGreaterThan(0);
      expect(traffic.errors).toEqual([]);
      expect(verdict.violations).toEqual([]);
      // A process that died by itself was restarted (as a supervisor would) and the invariants above
      // held through it; the exit is a defect of its own (its output is printed above and kept in
      // .data/chaos-report.json). The one seen before, Node's "async hook stack has become
      // corrupted" after a SIGSTOP, is fixed (test/end-to-end/worker-pause.test.ts).
      expect(report.unexpectedExits).toEqual([]);
    },
    // Each fault takes up to ~12 s with the gap before it; then the slowest client's give-up time
    // (placing, then deciding), settling (2 min) and starting and checking (2 min).
    rounds * 15_000 + 2 * GIVE_UP_AFTER_MS + 240_000,
  );
});
