// Encryption at rest: with PAYLOAD_ENCRYPTION_KEYS set, Temporal stores ciphertext (what
// `temporal workflow show` prints without the codec), ORDERS holds the payment token sealed, and
// operators read orders in clear through the codec server: the CLI with --codec-endpoint, and the
// Web UI in a real browser (a Temporal dev server of this file's own, started with
// --ui-codec-endpoint). The codec server answers operators only.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort, startTemporal, stopProcess } from '../../scripts/local-servers.mjs';
import { connectNats } from '../../lib/nats.js';
import { orderWorkflowId } from '../../workflows/contract.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

const run = promisify(execFile);
const chromiumPath = inject('chromiumPath');
const EMAIL = `secret.${randomUUID().slice(0, 8)}@example.com`;
const TOKEN = 'tok_visa';
const OPERATOR_KEY = `op_${randomUUID()}`;
const SERVICE_KEY = `svc_${randomUUID()}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let temporalDir: string;
let temporal: Awaited<ReturnType<typeof startTemporal>>;
let stack: ProcessTier;
let codecUrl: string;
let orderId: string;

beforeAll(async () => {
  const codecPort = await freePort();
  codecUrl = `http://127.0.0.1:${codecPort}`;
  temporalDir = mkdtempSync(join(tmpdir(), 'order-saga-codec-temporal-'));
  temporal = await startTemporal({
    binary: inject('temporalBinary'),
    port: await freePort(),
    uiPort: await freePort(),
    uiCodecEndpoint: codecUrl,
    dataDir: temporalDir,
  });
  stack = await startProcessTier('payload-codec', {
    TEMPORAL_ADDRESS: temporal.address,
    PAYLOAD_ENCRYPTION_KEYS: `key-2=${randomBytes(32).toString('base64')},key-1=${randomBytes(32).toString('base64')}`,
    CODEC_PORT: String(codecPort),
    CODEC_CORS_ORIGINS: temporal.uiUrl!,
  });
  await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
  orderId = await stack.placeOrder({ paymentToken: TOKEN, email: EMAIL });
  // The gateway takes only tok_ sources: completing proves the payment activity opened the sealed token.
  expect(await stack.waitForTerminal(orderId, 60_000)).toBe('COMPLETED');
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await stopProcess(temporal?.process);
  rmSync(temporalDir, { recursive: true, force: true });
});

async function workflowShow(...extra: string[]): Promise<string> {
  const { stdout } = await run(inject('temporalBinary'), [
    'workflow',
    'show',
    '--address',
    temporal.address,
    '--workflow-id',
    orderWorkflowId(orderId),
    '--output',
    'json',
    ...extra,
  ]);
  return stdout;
}

describe('payload encryption', () => {
  it('when an order ran, then its history holds ciphertext: no token, no email, only encrypted payloads', async () => {
    const history = await workflowShow();
    expect(history).toContain(Buffer.from('binary/encrypted').toString('base64'));
    expect(history).not.toContain(EMAIL);
    expect(history).not.toContain(Buffer.from(EMAIL).toString('base64').slice(0, 16));
    expect(history).not.toContain(TOKEN);
  });

  it('when ORDERS is read, then the payment token is sealed there', async () => {
    const nc = await connectNats([stack.nats.url], 'codec-test');
    try {
      const stored = await (await jetstreamManager(nc)).streams.getMessage('ORDERS', { seq: 1 });
      expect(stored).toBeDefined();
      const raw = new TextDecoder().decode(stored!.data);
      expect(raw).toContain(orderId);
      expect(raw).toContain('"paymentToken":"sealed:v1:key-2:');
      expect(raw).not.toContain(TOKEN);
    } finally {
      await nc.close();
    }
  });

  it('when an operator shows the history through the codec server, then it reads in clear', async () => {
    const history = await workflowShow('--codec-endpoint', codecUrl);
    expect(history).not.toContain(Buffer.from('binary/encrypted').toString('base64'));
    const readable = payloadsOf(JSON.parse(history)).map((payload) => Buffer.from(payload.data, 'base64').toString());
    expect(readable.some((text) => text.includes(EMAIL))).toBe(true);
    expect(readable.join('\n')).not.toContain(TOKEN); // still sealed: only the payment activity opens it
  });

  it.skipIf(!chromiumPath)(
    'when an operator opens the saga in the Web UI, then the browser decodes its input through the codec server',
    async () => {
      const browser: Browser = await chromium.launch({
        executablePath: chromiumPath!,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
        await page.goto(`${temporal.uiUrl}/namespaces/default/workflows/${orderWorkflowId(orderId)}`);
        await expect.poll(async () => (await page.content()).includes(EMAIL), { timeout: 30_000 }).toBe(true);
      } finally {
        await browser.close();
      }
    },
  );

  it('when the codec server is asked without an operator credential, then it refuses: 401 without one, 403 for a service', async () => {
    const codecPort = await freePort();
    const guarded = {
      CODEC_PORT: String(codecPort),
      AUTH_DISABLED: '',
      AUTH_API_KEYS: `ops:operator:${sha256(OPERATOR_KEY)},shop:service:${sha256(SERVICE_KEY)}`,
    };
    await stack.withIngress(guarded, async () => {
      const encrypted = JSON.parse(await workflowShow()) as unknown;
      const payload = findEncryptedPayload(encrypted);
      const decode = (headers: Record<string, string>) =>
        fetch(`http://127.0.0.1:${codecPort}/decode`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ payloads: [payload] }),
        });
      const anonymous = await decode({});
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toContain('ApiKey');
      expect((await decode({ 'x-api-key': SERVICE_KEY })).status).toBe(403);
      const operator = await decode({ 'x-api-key': OPERATOR_KEY });
      expect(operator.status).toBe(200);
      const [decoded] = ((await operator.json()) as { payloads: { metadata: Record<string, string> }[] }).payloads;
      expect(Buffer.from(decoded!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
    });
  });
});

interface JsonPayload {
  metadata: Record<string, string>;
  data: string;
}

/** Every payload in a `temporal workflow show --output json` document. */
function payloadsOf(node: unknown): JsonPayload[] {
  const found: JsonPayload[] = [];
  const walk = (value: unknown) => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (typeof value !== 'object' || value === null) return;
    const candidate = value as Partial<JsonPayload>;
    if (candidate.metadata?.encoding && typeof candidate.data === 'string') found.push(candidate as JsonPayload);
    Object.values(value).forEach(walk);
  };
  walk(node);
  return found;
}

/** The first encrypted payload of a history. */
function findEncryptedPayload(history: unknown): JsonPayload {
  const marker = Buffer.from('binary/encrypted').toString('base64');
  const found = payloadsOf(history).find((payload) => payload.metadata.encoding === marker);
  if (!found) throw new Error('no encrypted payload in the history');
  return found;
}
