// The benchmark's short version: `npm run bench` at a low rate for a few seconds per scenario, so
// the benchmark itself keeps working (its stack, its eager ceiling, every scenario, its report).
// It measures nothing: figures come from `npm run bench` on an idle machine (docs/benchmarks.md).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'order-saga-bench-smoke-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run bench (short)', () => {
  it('runs every scenario end to end and writes a report with each one finished', async () => {
    const out = join(dir, 'report.md');
    const args = ['--quick', '--rates', '60', '--ceiling-rates', '120', '--duration', '5', '--drain', '20'];
    const { stdout } = await exec(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', ...args, '--out', out, '--plot', join(dir, 'plot.svg')],
      { env: { ...process.env, LOG_LEVEL: 'warn' }, maxBuffer: 64 * 1024 * 1024, timeout: 240_000 },
    );
    // The summary names every scenario (whether a 5-second step counts as sustained is no business of a smoke test).
    expect(stdout).toContain('- product end to end: POST /orders → JetStream → starter → order saga:');
    const report = readFileSync(out, 'utf8');
    for (const [scenario, rate, units] of [
      ['empty workflow (the server ceiling)', 120, 10],
      ["order saga's shape, activities doing nothing", 60, 5],
      ['textbook saga (regular activities, default worker)', 60, 5],
      ['order saga, started by a client', 60, 5],
      ['product end to end: POST /orders → JetStream → starter → order saga', 60, 5],
    ] as const)
      expect(report).toContain(`| ${scenario} | ${rate} | ${units}/${units} |`);
    // The saga's shape as the report reads it from the histories; the no-work baseline has the
    // product saga's history event for event (events, workflow tasks, activity tasks, local
    // activities, upserts): when the saga changes shape, bench/baseline-workflows.ts must follow.
    expect(report).toMatch(/\| order saga, started by a client \| 2\d\.0 \| 2\.0 \| 1\.0 \|/);
    const shapeColumns = (scenario: string) =>
      report
        .split('\n')
        .find((line) => line.startsWith(`| ${scenario} |`) && line.split('|').length === 10)
        ?.split('|')
        .slice(2, 7)
        .map(Number);
    expect(shapeColumns("order saga's shape, activities doing nothing")).toEqual(
      shapeColumns('product end to end: POST /orders → JetStream → starter → order saga'),
    );
    // The server runs as the product's stack runs it: the sagas' activity tasks come back with the
    // workflow task's completion (best effort: a free slot at that moment; not every one takes it
    // under the whole suite's load, so this checks it is on, without the server flag exactly 0, not
    // how many took it). The product's workers are versioned, so its starter does not start sagas
    // eagerly (an eager start is pinned to the starting worker's build, whatever is current).
    // The product's row of the cost table (8 columns; the results and sizing tables name it too).
    const productShape = report
      .split('\n')
      .find((line) => line.startsWith('| product end to end') && line.split('|').length === 10);
    const [activitiesEager, startedEager] = productShape!.split('|').slice(7, 9).map(Number);
    expect(activitiesEager).toBeGreaterThan(0);
    expect(startedEager).toBe(0);
  }, 300_000);
});
