// How every process reaches Temporal: the connection (plaintext, TLS, or mutual TLS from the
// TEMPORAL_TLS_* files), the data converter (payloads encrypted with PAYLOAD_ENCRYPTION_KEYS), and
// the client with the OpenTelemetry interceptor that carries the active trace into workflow starts
// and signals (so a saga continues its order's trace).
import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionLike, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { Config } from './config.js';
import { EncryptionCodec, Keyring } from './encryption.js';

/** The TLS settings of a Temporal connection (client or worker), or undefined for plaintext gRPC. */
export function temporalTls(temporal: Config['temporal']): TLSConfig | undefined {
  const tls = temporal.tls;
  if (!tls) return undefined;
  return {
    ...(tls.serverName && { serverNameOverride: tls.serverName }),
    ...(tls.ca && { serverRootCACertificate: readFileSync(tls.ca) }),
    ...(tls.cert && tls.key && { clientCertPair: { crt: readFileSync(tls.cert), key: readFileSync(tls.key) } }),
  };
}

/** Payloads encrypted with the configured keys (none: stored as they are). */
export function dataConverter(payloadKeys: Config['payloadKeys']): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(new Keyring(payloadKeys))] };
}

export async function connectTemporalClient(
  config: Pick<Config, 'temporal' | 'payloadKeys'>,
): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: config.temporal.address, tls: temporalTls(config.temporal) });
  return { client: temporalClientOn(connection, config), connection };
}

/**
 * The product's client on an existing connection. On a worker's NativeConnection it can start
 * workflows eagerly: the server hands the new saga's first workflow task straight back in the
 * start call's answer, to this worker, instead of through the task queue.
 */
export function temporalClientOn(connection: ConnectionLike, config: Pick<Config, 'temporal' | 'payloadKeys'>): Client {
  return new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: dataConverter(config.payloadKeys),
    interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
  });
}
