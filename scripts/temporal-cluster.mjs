// A Temporal cluster on loopback, shaped as production runs it: temporal-server's services as
// separate processes (a frontend, history nodes, matching, the internal worker) on PostgreSQL,
// with SQL visibility, in two databases of their own. The namespace and the contract's search
// attributes are registered by the script the Helm chart's Job runs. For the test tiers and the
// benchmark that need a production-shaped Temporal; `npm start` keeps the dev server.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePortBelow32768,
  NAMESPACE_RETENTION,
  runCommand,
  stopProcess,
  tcpAccepts,
  TEMPORAL_DYNAMIC_CONFIG,
  temporalHealthy,
  waitFor,
} from './local-servers.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The script the chart's search-attributes Job and Compose run (namespace, search attributes, retention). */
export const REGISTER_SCRIPT = join(ROOT, 'deploy', 'helm', 'order-saga', 'files', 'register-search-attributes.sh');

/**
 * Creates the cluster's schemas with temporal-sql-tool (its embedded PostgreSQL 12 schemas at
 * their newest version) in two databases that already exist and are empty.
 * @param {string} sqlTool
 * @param {{ host: string, port: number, user: string, password?: string }} postgres
 * @param {{ persistence: string, visibility: string }} databases
 */
export async function setUpSchemas(sqlTool, postgres, databases) {
  for (const [database, schema] of [
    [databases.persistence, 'postgresql/v12/temporal'],
    [databases.visibility, 'postgresql/v12/visibility'],
  ]) {
    for (const command of [
      ['setup-schema', '-v', '0.0'],
      ['update-schema', '--schema-name', schema],
    ]) {
      const result = await runCommand(sqlTool, ['--plugin', 'postgres12', '--quiet', ...command], {
        timeoutMs: 120_000,
        env: {
          ...process.env,
          SQL_HOST: postgres.host,
          SQL_PORT: String(postgres.port),
          SQL_USER: postgres.user,
          SQL_PASSWORD: postgres.password ?? '',
          SQL_DATABASE: database,
        },
      });
      if (result.status !== 0)
        throw new Error(`temporal-sql-tool ${command[0]} on ${database} failed: ${result.stderr || result.stdout}`);
    }
  }
}

/** History shards of a cluster started here (production runs hundreds or thousands; two nodes split these). */
export const HISTORY_SHARDS = 8;

/**
 * Connections each process may hold, to persistence and to visibility (about 50 for the cluster).
 * History does the most (every workflow task, timer and visibility write goes through it).
 */
export const POOL_SIZES = {
  frontend: { persistence: 5, visibility: 5 },
  history: { persistence: 10, visibility: 3 },
  matching: { persistence: 5, visibility: 2 },
  worker: { persistence: 3, visibility: 2 },
};

/**
 * About 30 for the cluster: what the test tiers use, so two clusters (two test files at once)
 * and their products' pools fit in PostgreSQL's default max_connections of 100.
 */
export const SMALL_POOL_SIZES = {
  frontend: { persistence: 3, visibility: 3 },
  history: { persistence: 6, visibility: 2 },
  matching: { persistence: 3, visibility: 1 },
  worker: { persistence: 2, visibility: 1 },
};

/**
 * @typedef {'frontend' | 'history' | 'matching' | 'worker'} ServiceName
 * @typedef {{ name: string, service: ServiceName, grpcPort: number, membershipPort: number, httpPort?: number, metricsPort: number }} Member
 * @typedef {{ name: string, service: ServiceName, metricsUrl: string, process(): import('node:child_process').ChildProcess, start(): Promise<void>, kill(): Promise<void>, stop(): Promise<void> }} ClusterMember
 */

/**
 * Starts the cluster's processes on free loopback ports and waits until the frontend serves and
 * the namespace has the contract's search attributes.
 * @param {{
 *   serverBinary: string, temporalCli: string, dataDir: string,
 *   postgres: { host: string, port: number, user: string, password?: string },
 *   historyVisibility?: { host: string, port: number },
 *   databases: { persistence: string, visibility: string },
 *   historyNodes?: number, shards?: number, namespace?: string, logLevel?: string,
 *   poolSizes?: typeof POOL_SIZES,
 *   onStart?: (child: import('node:child_process').ChildProcess, started: { name: string, logFile: string }) => void,
 * }} options  `postgres` is where the services connect (a proxy in front of the server, say);
 *   `historyVisibility`, where the history nodes write visibility, when elsewhere (a proxy that can
 *   stall those writes alone, so the search index lags while it can still be read);
 *   `onStart` sees every process started, restarts included.
 * @returns {Promise<{ address: string, namespace: string, members: ClusterMember[], close(): Promise<void> }>}
 */
export async function startTemporalCluster({
  serverBinary,
  temporalCli,
  dataDir,
  postgres,
  historyVisibility = postgres,
  databases,
  historyNodes = 2,
  shards = HISTORY_SHARDS,
  namespace = 'default',
  logLevel = 'warn',
  poolSizes = POOL_SIZES,
  onStart = () => undefined,
}) {
  const configDir = join(dataDir, 'config');
  mkdirSync(join(configDir, 'dynamicconfig'), { recursive: true });
  // YAML is a superset of JSON: the files are written as JSON.
  const dynamicConfig = Object.fromEntries(
    Object.entries(TEMPORAL_DYNAMIC_CONFIG).map(([key, value]) => [key, [{ value }]]),
  );
  writeFileSync(join(configDir, 'dynamicconfig', 'cluster.yaml'), JSON.stringify(dynamicConfig, null, 2));

  /** @type {Member[]} */
  const layout = [];
  const member = async (name, service, withHttp = false) => {
    // Below the kernel's ephemeral range, so no outgoing connection takes one while a process is
    // down (they are reused on every restart); membership ports must be anyway (SQL smallint).
    const ports = {
      grpcPort: await freePortBelow32768(),
      membershipPort: await freePortBelow32768(),
      metricsPort: await freePortBelow32768(),
    };
    layout.push({ name, service, ...ports, ...(withHttp ? { httpPort: await freePortBelow32768() } : {}) });
  };
  await member('frontend', 'frontend', true);
  for (let n = 1; n <= historyNodes; n += 1) await member(`history-${n}`, 'history');
  await member('matching', 'matching');
  await member('worker', 'worker');
  const frontend = layout[0];
  const address = `127.0.0.1:${frontend.grpcPort}`;

  const datastore = (database, maxConns, at = postgres) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: `${at.host}:${at.port}`,
      connectProtocol: 'tcp',
      user: postgres.user,
      password: postgres.password ?? '',
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  for (const own of layout) {
    // Every process lists every service (membership tracks those listed), its own with its own
    // ports; the processes find each other through the membership table in the persistence database.
    const services = Object.fromEntries(
      ['frontend', 'history', 'matching', 'worker'].map((service) => [
        service,
        { rpc: rpcOf(own.service === service ? own : layout.find((m) => m.service === service)) },
      ]),
    );
    const config = {
      log: { stdout: true, level: logLevel, format: 'json' },
      persistence: {
        defaultStore: 'default',
        visibilityStore: 'visibility',
        numHistoryShards: shards,
        datastores: {
          default: datastore(databases.persistence, poolSizes[own.service].persistence),
          visibility: datastore(
            databases.visibility,
            poolSizes[own.service].visibility,
            own.service === 'history' ? historyVisibility : postgres,
          ),
        },
      },
      global: {
        membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
        metrics: {
          prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `127.0.0.1:${own.metricsPort}` },
        },
      },
      services,
      clusterMetadata: {
        enableGlobalNamespace: false,
        failoverVersionIncrement: 10,
        masterClusterName: 'active',
        currentClusterName: 'active',
        clusterInformation: {
          active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: address },
        },
      },
      dcRedirectionPolicy: { policy: 'noop' },
      publicClient: { hostPort: address },
      dynamicConfigClient: { filepath: join(configDir, 'dynamicconfig', 'cluster.yaml'), pollInterval: '10s' },
    };
    writeFileSync(join(configDir, `${own.name}.yaml`), JSON.stringify(config, null, 2));
  }

  const launch = async (own) => {
    const logFile = join(dataDir, `${own.name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(
      serverBinary,
      [
        '--root',
        dataDir,
        '--config',
        'config',
        '--env',
        own.name,
        '--allow-no-auth',
        'start',
        '--service',
        own.service,
      ],
      { stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    child.logFile = logFile;
    child.label = `temporal ${own.name}`;
    onStart(child, { name: own.name, logFile });
    return child;
  };
  /** @type {ClusterMember[]} */
  const members = layout.map((own) => {
    /** @type {import('node:child_process').ChildProcess | undefined} */
    let child;
    return {
      name: own.name,
      service: own.service,
      metricsUrl: `http://127.0.0.1:${own.metricsPort}/metrics`,
      process: () => child,
      async start() {
        child = await launch(own);
        // The internal worker serves no gRPC; it is up once it listens for membership.
        const port = own.service === 'worker' ? own.membershipPort : own.grpcPort;
        await waitFor(`temporal ${own.name} on ${port}`, () => tcpAccepts(port), {
          timeoutMs: 90_000,
          child,
        });
      },
      async kill() {
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      },
      stop: () => stopProcess(child),
    };
  });
  const close = () => Promise.all(members.map((m) => m.stop())).then(() => undefined);
  try {
    // The first process to start writes the cluster's metadata; several at once race to insert it
    // and the losers exit. One first, then the rest.
    await members[0].start();
    await Promise.all(members.slice(1).map((m) => m.start()));
    await waitFor(`Temporal cluster frontend on ${address}`, async () => temporalHealthy(temporalCli, address), {
      timeoutMs: 90_000,
      intervalMs: 500,
      child: members[0].process(),
    });
    await registerNamespace(temporalCli, address, namespace);
  } catch (error) {
    await close();
    throw error;
  }
  return { address, namespace, members, close };
}

/**
 * Runs the chart's register script against `address`: creates the namespace when missing,
 * registers the search attributes, sets the retention.
 */
export async function registerNamespace(temporalCli, address, namespace) {
  const result = await runCommand('sh', [REGISTER_SCRIPT], {
    timeoutMs: 120_000,
    env: {
      ...process.env,
      PATH: `${dirname(temporalCli)}:${process.env.PATH}`,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: namespace,
      NAMESPACE_RETENTION,
    },
  });
  if (result.status !== 0)
    throw new Error(`${REGISTER_SCRIPT} failed (exit ${result.status}): ${result.stdout}${result.stderr}`);
}

function rpcOf(own) {
  return {
    grpcPort: own.grpcPort,
    membershipPort: own.membershipPort,
    bindOnLocalHost: true,
    ...(own.httpPort ? { httpPort: own.httpPort } : {}),
  };
}
