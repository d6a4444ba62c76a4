// Determinism guard: every committed history (one per saga path, recorded from real runs
// with UPDATE_HISTORIES=1 npm test -- test/workflows/order-saga.test.ts) must replay against the
// current workflow code. A change that breaks replay fails here, before it breaks running sagas.
// They are replayed, in one replay session, by the code of the replay gate that checks a live
// cluster's sagas before a deploy (workers/replay-histories.ts, npm run replay-gate).
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it, inject } from 'vitest';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { HISTORIES_DIR } from '../support/histories.js';
import { replayHistories, type ReplayOutcome } from '../../workers/replay-histories.js';

/**
 * Sagas started in the earlier shapes must keep replaying too: audit publishes as local activities
 * (local-audit/), then one regular activity per audit event (audit-per-event/), then audit events
 * carried by the steps with the final one in a regular activity (audit-with-steps/), then the
 * final one by a local activity with the reservation still a regular one (final-audit-local/), then
 * the reservation and the first charge as local activities in every saga, a cancel taken while
 * NOTIFYING (forward-local/).
 */
const LOCAL_AUDIT_DIR = 'local-audit/';
const AUDIT_PER_EVENT_DIR = 'audit-per-event/';
const AUDIT_WITH_STEPS_DIR = 'audit-with-steps/';
const FINAL_AUDIT_LOCAL_DIR = 'final-audit-local/';
const FORWARD_LOCAL_DIR = 'forward-local/';
const jsonIn = (dir: string) =>
  readdirSync(`${HISTORIES_DIR}${dir}`)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => `${dir}${name}`);
const EARLIER_SHAPES = [
  FORWARD_LOCAL_DIR,
  FINAL_AUDIT_LOCAL_DIR,
  AUDIT_WITH_STEPS_DIR,
  AUDIT_PER_EVENT_DIR,
  LOCAL_AUDIT_DIR,
];
const files = [...jsonIn(''), ...EARLIER_SHAPES.flatMap(jsonIn)];
const SAGA_PATHS = [
  'approved',
  'cancelled-awaiting-approval',
  'cancelled-while-charging',
  'charge-then-timeout',
  'compensation-failed-then-resolved',
  'compensation-failed-then-retried',
  'completed',
  'declined',
  'gateway-outage',
  'out-of-stock',
  'rejected',
];

/** Each file's outcome, replayed once for the whole file (each test below reads its own). */
let outcomes: Map<string, ReplayOutcome<{ file: string }>>;

beforeAll(async () => {
  const histories = files.map((file) => ({
    file,
    workflowId: `replay-${file}`,
    history: historyFromJSON(JSON.parse(readFileSync(`${HISTORIES_DIR}${file}`, 'utf8'))),
  }));
  const replayed = await replayHistories({ codePath: inject('workflowBundlePath') }, histories);
  outcomes = new Map(replayed.map((outcome) => [outcome.file, outcome]));
}, 120_000);

describe('workflow replay', () => {
  it('has a recorded history for every saga path, in the current shape and in each earlier one', () => {
    expect(jsonIn('').map((f) => f.replace('.json', ''))).toEqual(SAGA_PATHS);
    for (const dir of EARLIER_SHAPES)
      expect(jsonIn(dir).map((f) => f.replace(dir, '').replace('.json', ''))).toEqual(SAGA_PATHS);
  });

  it.each(files)('replays %s deterministically', (file) => {
    expect(outcomes.get(file), `${file} was not replayed`).toBeDefined();
    expect(outcomes.get(file)?.failure).toBeUndefined();
  });
});
