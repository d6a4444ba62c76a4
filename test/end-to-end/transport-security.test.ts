// TLS and credentials between the product and its servers, with certificates the test makes:
// Temporal behind a mutual-TLS endpoint (TEMPORAL_TLS_*), NATS with TLS, client certificates and a
// user/password (NATS_TLS_*, NATS_USER/NATS_PASSWORD). An order goes through end to end; a client
// without its certificate, with one from another CA, or without the password is refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { freePort, startNats, stopProcess } from '../../scripts/local-servers.mjs';
import { connect } from '@nats-io/transport-node';
import { natsSecurityOptions } from '../../lib/nats.js';
import { makeCertificates, type CertificateFiles } from '../support/certificates.js';
import { startTlsGateway, type TlsGateway } from '../support/tls-gateway.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

const NATS_USER = 'order-saga';
const NATS_PASSWORD = `pw-${Math.random().toString(36).slice(2)}`;

let certificates: CertificateFiles;
let gateway: TlsGateway;
let nats: Awaited<ReturnType<typeof startNats>>;
let natsDir: string;
let natsUrl: string;
let stack: ProcessTier;
let secureEnv: Record<string, string>;

beforeAll(async () => {
  certificates = await makeCertificates();
  gateway = await startTlsGateway(inject('temporalAddress'), certificates);
  natsDir = mkdtempSync(join(tmpdir(), 'order-saga-tls-nats-'));
  const port = await freePort();
  nats = await startNats({
    binary: inject('natsBinary'),
    port,
    dataDir: natsDir,
    extraConfig: [
      `tls { cert_file: ${JSON.stringify(certificates.serverCert)}, key_file: ${JSON.stringify(certificates.serverKey)}, ` +
        `ca_file: ${JSON.stringify(certificates.ca)}, verify: true, timeout: 5 }`,
      `authorization { user: ${JSON.stringify(NATS_USER)}, password: ${JSON.stringify(NATS_PASSWORD)} }`,
    ],
  });
  natsUrl = `tls://127.0.0.1:${port}`;
  secureEnv = {
    TEMPORAL_ADDRESS: gateway.address,
    TEMPORAL_TLS_CA: certificates.ca,
    TEMPORAL_TLS_CERT: certificates.clientCert,
    TEMPORAL_TLS_KEY: certificates.clientKey,
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
    NATS_URL: natsUrl,
    NATS_TLS_CA: certificates.ca,
    NATS_TLS_CERT: certificates.clientCert,
    NATS_TLS_KEY: certificates.clientKey,
    NATS_USER,
    NATS_PASSWORD,
  };
  stack = await startProcessTier('transport-security', secureEnv);
});

afterAll(async () => {
  await stack?.close();
  await gateway?.close();
  await stopProcess(nats?.process);
  rmSync(natsDir, { recursive: true, force: true });
  rmSync(certificates?.dir ?? '/nonexistent', { recursive: true, force: true });
});

describe('transport security', () => {
  it('when every connection uses TLS with client certificates and NATS credentials, then an order completes end to end', async () => {
    await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
    const orderId = await stack.placeOrder();
    expect(await stack.waitForTerminal(orderId, 60_000)).toBe('COMPLETED');
    expect(gateway.accepted()).toBeGreaterThan(0);
  });

  it('when a worker has no client certificate for Temporal, or one from another CA, then the handshake is refused and it never becomes ready', async () => {
    for (const without of [
      { TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' },
      { TEMPORAL_TLS_CERT: certificates.strangerCert, TEMPORAL_TLS_KEY: certificates.strangerKey },
    ]) {
      const refusalsBefore = gateway.refusals.length;
      const acceptedBefore = gateway.accepted();
      const opsPort = await freePort();
      const worker = stack.launch('workers/main.ts', { ...without, METRICS_PORT: String(opsPort) });
      try {
        // The handshake fails ("peer did not return a certificate", or the client gives up on a CA it was not asked for).
        await expect.poll(() => gateway.refusals.length, { timeout: 20_000 }).toBeGreaterThan(refusalsBefore);
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        const ready = await fetch(`http://127.0.0.1:${opsPort}/ready`).then((r) => r.status);
        expect(ready).toBe(503);
        expect(gateway.accepted()).toBe(acceptedBefore);
      } finally {
        await worker.kill();
      }
    }
  });

  it('when a NATS client has no client certificate, or no password, then NATS refuses it', async () => {
    // One connection attempt each (the product's own connection retries until the server lets it in).
    const attempt = (settings: Parameters<typeof natsSecurityOptions>[0]) =>
      connect({ servers: [natsUrl], timeout: 3_000, ...natsSecurityOptions(settings) }).then(
        async (nc) => {
          await nc.close();
          return 'connected';
        },
        (error: Error) => error.message,
      );
    const tls = { ca: certificates.ca, cert: certificates.clientCert, key: certificates.clientKey };
    const credentials = { user: NATS_USER, password: NATS_PASSWORD };
    expect(await attempt({ tls, credentials })).toBe('connected');
    expect(await attempt({ tls: { ca: certificates.ca }, credentials })).not.toBe('connected');
    const stranger = { ...tls, cert: certificates.strangerCert, key: certificates.strangerKey };
    expect(await attempt({ tls: stranger, credentials })).not.toBe('connected');
    expect(await attempt({ tls, credentials: undefined })).toMatch(/authorization/i);
    expect(await attempt({ tls, credentials: { user: NATS_USER, password: 'wrong' } })).toMatch(/authorization/i);
  });
});
