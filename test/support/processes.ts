// Runs the product's own processes (worker, ingress) as real child processes in tests, so
// tests can talk to them over HTTP, stop them with SIGTERM or kill them with SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ProductProcess {
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** SIGTERM, then resolves with the exit code once it has exited. */
  stop(): Promise<number | null>;
  /** SIGKILL: no chance to clean up. */
  kill(): Promise<void>;
}

/** Environment shared by product processes in tests: the harness servers, quick saga timings. */
export function productEnv(overrides: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    LOG_LEVEL: 'info',
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    NATS_URL: inject('natsUrl'),
    ACTIVITY_TIMEOUT: '2s',
    RETRY_INITIAL_INTERVAL: '100ms',
    RETRY_MAX_INTERVAL: '500ms',
    PAYMENT_TIMEOUT: '1s',
    WORKER_SHUTDOWN_GRACE: '5s',
    // The API is open and unlimited unless a test is about who may call it (test/ingress/security.test.ts).
    AUTH_DISABLED: 'true',
    RATE_LIMIT_PER_ADDRESS: '0',
    RATE_LIMIT_PER_IDENTITY: '0',
    // Versioned, as in production; each test's workers join a Worker Deployment of their own, named
    // after their task queue, so one test's rollout never moves another's routing.
    ...(overrides.TEMPORAL_TASK_QUEUE && { TEMPORAL_DEPLOYMENT_NAME: overrides.TEMPORAL_TASK_QUEUE }),
    ...overrides,
  };
}

/**
 * Records a process a test file started, so the harness stops it at the end of the run (or the
 * next run does, if this one's runner is killed outright) when the test could not: see global-setup.ts.
 */
export function recordPid(pid: number | undefined): void {
  if (pid !== undefined) appendFileSync(join(inject('runDir'), 'product-pids'), `${pid}\n`);
}

/**
 * A process of the product: run from source (`workers/main.ts`), or from a build of it (the
 * absolute path of a compiled `dist/workers/main.js`, as a container image runs it).
 */
export type ProductEntrypoint = 'workers/main.ts' | 'ingress/main.ts' | `/${string}/dist/workers/main.js`;

export function spawnProductProcess(entry: ProductEntrypoint, env: Record<string, string>): ProductProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  recordPid(child.pid);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Resolves when GET url answers 200; fails with the process output after timeoutMs. */
export async function waitUntilReady(url: string, process: ProductProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process.child.exitCode !== null)
      throw new Error(`process exited (${process.child.exitCode}) before ready:\n${process.output()}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms:\n${process.output().slice(-3000)}`);
}

/** A process of a test's own stack that a fault can kill, freeze and start again on the same address and data. */
export interface ChaosProcess {
  name: string;
  /** SIGKILL: no chance to clean up. */
  kill(): Promise<void>;
  /** Starts it again (after kill) and resolves once it answers. */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: the process holds its connections and answers nothing. */
  freeze(): void;
  thaw(): void;
  /** SIGTERM (after a thaw) and waits for the exit: the end of the run. */
  stop(): Promise<void>;
}
