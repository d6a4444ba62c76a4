// Determinism guard: every committed history (one per saga path, recorded from real runs
// with UPDATE_HISTORIES=1 npm test -- test/workflows/order-saga.test.ts) must replay against the
// current workflow code. A change that breaks replay fails here, before it breaks running sagas.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it, inject } from 'vitest';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR } from '../support/histories.js';
import { tracingWorkerOptions } from '../../workers/order-worker.js';

/** Sagas started before audit publishes became regular activities: they must keep replaying too. */
const LOCAL_AUDIT_DIR = 'local-audit/';
const jsonIn = (dir: string) =>
  readdirSync(`${HISTORIES_DIR}${dir}`)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => `${dir}${name}`);
const files = [...jsonIn(''), ...jsonIn(LOCAL_AUDIT_DIR)];
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

describe('workflow replay', () => {
  it('has a recorded history for every saga path, in the current shape and in the local-audit one', () => {
    expect(jsonIn('').map((f) => f.replace('.json', ''))).toEqual(SAGA_PATHS);
    expect(jsonIn(LOCAL_AUDIT_DIR).map((f) => f.replace(LOCAL_AUDIT_DIR, '').replace('.json', ''))).toEqual(SAGA_PATHS);
  });

  it.each(files)('replays %s deterministically', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(`${HISTORIES_DIR}${file}`, 'utf8')));
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: { codePath: inject('workflowBundlePath') }, ...tracingWorkerOptions() },
        history,
        `replay-${file}`,
      ),
    ).resolves.toBeUndefined();
  });
});
