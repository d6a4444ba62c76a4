// One set-up per test run: a Temporal dev server and a nats-server with JetStream on free
// ports with their data in a temporary folder, the workflow bundle built once, and a
// PostgreSQL database when one can be had. Everything is stopped at the end, also when
// tests fail or the run is interrupted. A server already running on this machine is never used.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { ensureTools } from '../../scripts/toolchain.mjs';
import { freePort, startNats, startTemporal, stopProcess } from '../../scripts/local-servers.mjs';
import { WORKFLOWS_PATH } from '../../workers/order-worker.js';
import { createTemporaryDatabase } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
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

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const found = await ensureTools(['temporal', 'nats-server']);
  const tools = { temporal: found.temporal!, 'nats-server': found['nats-server']! };
  const dir = mkdtempSync(join(tmpdir(), 'order-saga-test-'));
  const children: ChildProcess[] = [];
  const killAll = () => children.forEach((child) => child.exitCode === null && child.kill('SIGKILL'));
  process.once('exit', killAll);

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

  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  const workflowBundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(workflowBundlePath, code);

  const postgres = await createTemporaryDatabase();
  if (!postgres.url) {
    process.stderr.write(
      `\n\x1b[33m!!! PostgreSQL unavailable: ${postgres.reason}\n!!! Inventory tests run on the embedded database only.\x1b[0m\n\n`,
    );
  }

  project.provide('temporalAddress', temporal.address);
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
    await Promise.all([stopProcess(temporal.process), stopProcess(nats.process)]);
    await postgres.drop();
    process.removeListener('exit', killAll);
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
