#!/usr/bin/env node
// `npm start`: set-up, then the whole local stack in the foreground: a Temporal dev server
// with its Web UI, nats-server with JetStream (both keeping their data in .data/), the
// payment gateway sandbox (its ledger in .data/ too), the worker and the ingress. Ctrl-C stops
// all of it. A component that crashes is restarted with backoff, as a supervisor would; one that
// keeps crashing, or refuses its configuration, stops the stack with its last lines above.
// Every port comes from an environment variable (see README.md); ORDER_SAGA_DATA_DIR moves .data/.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, setUp, step } from './setup.mjs';
import { assertPortsFree, PortInUseError, startNats, startTemporal, stopProcess, waitFor } from './local-servers.mjs';

const env = process.env;
const num = (name, fallback) => {
  const value = Number(env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > 65_535) {
    process.stderr.write(`${name} must be a port number between 1 and 65535 (got "${env[name]}")\n`);
    process.exit(2);
  }
  return value;
};
const ports = {
  TEMPORAL_PORT: num('TEMPORAL_PORT', 7233),
  TEMPORAL_UI_PORT: num('TEMPORAL_UI_PORT', 8233),
  NATS_PORT: num('NATS_PORT', 4322),
  NATS_MONITOR_PORT: num('NATS_MONITOR_PORT', 8322),
  PAYMENT_SANDBOX_PORT: num('PAYMENT_SANDBOX_PORT', 4010),
  PORT: num('PORT', 8080),
  METRICS_PORT: num('METRICS_PORT', 9464),
  INGRESS_METRICS_PORT: num('INGRESS_METRICS_PORT', 9465),
  CODEC_PORT: num('CODEC_PORT', 8089),
};
const dataDir = env.ORDER_SAGA_DATA_DIR || join(ROOT, '.data');
/** The addresses this stack serves, for operator commands (read by ops/local-stack.ts). */
const LOCAL_STACK_FILE = join(dataDir, 'local-stack.json');

/**
 * The local stack's payload encryption key, made once and kept in .data/ (unless
 * PAYLOAD_ENCRYPTION_KEYS is set), so the local Temporal holds ciphertext as a deployment's does.
 */
function localPayloadKeys() {
  if (env.PAYLOAD_ENCRYPTION_KEYS) return env.PAYLOAD_ENCRYPTION_KEYS;
  const file = join(dataDir, 'payload-encryption-keys');
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `local-1=${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

const tools = await setUp(['temporal', 'nats-server']);
try {
  await assertPortsFree(ports);
} catch (error) {
  if (!(error instanceof PortInUseError)) throw error;
  process.stderr.write(
    `\n${error.message}.\nAnother program (or an earlier \`npm start\`) is using it. Every port of the local stack can be moved: ${Object.keys(ports).join(', ')}.\n`,
  );
  process.exit(1);
}

const children = [];
let stopping = false;
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  step('Stopping the local stack');
  rmSync(LOCAL_STACK_FILE, { force: true });
  // Product processes first (they drain), then the servers they talk to.
  for (const child of [...children].reverse()) await stopProcess(child, child.label === 'worker' ? 30_000 : 5_000);
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

step('Starting Temporal (dev server + Web UI) and NATS (JetStream)');
mkdirSync(dataDir, { recursive: true });
// How each server is started, the first time and after a crash (same ports, same data).
const launchTemporal = () =>
  startTemporal({
    binary: tools.temporal,
    port: ports.TEMPORAL_PORT,
    uiPort: ports.TEMPORAL_UI_PORT,
    uiCodecEndpoint: `http://127.0.0.1:${ports.CODEC_PORT}`,
    dataDir: join(dataDir, 'temporal'),
  });
const launchNats = () =>
  startNats({
    binary: tools['nats-server'],
    port: ports.NATS_PORT,
    monitorPort: ports.NATS_MONITOR_PORT,
    dataDir: join(dataDir, 'nats'),
  });
let temporal;
let nats;
try {
  [temporal, nats] = await Promise.all([launchTemporal(), launchNats()]);
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
children.push(temporal.process, nats.process);
// The servers are supervised too: restarted on the same ports and data; the processes reconnect.
superviseServer('temporal', temporal, launchTemporal);
superviseServer('nats', nats, launchNats);

const productEnv = {
  ...env,
  TEMPORAL_ADDRESS: temporal.address,
  NATS_URL: nats.url,
  PAYMENT_GATEWAY_URL: `http://127.0.0.1:${ports.PAYMENT_SANDBOX_PORT}`,
  PAYMENT_SANDBOX_PORT: String(ports.PAYMENT_SANDBOX_PORT),
  PAYMENT_SANDBOX_LEDGER_FILE: join(dataDir, 'payment-sandbox-ledger.json'),
  PORT: String(ports.PORT),
  CODEC_PORT: String(ports.CODEC_PORT),
  CODEC_CORS_ORIGINS: temporal.uiUrl,
  PAYLOAD_ENCRYPTION_KEYS: localPayloadKeys(),
  // Open unless a way to authenticate callers is configured: the ingress and /ready say so loudly.
  AUTH_DISABLED: env.AUTH_DISABLED ?? (env.AUTH_JWKS_URL || env.AUTH_API_KEYS ? 'false' : 'true'),
  EMBEDDED_DATABASE_DIR: env.EMBEDDED_DATABASE_DIR ?? join(dataDir, 'inventory'),
  INVENTORY_SEED_DEMO: env.INVENTORY_SEED_DEMO ?? 'true',
  // Versioned, as in production, and the checkout's saga is the one new orders start on: a start
  // after a change to workflows/ is a new build, made current. Sagas the earlier build started stay
  // pinned to it (npm run saga-builds -- status; docs/deployment.md, "Deploying a new build of the saga").
  TEMPORAL_WORKER_VERSIONING: env.TEMPORAL_WORKER_VERSIONING ?? 'versioned',
  TEMPORAL_WORKER_BECOME_CURRENT: env.TEMPORAL_WORKER_BECOME_CURRENT ?? 'always',
};

const COLORS = { sandbox: 35, worker: 36, ingress: 32 };
function startProduct(label, entry, processEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    env: { ...productEnv, ...processEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.label = label;
  const prefix = `\x1b[${COLORS[label]}m${label.padEnd(8)}\x1b[0m| `;
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream.on('data', (chunk) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
    });
  }
  child.on('exit', (code, signal) => {
    if (stopping) return;
    children.splice(children.indexOf(child), 1);
    const how = signal ?? `code ${code}`;
    // Exit code 2: the process refused its configuration (or its embedded database is in use); a restart cannot help.
    if (code === 2) {
      process.stderr.write(`\n${label} refused to start (${how}); stopping the stack. Its message is above.\n`);
      return void stopAll(1);
    }
    afterCrash(label, how, () => startProduct(label, entry, processEnv));
  });
  children.push(child);
  return child;
}

/** Crashes by component within the last minute, for backoff and for giving up on a crash loop. */
const crashes = new Map();
const CRASH_LOOP = 5;
/** Restarts a crashed component after 1, 2, 4, 8 s; the fifth crash within a minute stops the stack. */
function afterCrash(label, how, restart) {
  const recent = (crashes.get(label) ?? []).filter((at) => Date.now() - at < 60_000);
  recent.push(Date.now());
  crashes.set(label, recent);
  if (recent.length >= CRASH_LOOP) {
    process.stderr.write(
      `\n${label} exited (${how}), its ${CRASH_LOOP}th crash within a minute; stopping the stack. Its last lines are above.\n`,
    );
    return void stopAll(1);
  }
  const delayMs = 1_000 * 2 ** (recent.length - 1);
  process.stderr.write(
    `\n${label} exited (${how}); restarting it in ${delayMs / 1_000} s (crash ${recent.length} within a minute)\n`,
  );
  setTimeout(() => {
    if (stopping) return;
    Promise.resolve()
      .then(restart)
      .then(() => process.stdout.write(`${label} restarted\n`))
      .catch((error) => {
        process.stderr.write(`${label} could not be restarted: ${error.message}\n`);
        void stopAll(1);
      });
  }, delayMs);
}

/** Watches a server started by local-servers.mjs and restarts it the same way when it dies. */
function superviseServer(label, started, start) {
  started.process.once('exit', (code, signal) => {
    if (stopping) return;
    children.splice(children.indexOf(started.process), 1);
    afterCrash(label, signal ?? `code ${code}`, async () => {
      const again = await start();
      children.unshift(again.process);
      superviseServer(label, again, start);
    });
  });
}

step('Starting the payment sandbox, the worker and the ingress');
startProduct('sandbox', 'sandbox/payment-gateway/main.ts');
startProduct('worker', 'workers/main.ts', { METRICS_PORT: String(ports.METRICS_PORT) });
startProduct('ingress', 'ingress/main.ts', { METRICS_PORT: String(ports.INGRESS_METRICS_PORT) });
const ready = (url) => async () => (await fetch(url)).ok;
try {
  await waitFor('payment sandbox', ready(`http://127.0.0.1:${ports.PAYMENT_SANDBOX_PORT}/health`), {
    timeoutMs: 60_000,
  });
  await waitFor('worker', ready(`http://127.0.0.1:${ports.METRICS_PORT}/ready`), { timeoutMs: 120_000 });
  await waitFor('ingress', ready(`http://127.0.0.1:${ports.PORT}/ready`), { timeoutMs: 60_000 });
} catch (error) {
  if (!stopping) {
    process.stderr.write(`${error.message}\n`);
    await stopAll(1);
  }
}

const api = `http://127.0.0.1:${ports.PORT}`;
// Operator commands (npm run dlq) read this to find the stack; removed when the stack stops.
writeFileSync(
  LOCAL_STACK_FILE,
  `${JSON.stringify(
    {
      pid: process.pid,
      NATS_URL: nats.url,
      TEMPORAL_ADDRESS: temporal.address,
      ORDER_SAGA_API_URL: api,
      PAYMENT_GATEWAY_URL: productEnv.PAYMENT_GATEWAY_URL,
      PAYLOAD_ENCRYPTION_KEYS: productEnv.PAYLOAD_ENCRYPTION_KEYS,
    },
    null,
    2,
  )}\n`,
  { mode: 0o600 },
);
step('The local stack is up');
process.stdout.write(
  [
    `  Orders API        ${api}/orders`,
    `  Temporal Web UI   ${temporal.uiUrl}/namespaces/default/workflows`,
    `  Temporal gRPC     ${temporal.address}   (temporal workflow list --address ${temporal.address})`,
    `  NATS              ${nats.url}   (monitoring ${nats.monitorUrl})`,
    `  Payment sandbox   http://127.0.0.1:${ports.PAYMENT_SANDBOX_PORT}/v1/ledger`,
    `  Saga builds       npm run saga-builds -- status   (Worker Deployment ${env.TEMPORAL_DEPLOYMENT_NAME || 'order-saga'})`,
    `  Worker metrics    http://127.0.0.1:${ports.METRICS_PORT}/metrics`,
    `  Ingress metrics   http://127.0.0.1:${ports.INGRESS_METRICS_PORT}/metrics`,
    `  Payload codec     http://127.0.0.1:${ports.CODEC_PORT}   (the Web UI decrypts through it)`,
    `  Data              ${dataDir}   (delete it for a clean slate)`,
    ...(productEnv.AUTH_DISABLED === 'true'
      ? [
          '',
          '  \x1b[33mAuthentication is OFF: anyone who reaches these ports may read, cancel and approve any order.',
          '  Keep this stack on your machine, or set AUTH_JWKS_URL or AUTH_API_KEYS (docs/security.md).\x1b[0m',
        ]
      : []),
    '',
    '  Try an order:',
    `    curl -s -X POST ${api}/orders -H 'Content-Type: application/json' -H "Idempotency-Key: $(uuidgen || date +%s%N)" \\`,
    `      -d '{"customerId":"c-42","items":[{"sku":"SKU-COFFEE-1KG","quantity":2,"unitPrice":1899}],"currency":"EUR","paymentToken":"tok_visa","email":"ada@example.com"}'`,
    '',
    '  Ctrl-C stops everything.',
    '',
  ].join('\n'),
);
