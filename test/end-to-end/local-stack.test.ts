// `npm start` as a new user meets it: the whole local stack on free ports with its data in a
// folder of its own; it takes an order; a component killed with SIGKILL is restarted (and says
// so) while the stack keeps serving; the payment sandbox's ledger survives its restart; Ctrl-C
// stops everything.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-servers.mjs';
import { registerIngressOrigin } from '../support/api-contract.js';
import { recordPid } from '../support/processes.js';
import { runOpsCommand } from '../support/commands.js';
import type { Ledger } from '../support/payment-sandbox.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let dataDir: string;
let ports: Record<string, number>;
let stack: ChildProcess;
let output = '';

/** The pid of the product process running `entry` for this stack (found by its environment). */
function pidOf(entry: string): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const command = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (!command.includes(entry)) continue;
      if (readFileSync(`/proc/${name}/environ`, 'utf8').includes(`ORDER_SAGA_DATA_DIR=${dataDir}`)) return Number(name);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

async function placeOrder(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${ports.PORT}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      customerId: 'c-local',
      items: [{ sku: 'SKU-COFFEE-1KG', quantity: 1, unitPrice: 1_899 }],
      currency: 'EUR',
      paymentToken: 'tok_visa',
    }),
  });
  expect(response.status).toBe(202);
  const { orderId } = (await response.json()) as { orderId: string };
  await expect
    .poll(
      async () =>
        ((await (await fetch(`http://127.0.0.1:${ports.PORT}/orders/${orderId}`)).json()) as { status: string }).status,
      { timeout: 60_000, interval: 250 },
    )
    .toBe('COMPLETED');
  return orderId;
}

const ledgerOf = async (orderId: string) =>
  (await (
    await fetch(`http://127.0.0.1:${ports.PAYMENT_SANDBOX_PORT}/v1/ledger?reference=${orderId}`)
  ).json()) as Ledger;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'order-saga-local-stack-'));
  ports = {};
  for (const name of [
    'TEMPORAL_PORT',
    'TEMPORAL_UI_PORT',
    'NATS_PORT',
    'NATS_MONITOR_PORT',
    'PAYMENT_SANDBOX_PORT',
    'PORT',
    'METRICS_PORT',
    'INGRESS_METRICS_PORT',
    'CODEC_PORT',
  ])
    ports[name] = await freePort();
  registerIngressOrigin(`http://127.0.0.1:${ports.PORT}`); // answers checked against docs/openapi.json
  stack = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ORDER_SAGA_DATA_DIR: dataDir,
      ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  recordPid(stack.pid);
  stack.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  stack.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 150_000;
  while (!output.includes('The local stack is up')) {
    if (stack.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}, 180_000);

afterAll(async () => {
  if (stack && stack.exitCode === null) {
    stack.kill('SIGINT');
    await new Promise((resolve) => stack.once('exit', resolve));
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start', () => {
  it("when it is up, then it says authentication is off and takes an order on the versioned worker's build", async () => {
    expect(output).toContain('Authentication is OFF');
    expect(output).toContain('Saga builds       npm run saga-builds -- status   (Worker Deployment order-saga)');
    await placeOrder();
    // The operator command finds the stack by itself, as on a developer's machine.
    const { code, out } = await runOpsCommand('ops/saga-builds.ts', ['status', '--json'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ORDER_SAGA_LOCAL_STACK_FILE: join(dataDir, 'local-stack.json'),
    });
    expect(code, out).toBe(0);
    const report = JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)) as {
      currentBuildId: string;
      builds: { buildId: string; status: string }[];
    };
    expect(report.builds).toEqual([expect.objectContaining({ buildId: report.currentBuildId, status: 'current' })]);
  });

  it('when the worker is killed, then the stack restarts it, says so, and orders complete again', async () => {
    const worker = pidOf('workers/main.ts');
    expect(worker).toBeDefined();
    process.kill(worker!, 'SIGKILL');
    await expect.poll(() => output, { timeout: 10_000 }).toContain('worker exited (SIGKILL); restarting it in 1 s');
    await expect.poll(() => output, { timeout: 60_000 }).toContain('worker restarted');
    await expect
      .poll(
        () =>
          fetch(`http://127.0.0.1:${ports.METRICS_PORT}/ready`).then(
            (r) => r.status,
            () => 0,
          ),
        {
          timeout: 60_000,
          interval: 500,
        },
      )
      .toBe(200);
    expect(pidOf('workers/main.ts')).not.toBe(worker);
    await placeOrder();
  });

  it('when the payment sandbox is killed, then it comes back knowing the charges it made', async () => {
    const orderId = await placeOrder();
    expect((await ledgerOf(orderId)).charges).toHaveLength(1);
    process.kill(pidOf('sandbox/payment-gateway/main.ts')!, 'SIGKILL');
    await expect.poll(() => output, { timeout: 10_000 }).toContain('sandbox exited (SIGKILL); restarting it');
    await expect
      .poll(
        () =>
          ledgerOf(orderId).then(
            (ledger) => ledger.charges.length,
            () => -1,
          ),
        { timeout: 30_000, interval: 500 },
      )
      .toBe(1);
  });

  it('when it gets Ctrl-C, then it stops every component and exits 0', async () => {
    stack.kill('SIGINT');
    const code = await new Promise((resolve) => stack.once('exit', resolve));
    expect(code).toBe(0);
    expect(pidOf('workers/main.ts')).toBeUndefined();
    expect(pidOf('ingress/main.ts')).toBeUndefined();
    expect(pidOf('sandbox/payment-gateway/main.ts')).toBeUndefined();
  });
});
