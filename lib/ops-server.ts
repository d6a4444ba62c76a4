// The operations endpoints every process serves: /health (alive), /ready (its connections
// are usable) and /metrics (Prometheus). The ingress mounts the same handlers on its own port.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Named readiness checks; each resolves true when its dependency is usable. */
export type ReadinessChecks = Record<string, () => Promise<boolean> | boolean>;

export async function readinessReport(
  checks: ReadinessChecks,
): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
  const entries = await Promise.all(
    Object.entries(checks).map(
      async ([name, check]) =>
        [
          name,
          await Promise.resolve()
            .then(check)
            .catch(() => false),
        ] as const,
    ),
  );
  return { ready: entries.every(([, ok]) => ok), checks: Object.fromEntries(entries) };
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

/** Starts a small HTTP server with only the operations endpoints (for processes without an API). */
export async function startOpsServer(
  port: number,
  registry: Registry,
  checks: ReadinessChecks,
  extraMetrics?: () => Promise<string>,
): Promise<{ server: Server; port: number }> {
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
