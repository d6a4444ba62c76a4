// Determinism guard: every committed history (one per saga path, recorded from real runs
// with UPDATE_HISTORIES=1 npm test -- test/workflows/order-saga.test.ts) must replay against the
// current workflow code. A change that breaks replay fails here, before it breaks running sagas.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it, inject } from 'vitest';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR } from '../support/histories.js';
import { tracingWorkerOptions } from '../../workers/order-worker.js';

const files = readdirSync(HISTORIES_DIR)
  .filter((name) => name.endsWith('.json'))
  .sort();

describe('workflow replay', () => {
  it('has a recorded history for every saga path', () => {
    expect(files.map((f) => f.replace('.json', ''))).toEqual([
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
    ]);
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
