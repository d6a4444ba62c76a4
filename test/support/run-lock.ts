// A lock shared by the test files of one run (each vitest fork is a process of its own): what
// holds it runs alone among its holders. The Temporal cluster tier takes it: two clusters at
// once (with their NATS nodes, workers and ingresses) starve each other on a 2-core machine
// until workflow tasks wait minutes for dispatch (seen: a Node 24 run where chaos and scale-out
// overlapped). A holder whose process died is taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { isProcessRunning } from '../../lib/process-running.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the run's lock `name` is free, takes it, and resolves its release. */
export async function takeRunLock(name: string, timeoutMs = 20 * 60_000): Promise<() => void> {
  const dir = join(inject('runDir'), `${name}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      // Taken a moment ago: its pid is being written.
    }
    if (Number.isInteger(holder) && !isProcessRunning(holder)) rmSync(dir, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`the run lock ${name} was held for ${timeoutMs / 60_000} min`);
    else await sleep(500);
  }
}
