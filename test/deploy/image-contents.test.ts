// The container image's runtime stage, reproduced without a Docker engine: the compiled code
// and the prebuilt workflow bundle, with production dependencies only, in a clean folder. The
// compiled worker and ingress must start from there and become ready against real servers.
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { freePort } from '../../scripts/local-servers.mjs';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const stage = mkdtempSync(join(tmpdir(), 'order-saga-image-'));

beforeAll(async () => {
  // The same steps as the Dockerfile's build and deps stages.
  await exec(`${ROOT}node_modules/.bin/tsc`, ['-p', 'tsconfig.build.json', '--outDir', join(stage, 'dist')], {
    cwd: ROOT,
  });
  await exec(process.execPath, ['--import', 'tsx', 'workers/bundle-workflows.ts', join(stage, 'dist')], { cwd: ROOT });
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, file), join(stage, file));
  await exec('npm', ['install', '--omit=dev', '--no-audit', '--no-fund'], { cwd: stage, maxBuffer: 16 * 1024 * 1024 });
}, 240_000);
afterAll(() => rmSync(stage, { recursive: true, force: true }));

async function runUntilReady(entry: string, env: Record<string, string>, readyUrl: string): Promise<string> {
  const child = spawn(process.execPath, [entry], {
    cwd: stage,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await expect
      .poll(
        () =>
          fetch(readyUrl).then(
            (r) => r.status,
            () => 0,
          ),
        { timeout: 60_000, interval: 250 },
      )
      .toBe(200);
    return output;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

describe('container image contents', () => {
  it('has no development dependency in its node_modules', async () => {
    await expect(exec('npm', ['ls', 'vitest', '--omit=dev'], { cwd: stage })).rejects.toThrow();
  });

  it('starts the compiled worker with the prebuilt workflow bundle and production dependencies only', async () => {
    const metricsPort = await freePort();
    const output = await runUntilReady(
      'dist/workers/main.js',
      {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        NATS_URL: inject('natsUrl'),
        TEMPORAL_TASK_QUEUE: `orders-image-${metricsPort}`,
        TEMPORAL_DEPLOYMENT_NAME: `orders-image-${metricsPort}`,
        STARTER_ENABLED: 'false',
        METRICS_PORT: String(metricsPort),
        EMBEDDED_DATABASE_DIR: join(stage, 'data'),
      },
      `http://127.0.0.1:${metricsPort}/ready`,
    );
    expect(output).toContain(`"workflowBundle":"${join(stage, 'dist/workers/workflow-bundle.js')}"`);
  });

  it('starts the compiled ingress with production dependencies only', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    await runUntilReady(
      'dist/ingress/main.js',
      {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        NATS_URL: inject('natsUrl'),
        PORT: String(port),
        METRICS_PORT: String(metricsPort),
        AUTH_API_KEYS: `image-test:operator:${'0'.repeat(64)}`,
      },
      `http://127.0.0.1:${metricsPort}/ready`,
    );
  });
});
