#!/usr/bin/env node
// `npm test`: set-up, then typecheck, lint, format check and every test (against real servers the test
// harness starts). Runs every phase, reports each, exits non-zero when any failed, and
// ends with the line "tests: N passed, N failed, N skipped".
// Extra arguments go to vitest (e.g. `npm test -- test/workflows`).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, setUp, step } from './setup.mjs';

const started = Date.now();
const tools = await setUp();
const env = {
  ...process.env,
  TEMPORAL_CLI_PATH: tools.temporal,
  TEMPORAL_SERVER_PATH: tools['temporal-server'],
  TEMPORAL_SQL_TOOL_PATH: tools['temporal-sql-tool'],
  NATS_SERVER_PATH: tools['nats-server'],
  TCTL_PATH: tools.tctl,
  HELM_PATH: tools.helm,
  PROMETHEUS_PATH: tools.prometheus,
  NATS_CLI_PATH: tools.nats,
};
const bin = (name) => join(ROOT, 'node_modules', '.bin', name);
const vitestArgs = process.argv.slice(2);

const phases = [];
function run(name, command, args) {
  step(name);
  const phaseStart = Date.now();
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', env });
  const ok = result.status === 0;
  phases.push({ name, ok, seconds: (Date.now() - phaseStart) / 1000 });
  return ok;
}

if (vitestArgs.length === 0) {
  run('Typecheck (tsc)', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
  run('Lint (eslint)', bin('eslint'), ['--max-warnings', '0', '.']);
  run('Format (prettier --check)', bin('prettier'), ['--check', '--log-level', 'warn', '.']);
}
const report = join(ROOT, '.data', 'test-results.json');
rmSync(report, { force: true });
run('Tests (vitest, against real Temporal and NATS servers)', bin('vitest'), ['run', ...vitestArgs]);

step('Summary');
for (const phase of phases)
  process.stderr.write(`  ${phase.ok ? 'ok  ' : 'FAIL'}  ${phase.name} (${phase.seconds.toFixed(1)}s)\n`);
process.stderr.write(`  total ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
let counts = { passed: 0, failed: 0, skipped: 0 };
if (existsSync(report)) {
  const results = JSON.parse(readFileSync(report, 'utf8'));
  counts = {
    passed: results.numPassedTests,
    failed: results.numFailedTests,
    skipped: results.numPendingTests + results.numTodoTests,
  };
  // A suite that failed to load counts as a failure even when no test inside it ran.
  counts.failed += results.testResults.filter(
    (file) => file.status === 'failed' && file.assertionResults.length === 0,
  ).length;
}
const failedPhases = phases.filter((phase) => !phase.ok).length;
console.log(`checks: ${phases.length - failedPhases} passed, ${failedPhases} failed`);
console.log(`tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exit(failedPhases > 0 || counts.failed > 0 ? 1 : 0);
