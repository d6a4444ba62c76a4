// Starts and stops the real servers this project runs against on one machine:
// a Temporal dev server (with its Web UI) and a nats-server with JetStream.
// Used by `npm start` (persistent data in .data/) and by the test harness
// (temporary data, free ports). Never touches a server it did not start.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

/**
 * Retention of closed workflows set on the namespace of every Temporal we start. It must cover
 * how long the ORDERS stream keeps events (7 days), or the worker refuses to start: an event
 * replayed after its saga's history was deleted could start the order again.
 */
export const NAMESPACE_RETENTION = '720h';

/**
 * How the dev server's SQLite database writes: write-ahead log, synced at checkpoints
 * (`normal`) unless TEMPORAL_SQLITE_SYNCHRONOUS=full syncs every commit. `normal` keeps every
 * committed transaction through a crash of any process (kill -9 included); an OS crash or a
 * power loss may lose the last commits, as JetStream's default fsync interval may. About twice
 * the throughput of the dev server's default (rollback journal, full sync) on this machine.
 */
export function sqlitePragmas(synchronous = process.env.TEMPORAL_SQLITE_SYNCHRONOUS || 'normal') {
  if (!['normal', 'full'].includes(synchronous))
    throw new Error(`TEMPORAL_SQLITE_SYNCHRONOUS must be normal or full (got "${synchronous}")`);
  return ['journal_mode=wal', `synchronous=${synchronous}`];
}

/**
 * Dynamic configuration the product's Temporal runs with. Eager activity dispatch: the server
 * hands an activity scheduled by a workflow task back in the answer to that task's completion,
 * when the worker has a free slot, instead of queueing it for a poller (the SDK asks for it by
 * default; the server's flag is off by default). The activity's timeouts and retries are the same
 * either way. A production cluster sets the same key in its dynamic config (docs/deployment.md, "Scaling out, and how to size it").
 */
export const TEMPORAL_DYNAMIC_CONFIG = { 'system.enableActivityEagerExecution': true };

/** The search attributes of the public contract, registered on every Temporal we start. */
export const SEARCH_ATTRIBUTES = {
  OrderStatus: 'Keyword',
  CustomerId: 'Keyword',
  OrderTotal: 'Double',
  OrderUpdatedAt: 'Datetime',
};

/** Thrown when a configured port is already in use; says which variable moves it. */
export class PortInUseError extends Error {
  constructor(port, variable) {
    super(`port ${port} is already in use${variable ? `; set ${variable} to a free port` : ''}`);
    this.name = 'PortInUseError';
  }
}

/** Asks the kernel for a free loopback port. */
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
    // The system may hand a port back out once closed: a process asking for several ports before
    // any is bound (a NATS cluster's nine) must not get one twice.
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    // The latest ports only: a long-lived process must not exhaust the range and loop for ever.
    if (handedOut.size > 1_000) handedOut.delete(handedOut.values().next().value);
    return port;
  }
}
/** Every port freePort returned in this process. */
const handedOut = new Set();

/**
 * A free loopback port below the kernel's ephemeral range (which starts at 32768 on Linux), for a
 * server that cannot take a larger one: Temporal stores its membership ports as SQL smallint.
 */
export async function freePortBelow32768() {
  for (let tries = 0; tries < 1_000; tries += 1) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    if (handedOut.has(port) || !(await portIsFree(port))) continue;
    handedOut.add(port);
    if (handedOut.size > 1_000) handedOut.delete(handedOut.values().next().value);
    return port;
  }
  throw new Error('no free port between 20000 and 32767 on 127.0.0.1');
}

/** Resolves true when nothing listens on 127.0.0.1:port. */
export async function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Throws PortInUseError for the first taken port of { VARIABLE: port }. */
export async function assertPortsFree(portsByVariable) {
  for (const [variable, port] of Object.entries(portsByVariable)) {
    if (!(await portIsFree(port))) throw new PortInUseError(port, variable);
  }
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
export function tcpAccepts(port) {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Polls `check` until it resolves true, or throws after `timeoutMs` naming `what`. */
export async function waitFor(what, check, { timeoutMs = 60_000, intervalMs = 200, child } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null)
      throw new Error(
        `${what}: the process exited with code ${child.exitCode} before it was ready (see ${child.logFile})`,
      );
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${what} was not ready after ${timeoutMs / 1000}s${child ? ` (see ${child.logFile})` : ''}`);
}

function startProcess(name, command, args, logFile) {
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.logFile = logFile;
  child.label = name;
  return child;
}

/**
 * Stops a child: SIGTERM, then SIGKILL after `graceMs`. Resolves when it has exited.
 * @param {import('node:child_process').ChildProcess | undefined} child
 * @param {number} [graceMs]
 */
export async function stopProcess(child, graceMs = 5_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts `temporal server start-dev` with its state in `dataDir`/temporal.db.
 * @param {{ binary: string, port: number, uiPort?: number, uiCodecEndpoint?: string, metricsPort?: number, httpPort?: number, dataDir: string, namespace?: string, logLevel?: string }} options
 *   uiPort 0 or absent = headless; uiCodecEndpoint: the payload codec server the Web UI decodes payloads with
 * @returns {Promise<{ address: string, namespace: string, uiUrl: string | undefined, metricsUrl: string, process: import('node:child_process').ChildProcess }>}
 */
export async function startTemporal(options) {
  // The metrics and HTTP ports it picks itself are free when picked, but another process may take
  // one before the server binds it (an outgoing connection's ephemeral port, say): then pick again.
  const picksPorts = options.metricsPort === undefined || options.httpPort === undefined;
  const log = join(options.dataDir, 'temporal.log');
  for (let attempt = 1; ; attempt += 1) {
    const logStart = existsSync(log) ? statSync(log).size : 0;
    try {
      return await startTemporalOnce(options);
    } catch (error) {
      const portTaken =
        existsSync(log) && readFileSync(log).subarray(logStart).toString('utf8').includes('address already in use');
      if (!picksPorts || !portTaken || attempt === 3) throw error;
      process.stderr.write(`[servers] Temporal dev server: a port it picked was taken meanwhile; starting it again\n`);
    }
  }
}

async function startTemporalOnce({
  binary,
  port,
  uiPort,
  uiCodecEndpoint,
  metricsPort,
  httpPort,
  dataDir,
  namespace = 'default',
  logLevel = 'warn',
}) {
  mkdirSync(dataDir, { recursive: true });
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--namespace', namespace];
  args.push('--db-filename', join(dataDir, 'temporal.db'), '--log-level', logLevel, '--log-format', 'json');
  for (const pragma of sqlitePragmas()) args.push('--sqlite-pragma', pragma);
  for (const [key, value] of Object.entries(TEMPORAL_DYNAMIC_CONFIG))
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  const serverMetricsPort = metricsPort ?? (await freePort());
  args.push('--metrics-port', String(serverMetricsPort), '--http-port', String(httpPort ?? (await freePort())));
  if (uiPort) args.push('--ui-ip', '127.0.0.1', '--ui-port', String(uiPort));
  else args.push('--headless');
  if (uiPort && uiCodecEndpoint) args.push('--ui-codec-endpoint', uiCodecEndpoint);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  const child = startProcess('temporal', binary, args, join(dataDir, 'temporal.log'));
  const address = `127.0.0.1:${port}`;
  await waitFor(
    `Temporal dev server on ${address}`,
    async () => (await tcpAccepts(port)) && (await temporalHealthy(binary, address)),
    {
      timeoutMs: 90_000,
      intervalMs: 300,
      child,
    },
  );
  const retention = spawnSync(
    binary,
    [
      'operator',
      'namespace',
      'update',
      '--address',
      address,
      '--namespace',
      namespace,
      '--retention',
      NAMESPACE_RETENTION,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (retention.status !== 0)
    throw new Error(`could not set the retention of namespace ${namespace}: ${retention.stderr || retention.stdout}`);
  return {
    address,
    namespace,
    uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined,
    metricsUrl: `http://127.0.0.1:${serverMetricsPort}/metrics`,
    process: child,
  };
}

/** True when the Temporal frontend at `address` answers SERVING to the CLI's health check. */
export async function temporalHealthy(binary, address) {
  const result = await runCommand(binary, ['operator', 'cluster', 'health', '--address', address], {
    timeoutMs: 10_000,
  });
  return result.status === 0 && /SERVING/.test(result.stdout);
}

/**
 * Runs a command to its end without blocking the event loop (a proxy or server in this process
 * keeps serving meanwhile); SIGKILLs it after `timeoutMs`.
 * @param {string} command
 * @param {string[]} args
 * @param {{ timeoutMs?: number, env?: NodeJS.ProcessEnv }} [options]
 * @returns {Promise<{ status: number | null, stdout: string, stderr: string }>}
 */
export function runCommand(command, args, { timeoutMs = 60_000, env = process.env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ status: null, stdout, stderr: `${stderr}${error.message}` });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/**
 * Starts nats-server with JetStream. `syncInterval` is JetStream's fsync policy
 * ("always" or a duration; the server's default is 2m). With `cluster`, the server is one node
 * of a JetStream cluster: it listens for routes on `cluster.port` and connects to `cluster.routes`
 * (the other nodes' route ports); start every node before waiting on any.
 * `extraConfig`: more lines of server configuration (e.g. `tls { … }`, `authorization { … }`).
 * @param {{ binary: string, port: number, monitorPort?: number, dataDir: string, syncInterval?: string, cluster?: { name: string, port: number, routes: number[] }, extraConfig?: string[] }} options
 * @returns {Promise<{ url: string, monitorUrl: string, port: number, process: import('node:child_process').ChildProcess }>}
 */
export async function startNats({ binary, port, monitorPort, dataDir, syncInterval, cluster, extraConfig = [] }) {
  mkdirSync(dataDir, { recursive: true });
  const monitor = monitorPort ?? (await freePort());
  const configFile = join(dataDir, 'nats.conf');
  const jetstream = [`store_dir: ${JSON.stringify(join(dataDir, 'jetstream'))}`];
  if (syncInterval) jetstream.push(`sync_interval: ${JSON.stringify(syncInterval)}`);
  const config = [
    `server_name: "order-saga-${port}"`,
    `listen: "127.0.0.1:${port}"`,
    `http: "127.0.0.1:${monitor}"`,
    `jetstream { ${jetstream.join(', ')} }`,
  ];
  if (cluster) {
    const routes = cluster.routes.map((routePort) => JSON.stringify(`nats-route://127.0.0.1:${routePort}`));
    config.push(
      `cluster { name: ${JSON.stringify(cluster.name)}, listen: "127.0.0.1:${cluster.port}", routes: [${routes.join(', ')}] }`,
    );
  }
  config.push(...extraConfig);
  writeFileSync(configFile, `${config.join('\n')}\n`);
  const child = startProcess('nats-server', binary, ['-c', configFile], join(dataDir, 'nats.log'));
  const monitorUrl = `http://127.0.0.1:${monitor}`;
  await waitFor(
    `nats-server on 127.0.0.1:${port}`,
    async () => (await fetch(`${monitorUrl}/healthz?js-enabled-only=true`)).ok,
    { timeoutMs: 30_000, child },
  );
  return { url: `nats://127.0.0.1:${port}`, monitorUrl, port, process: child };
}
