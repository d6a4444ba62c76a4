// The embedded database (PGlite) serves one process: a second worker pointed at the same folder
// refuses to start with a message saying what to do, and the first keeps running. A worker that
// was killed leaves its lock behind; the next one takes it over.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-servers.mjs';
import { productEnv, spawnProductProcess, waitUntilReady, type ProductProcess } from '../support/processes.js';

const dataDir = mkdtempSync(join(tmpdir(), 'order-saga-embedded-'));
const started: ProductProcess[] = [];

afterAll(async () => {
  await Promise.all(started.map((p) => p.kill()));
  rmSync(dataDir, { recursive: true, force: true });
});

async function worker(): Promise<{ process: ProductProcess; ops: string }> {
  const metricsPort = await freePort();
  const env = productEnv({
    EMBEDDED_DATABASE_DIR: join(dataDir, 'inventory'),
    TEMPORAL_TASK_QUEUE: `orders-embedded-${randomUUID()}`,
    STARTER_ENABLED: 'false',
    METRICS_PORT: String(metricsPort),
  });
  const process = spawnProductProcess('workers/main.ts', env);
  started.push(process);
  return { process, ops: `http://127.0.0.1:${metricsPort}` };
}

describe('embedded database', () => {
  it('when a second worker opens the same embedded database, then it refuses to start and the first keeps serving', async () => {
    const first = await worker();
    await waitUntilReady(`${first.ops}/ready`, first.process);

    const second = await worker();
    const code = await new Promise<number | null>((resolve) => second.process.child.once('exit', resolve));
    expect(code, `the second worker exited ${code}:\n${second.process.output().slice(-3000)}`).toBe(2);
    expect(second.process.output()).toContain(`is open in process ${first.process.child.pid}`);
    expect(second.process.output()).toContain('set DATABASE_URL to PostgreSQL');
    expect((await fetch(`${first.ops}/ready`)).status).toBe(200);

    // Killed outright, the first leaves its lock; the next worker takes it over and opens the same data.
    await first.process.kill();
    expect(existsSync(join(dataDir, 'inventory.lock'))).toBe(true);
    const third = await worker();
    await waitUntilReady(`${third.ops}/ready`, third.process);
  });
});
