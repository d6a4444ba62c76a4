// `npm run bench:replay`: the worker's CPU per saga for the workflow side alone (the saga's code,
// its interceptors, the SDK's sandbox and core), by replaying a recorded history many times in
// this process: no server, no network, no activities, so a change to workflow code or to the
// bundle's interceptors can be measured to a fraction of a millisecond, where the end-to-end
// benchmark's noise is several. Each replay is a new workflow in the worker's reusable sandbox,
// as each saga is in production.
//
//   npm run bench:replay -- [--history test/histories/completed.json] [--sagas 300] [--rounds 3]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { bundleOrderWorkflows, tracingWorkerOptions } from '../workers/order-worker.js';

const { values: options } = parseArgs({
  options: {
    history: { type: 'string', default: 'test/histories/completed.json' },
    sagas: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '3' },
  },
});
const sagas = Number(options.sagas);
const rounds = Number(options.rounds);
if (!(sagas > 0) || !(rounds > 0)) {
  console.error('usage: npm run bench:replay -- [--history FILE.json] [--sagas N] [--rounds N]');
  process.exit(2);
}

Runtime.install({ logger: new DefaultLogger('WARN') });
const history = historyFromJSON(JSON.parse(readFileSync(options.history, 'utf8')));
const replayOptions = { workflowBundle: { code: await bundleOrderWorkflows() }, ...tracingWorkerOptions() };

async function replay(count: number): Promise<void> {
  const histories = Array.from({ length: count }, (_, i) => ({ workflowId: `replay-cost-${i}`, history }));
  for await (const result of Worker.runReplayHistories(replayOptions, histories)) if (result.error) throw result.error;
}

await replay(Math.min(sagas, 50)); // warm up: the sandbox, the JIT
console.log(`${options.history}: ${sagas} replays per round`);
for (let round = 1; round <= rounds; round += 1) {
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  await replay(sagas);
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = performance.now() - startedAt;
  console.log(
    `round ${round}: ${((cpu.user + cpu.system) / 1_000 / sagas).toFixed(2)} ms CPU per saga (all threads), ${(wallMs / sagas).toFixed(2)} ms wall`,
  );
}
