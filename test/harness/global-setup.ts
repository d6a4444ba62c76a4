// One set-up per test run: a Temporal dev server and a nats-server with JetStream on free
// ports with their data in a temporary folder, the workflow bundle built once, and a
// PostgreSQL database when one can be had. Everything is stopped at the end, also when
// tests fail or the run is interrupted. A server already running on this machine is never used.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { isProcessRunning } from '../../lib/process-running.js';
import { ensureChromium, ensureTools } from '../../scripts/toolchain.mjs';
import { freePort, startNats, startTemporal, stopProcess } from '../../scripts/local-servers.mjs';
import { bundleOrderWorkflows } from '../../workers/order-worker.js';
import { createTemporaryDatabase } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalUiUrl: string;
    runDir: string;
    chromiumPath: string | undefined;
    chromiumUnavailableReason: string | undefined;
    natsUrl: string;
    natsMonitorUrl: string;
    natsBinary: string;
    natsDataDir: string;
    temporalBinary: string;
    workflowBundlePath: string;
    postgresUrl: string | undefined;
    postgresUnavailableReason: string | undefined;
  }
}

const RUN_DIR_PREFIX = 'order-saga-test-';

/**
 * SIGKILLs the processes test files started and recorded (product processes, servers of their
 * own) that are still alive: left behind by a test that failed before it could stop them.
 */
function killRecordedProcesses(runDir: string): number {
  let killed = 0;
  const file = join(runDir, 'product-pids');
  const pids = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
  for (const pid of pids) {
    if (!isProcessRunning(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed += 1;
    } catch {
      // Not ours to stop (the pid was reused by another user's process).
    }
  }
  return killed;
}

/** Stops the servers of earlier runs whose test runner died without cleaning up (e.g. SIGKILL). */
function sweepAbandonedRuns(): void {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(RUN_DIR_PREFIX))) {
    const dir = join(tmpdir(), name);
    try {
      const { owner, servers } = JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')) as {
        owner: number;
        servers: number[];
      };
      if (isProcessRunning(owner)) continue;
      for (const pid of servers) if (isProcessRunning(pid)) process.kill(pid, 'SIGKILL');
      killRecordedProcesses(dir);
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // No pid file yet (a run still starting) or not ours: leave it.
    }
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  sweepAbandonedRuns();
  const found = await ensureTools(['temporal', 'nats-server']);
  const tools = { temporal: found.temporal!, 'nats-server': found['nats-server']! };
  const dir = mkdtempSync(join(tmpdir(), RUN_DIR_PREFIX));
  const children: ChildProcess[] = [];
  const killAll = () => children.forEach((child) => child.exitCode === null && child.kill('SIGKILL'));
  // Node's default SIGINT/SIGTERM end the process without 'exit' handlers: stop the servers first.
  const onSignal = (signal: NodeJS.Signals) => {
    killAll();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', killAll);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const [temporal, nats] = await Promise.all([
    startTemporal({
      binary: tools.temporal,
      port: await freePort(),
      uiPort: await freePort(),
      dataDir: join(dir, 'temporal'),
    }),
    startNats({ binary: tools['nats-server'], port: await freePort(), dataDir: join(dir, 'nats') }),
  ]);
  children.push(temporal.process, nats.process);
  writeFileSync(join(dir, 'pids.json'), JSON.stringify({ owner: process.pid, servers: children.map((c) => c.pid) }));
  writeFileSync(join(dir, 'product-pids'), '');
  project.provide('runDir', dir);

  const code = await bundleOrderWorkflows(quietLogger);
  const workflowBundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(workflowBundlePath, code);

  const postgres = await createTemporaryDatabase();
  if (!postgres.url) {
    process.stderr.write(
      `\n\x1b[33m!!! PostgreSQL unavailable: ${postgres.reason}\n!!! Inventory tests run on the embedded database only.\x1b[0m\n\n`,
    );
  }

  const chromium = await ensureChromium();
  if (!chromium.path)
    process.stderr.write(`\n\x1b[33m!!! ${chromium.reason}\n!!! The real-browser Web UI test cannot run.\x1b[0m\n\n`);
  project.provide('chromiumPath', chromium.path);
  project.provide('chromiumUnavailableReason', chromium.reason);
  project.provide('temporalAddress', temporal.address);
  project.provide('temporalUiUrl', temporal.uiUrl!);
  project.provide('temporalBinary', tools.temporal);
  project.provide('natsUrl', nats.url);
  project.provide('natsMonitorUrl', nats.monitorUrl);
  project.provide('natsBinary', tools['nats-server']);
  project.provide('natsDataDir', join(dir, 'nats'));
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('postgresUrl', postgres.url);
  project.provide('postgresUnavailableReason', postgres.reason);
  process.stderr.write(
    `[harness] Temporal ${temporal.address} (Web UI ${temporal.uiUrl}), NATS ${nats.url}, ready in ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
  );

  return async () => {
    const leftBehind = killRecordedProcesses(dir);
    if (leftBehind > 0) process.stderr.write(`[harness] stopped ${leftBehind} process(es) tests left running\n`);
    await Promise.all([stopProcess(temporal.process), stopProcess(nats.process)]);
    await postgres.drop();
    process.removeListener('exit', killAll);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    rmSync(dir, { recursive: true, force: true });
  };
}

const quietLogger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error: (message: string) => process.stderr.write(`${message}\n`),
  log() {},
};
