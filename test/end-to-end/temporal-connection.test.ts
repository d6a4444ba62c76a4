// The processes reach Temporal as its CLI does (lib/config.ts, @temporalio/envconfig). A worker
// and an ingress given only TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE (a file the real `temporal
// config set` wrote, naming the harness's Temporal) run an order's saga there, and an operator's
// `npm run orders` and `temporal` CLI find it through the same profile. With TEMPORAL_API_KEY,
// every call of the worker's two connections (the Rust core's and the Node client's), of the
// ingress and of an operator command carries `authorization: Bearer <key>` over TLS: a gRPC
// gateway in front of the harness's Temporal, as Temporal Cloud's edge does, reads that header on
// each call and answers UNAUTHENTICATED without the right key. (There is no Temporal Cloud here:
// the gateway checks what the SDK sends, not what Cloud would accept.)
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  connect as connectHttp2,
  constants,
  createSecureServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../scripts/local-servers.mjs';
import { orderWorkflowId } from '../../workflows/contract.js';
import { makeCertificates, type CertificateFiles } from '../support/certificates.js';
import { runOpsCommand } from '../support/commands.js';
import { waitUntilReady, type ProductProcess } from '../support/processes.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

const exec = promisify(execFile);
const PROFILE = 'orders-test';
const API_KEY = `test-key-${Math.random().toString(36).slice(2)}`;
const WORKFLOW_SERVICE = '/temporal.api.workflowservice.v1.WorkflowService/';

interface GatewayCall {
  method: string;
  authorization: string | undefined;
  userAgent: string;
}

interface ApiKeyGateway {
  address: string;
  /** Every gRPC call received, in order: the method, its authorization header and user agent. */
  calls: GatewayCall[];
  /** Calls answered UNAUTHENTICATED (no key, or another one). */
  refused(): number;
  close(): Promise<void>;
}

/** The headers of one side for the other: HTTP/2 pseudo-headers dropped, but for those named. */
function forwardable(headers: IncomingHttpHeaders, keep: string[]): OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !name.startsWith(':') || keep.includes(name)));
}

/**
 * A gRPC gateway speaking TLS (the test's server certificate) in front of a plaintext Temporal: it
 * reads each call's `authorization` header, answers UNAUTHENTICATED unless it is `Bearer <apiKey>`,
 * and forwards the others, request and response streams and trailers, to Temporal.
 */
async function startApiKeyGateway(
  target: string,
  certificates: CertificateFiles,
  apiKey: string,
): Promise<ApiKeyGateway> {
  const upstream = connectHttp2(`http://${target}`);
  upstream.on('error', () => {});
  const calls: GatewayCall[] = [];
  let refused = 0;
  const server = createSecureServer({
    key: readFileSync(certificates.serverKey),
    cert: readFileSync(certificates.serverCert),
    minVersion: 'TLSv1.2',
  });
  server.on('stream', (stream, headers) => {
    const authorization = headers.authorization;
    calls.push({
      method: String(headers[':path']).replace(WORKFLOW_SERVICE, ''),
      authorization,
      userAgent: String(headers['user-agent'] ?? ''),
    });
    stream.on('error', () => {});
    if (authorization !== `Bearer ${apiKey}`) {
      refused += 1;
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': String(16), // UNAUTHENTICATED
          'grpc-message': 'API key missing or not valid',
        },
        { endStream: true },
      );
      return;
    }
    const request = upstream.request(forwardable(headers, [':method', ':path']));
    stream.pipe(request);
    let trailers: OutgoingHttpHeaders = {};
    request.on('response', (response) => {
      if (stream.destroyed) return;
      // A trailers-only answer (an error at once): the status travels in these headers.
      if (response['grpc-status'] !== undefined) {
        stream.respond(forwardable(response, [':status']), { endStream: true });
        return;
      }
      stream.respond(forwardable(response, [':status']), { waitForTrailers: true });
      request.pipe(stream);
    });
    request.on('trailers', (received) => (trailers = forwardable(received, [])));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    request.on('error', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    stream.on('close', () => {
      if (!request.closed) request.close(constants.NGHTTP2_CANCEL);
    });
  });
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    refused: () => refused,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
        upstream.destroy();
      }),
  };
}

let dir: string;
let configFile: string;
let cliEnv: Record<string, string>;
let stack: ProcessTier;
let profileWorker: ProductProcess | undefined;
let orderId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'order-saga-temporal-profile-'));
  configFile = join(dir, 'temporal.toml');
  // The CLI's own environment: its config file and profile, and a HOME of its own (no default file).
  cliEnv = { PATH: process.env.PATH ?? '', HOME: dir, TEMPORAL_CONFIG_FILE: configFile, TEMPORAL_PROFILE: PROFILE };
  // Written by the real CLI, as an operator would: the harness's Temporal, namespace default.
  for (const [prop, value] of [
    ['address', inject('temporalAddress')],
    ['namespace', 'default'],
  ]) {
    await exec(inject('temporalBinary'), ['config', 'set', '--prop', prop!, '--value', value!], { env: cliEnv });
  }
  // Empty counts as unset: no TEMPORAL_ADDRESS, only the profile.
  stack = await startProcessTier('temporal-profile', {
    TEMPORAL_ADDRESS: '',
    TEMPORAL_CONFIG_FILE: configFile,
    TEMPORAL_PROFILE: PROFILE,
  });
});

afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a Temporal CLI profile', () => {
  it("when a worker and an ingress have only TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE, then an order completes on the profile's Temporal", async () => {
    expect(readFileSync(configFile, 'utf8')).toContain(`[profile.${PROFILE}]`);
    expect(stack.env.TEMPORAL_ADDRESS).toBe('');
    profileWorker = await stack.start('workers/main.ts');
    await stack.start('ingress/main.ts');
    orderId = await stack.placeOrder();
    expect(await stack.waitForTerminal(orderId, 60_000)).toBe('COMPLETED');
    // The saga ran on the harness's Temporal, the address only the profile gives.
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      const saga = await new Client({ connection }).workflow.getHandle(orderWorkflowId(orderId)).describe();
      expect(saga.status.name).toBe('COMPLETED');
      expect(saga.taskQueue).toBe(stack.env.TEMPORAL_TASK_QUEUE);
    } finally {
      await connection.close();
    }
  }, 120_000);

  it('when an operator uses the same profile, then npm run orders and the temporal CLI find that order, even beside a running local stack', async () => {
    // A running `npm start` (this test's own pid) whose Temporal is at an address nobody serves:
    // the profile's address wins over it.
    const localStack = join(dir, 'local-stack.json');
    writeFileSync(
      localStack,
      JSON.stringify({
        pid: process.pid,
        NATS_URL: stack.env.NATS_URL,
        TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
        ORDER_SAGA_API_URL: 'http://127.0.0.1:9',
      }),
    );
    const env = { ...stack.env, ORDER_SAGA_LOCAL_STACK_FILE: localStack };
    // The search index catches up with the saga's end shortly after it.
    await expect
      .poll(
        async () => {
          const { code, out } = await runOpsCommand(
            'ops/orders.ts',
            ['list', '--customer', 'c-temporal-profile', '--json'],
            env,
          );
          return code === 0 && out.includes(orderId) ? 'listed' : out;
        },
        { timeout: 20_000, interval: 1_000 },
      )
      .toBe('listed');
    const listed = await runOpsCommand('ops/orders.ts', ['list', '--customer', 'c-temporal-profile'], env);
    expect(listed.out).not.toContain('using the local stack');

    const { stdout } = await exec(
      inject('temporalBinary'),
      ['workflow', 'describe', '--workflow-id', orderWorkflowId(orderId), '--output', 'json'],
      { env: cliEnv },
    );
    expect(JSON.parse(stdout).workflowExecutionInfo.status).toMatch(/COMPLETED/);
  }, 60_000);

  it('when TEMPORAL_PROFILE names a profile the file does not have, then the worker and the operator command refuse to start, naming it and the profiles there', async () => {
    const expected = `TEMPORAL_PROFILE: no profile "orders-prod" in ${configFile} (its profiles: ${PROFILE})`;
    const command = await runOpsCommand('ops/orders.ts', ['list'], {
      ...stack.env,
      TEMPORAL_PROFILE: 'orders-prod',
      ORDER_SAGA_LOCAL_STACK_FILE: '/nonexistent/local-stack.json',
    });
    expect(command.code).toBe(2);
    expect(command.out).toContain(expected);
    const worker = stack.launch('workers/main.ts', {
      TEMPORAL_PROFILE: 'orders-prod',
      METRICS_PORT: String(await freePort()),
    });
    const code = await new Promise((resolve) =>
      worker.child.exitCode !== null ? resolve(worker.child.exitCode) : worker.child.once('exit', resolve),
    );
    expect(code, worker.output()).toBe(2);
    expect(worker.output()).toContain(expected);
  }, 60_000);
});

describe('a Temporal API key', () => {
  let certificates: CertificateFiles;
  let gateway: ApiKeyGateway;
  let keyEnv: Record<string, string>;

  beforeAll(async () => {
    certificates = await makeCertificates();
    gateway = await startApiKeyGateway(inject('temporalAddress'), certificates, API_KEY);
    keyEnv = {
      TEMPORAL_PROFILE: '',
      TEMPORAL_CONFIG_FILE: '',
      TEMPORAL_ADDRESS: gateway.address,
      TEMPORAL_API_KEY: API_KEY,
      // The deprecated name on purpose: it still works, with one warning at start.
      TEMPORAL_TLS_CA: certificates.ca,
      TEMPORAL_TLS_SERVER_NAME: 'localhost',
    };
  });
  afterAll(async () => {
    await gateway?.close();
    rmSync(certificates?.dir ?? '/nonexistent', { recursive: true, force: true });
  });

  it('when a worker, an ingress and an operator command have TEMPORAL_API_KEY, then each of their calls carries authorization: Bearer <key> over TLS, and an order completes', async () => {
    // This worker alone runs the file's sagas from here on.
    await profileWorker?.stop();
    const opsPort = await freePort();
    const worker = stack.launch('workers/main.ts', { ...keyEnv, METRICS_PORT: String(opsPort) });
    try {
      await waitUntilReady(`http://127.0.0.1:${opsPort}/ready`, worker);
      const keyed = await stack.placeOrder();
      expect(await stack.waitForTerminal(keyed, 60_000)).toBe('COMPLETED');
      await stack.withIngress(keyEnv, async (ingress) => {
        const status = await fetch(`${ingress.api}/orders/${keyed}`).then(
          (r) => r.json() as Promise<{ status: string }>,
        );
        expect(status.status).toBe('COMPLETED');
      });
      const listed = await runOpsCommand('ops/orders.ts', ['list', '--json'], {
        ...stack.env,
        ...keyEnv,
        ORDER_SAGA_LOCAL_STACK_FILE: '/nonexistent/local-stack.json',
      });
      expect(listed.code, listed.out).toBe(0);

      const methods = new Set(gateway.calls.map((call) => call.method));
      // The worker's Rust core (polls, completions) and the Node clients (worker, ingress, command).
      for (const method of [
        'PollWorkflowTaskQueue',
        'RespondWorkflowTaskCompleted',
        'GetSystemInfo',
        'ListWorkflowExecutions',
      ]) {
        expect(methods, [...methods].join(' ')).toContain(method);
      }
      const agents = new Set(gateway.calls.map((call) => call.userAgent.split(' ')[0] ?? ''));
      expect(
        [...agents].some((agent) => agent.startsWith('grpc-node-js')),
        [...agents].join(' '),
      ).toBe(true);
      expect(
        [...agents].some((agent) => !agent.startsWith('grpc-node-js')),
        [...agents].join(' '),
      ).toBe(true);
      expect(gateway.calls.filter((call) => call.authorization !== `Bearer ${API_KEY}`)).toEqual([]);
      expect(gateway.refused()).toBe(0);
      // The deprecated TLS name: one warning at start, naming its replacement.
      expect(worker.output().match(/TEMPORAL_TLS_CA is deprecated/g)).toHaveLength(1);
      expect(worker.output()).toContain('set TEMPORAL_TLS_SERVER_CA_CERT_PATH instead');
      expect(worker.output()).not.toContain(API_KEY);
    } finally {
      await worker.stop();
    }
  }, 180_000);

  it("when the key is not the gateway's, then every call is refused and the worker never becomes ready", async () => {
    const refusedBefore = gateway.refused();
    const opsPort = await freePort();
    const worker = stack.launch('workers/main.ts', {
      ...keyEnv,
      TEMPORAL_API_KEY: 'not-the-key',
      METRICS_PORT: String(opsPort),
    });
    try {
      await expect.poll(() => gateway.refused(), { timeout: 20_000 }).toBeGreaterThan(refusedBefore);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(await fetch(`http://127.0.0.1:${opsPort}/ready`).then((r) => r.status)).toBe(503);
      const refusedCalls = gateway.calls.filter((call) => call.authorization !== `Bearer ${API_KEY}`);
      expect(refusedCalls.length).toBeGreaterThan(0);
      expect(refusedCalls.every((call) => call.authorization === 'Bearer not-the-key')).toBe(true);
    } finally {
      await worker.kill();
    }
  }, 60_000);
});
