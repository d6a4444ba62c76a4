// The operations endpoints every process serves: /health (alive), /ready (its connections
// are usable) and /metrics (Prometheus). The ingress mounts the same handlers on its own port.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, type Registry } from 'prom-client';
import type { Connection } from '@temporalio/client';

/** Named readiness checks; each resolves true when its dependency is usable. */
export type ReadinessChecks = Record<string, () => Promise<boolean> | boolean>;

/** How long one readiness check may take before it counts as not ready (a probe must answer promptly). */
export const READINESS_CHECK_TIMEOUT_MS = 2_000;

export async function readinessReport(
  checks: ReadinessChecks,
  timeoutMs = READINESS_CHECK_TIMEOUT_MS,
): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
  const withinTime = (check: () => Promise<boolean> | boolean) => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = Promise.resolve()
      .then(check)
      .catch(() => false);
    return Promise.race([result, timedOut]).finally(() => clearTimeout(timer));
  };
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [name, await withinTime(check)] as const),
  );
  return { ready: entries.every(([, ok]) => ok), checks: Object.fromEntries(entries) };
}

/** A readiness check that Temporal's frontend answers, within the check's time budget. */
export function temporalReachable(connection: Connection): () => Promise<boolean> {
  return async () => {
    await connection.withDeadline(Date.now() + READINESS_CHECK_TIMEOUT_MS, () =>
      connection.workflowService.getSystemInfo({}),
    );
    return true;
  };
}

/** Answers /health, /ready and /metrics (plus `extraMetrics`, e.g. the Temporal SDK's); returns false for any other path. */
export async function handleOpsRequest(
  req: IncomingMessage,
  res: ServerResponse,
  registry: Registry,
  checks: ReadinessChecks,
  extraMetrics?: () => Promise<string>,
): Promise<boolean> {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
  } else if (path === '/ready') {
    const report = await readinessReport(checks);
    res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(report));
  } else if (path === '/metrics') {
    const extra = extraMetrics ? await extraMetrics().catch(() => '') : '';
    res.writeHead(200, { 'content-type': registry.contentType }).end(`${await registry.metrics()}\n${extra}`);
  } else {
    return false;
  }
  return true;
}

/** readiness_check{check}: 1 when the check passes, evaluated at each scrape (alerts on a process not ready). */
function readinessGauge(registry: Registry, checks: ReadinessChecks): void {
  new Gauge({
    name: 'readiness_check',
    help: 'Readiness checks of this process (1 = passing), as /ready reports them',
    labelNames: ['check'],
    registers: [registry],
    async collect() {
      const report = await readinessReport(checks);
      for (const [check, ok] of Object.entries(report.checks)) this.set({ check }, ok ? 1 : 0);
    },
  });
}

/** Starts the operations server: /health, /ready (with details) and /metrics (readiness_check included). */
export async function startOpsServer(
  port: number,
  registry: Registry,
  checks: ReadinessChecks,
  extraMetrics?: () => Promise<string>,
): Promise<{ server: Server; port: number }> {
  readinessGauge(registry, checks);
  const server = createServer((req, res) => {
    handleOpsRequest(req, res, registry, checks, extraMetrics)
      .then((handled) => {
        if (!handled)
          res
            .writeHead(404, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: 'not found: try /health, /ready or /metrics' }));
      })
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}
