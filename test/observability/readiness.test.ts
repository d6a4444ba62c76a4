// /ready with real meaning: each process answers 503, naming the dependency, while Temporal or
// NATS is down, and 200 again once it is back, and the stack then processes orders. This file
// runs a Temporal server of its own, since stopping the harness's would stop every other file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { freePort, startTemporal, stopProcess } from '../../scripts/local-servers.mjs';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';
import type { ProductProcess } from '../support/processes.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { randomUUID } from 'node:crypto';

type Temporal = Awaited<ReturnType<typeof startTemporal>>;

const temporalDir = mkdtempSync(join(tmpdir(), 'order-saga-readiness-temporal-'));
let temporalPort: number;
let temporal: Temporal;
let stack: ProcessTier;
let temporalProxy: TcpProxy;

const launchTemporal = () =>
  startTemporal({ binary: inject('temporalBinary'), port: temporalPort, dataDir: temporalDir });

let processes: ProductProcess[];

beforeAll(async () => {
  temporalPort = await freePort();
  // Temporal is started by the first test, after the processes: they must wait for it. They reach
  // it through a proxy opened once it is set up as a deployment's is (its namespace's retention
  // raised): a worker that met the dev server's one-day default would rightly refuse to start.
  temporalProxy = await startTcpProxy(`127.0.0.1:${temporalPort}`);
  await temporalProxy.cut();
  stack = await startProcessTier('readiness', { TEMPORAL_ADDRESS: temporalProxy.address });
  processes = [stack.launch('workers/main.ts'), stack.launch('ingress/main.ts')];
});

afterAll(async () => {
  await stack?.close();
  await temporalProxy?.close();
  await stopProcess(temporal?.process);
  rmSync(temporalDir, { recursive: true, force: true });
});

/** What each process's /ready answers: status and which checks failed. */
async function readiness() {
  // A process that exited by itself is the failure to report, with what it printed last.
  for (const process of processes ?? [])
    if (process.child.exitCode !== null)
      throw new Error(`a process exited (${process.child.exitCode}):\n${process.output().slice(-3000)}`);
  const probe = async (url: string) => {
    const response = await fetch(`${url}/ready`);
    const body = (await response.json()) as { checks: Record<string, boolean> };
    const failing = Object.entries(body.checks)
      .filter(([, ok]) => !ok)
      .map(([name]) => name);
    return `${response.status}${failing.length ? ` (${failing.join(', ')} down)` : ''}`;
  };
  return { ingress: await probe(stack.ingressOps), worker: await probe(stack.workerOps) };
}

async function orderCompletes(): Promise<void> {
  expect(await stack.waitForTerminal(await stack.placeOrder(), 60_000)).toBe('COMPLETED');
}

describe('/ready', () => {
  it('when the processes start before Temporal answers, then they stay up, not ready, and become ready once it does', async () => {
    const reachable = async () => readiness().catch(() => 'not listening yet');
    await expect.poll(reachable, { timeout: 30_000 }).toEqual({
      ingress: '503 (temporal down)',
      worker: '503 (temporal, worker down)',
    });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(processes.map((p) => p.child.exitCode)).toEqual([null, null]);
    const api = await fetch(`${stack.api}/orders/${randomUUID()}`);
    expect(api.status).toBe(503);
    expect(api.headers.get('retry-after')).toBe('5');

    temporal = await launchTemporal();
    await temporalProxy.restore();
    await expect.poll(readiness, { timeout: 60_000, interval: 500 }).toEqual({ ingress: '200', worker: '200' });
    await orderCompletes();
  }, 120_000);

  it('when Temporal stops, then both processes report not ready naming it, and ready again once it is back', async () => {
    expect(await readiness()).toEqual({ ingress: '200', worker: '200' });
    await stopProcess(temporal.process);
    await expect.poll(readiness, { timeout: 15_000 }).toEqual({
      ingress: '503 (temporal down)',
      worker: '503 (temporal down)',
    });
    temporal = await launchTemporal();
    await expect.poll(readiness, { timeout: 30_000 }).toEqual({ ingress: '200', worker: '200' });
    await orderCompletes();
  }, 120_000);

  it('when NATS stops, then both processes report not ready naming it, and ready again once it is back', async () => {
    await stack.nats.stop();
    await expect.poll(readiness, { timeout: 15_000 }).toEqual({
      ingress: '503 (nats down)',
      worker: '503 (nats down)',
    });
    await stack.nats.restart();
    await expect.poll(readiness, { timeout: 30_000 }).toEqual({ ingress: '200', worker: '200' });
    await orderCompletes();
  }, 120_000);
});
