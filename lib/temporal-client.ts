// How every process reaches Temporal: the connection as lib/config.ts resolved it from the
// Temporal CLI's settings (TEMPORAL_* variables over a profile of its TOML file: address, TLS or
// mutual TLS, Temporal Cloud's API key, extra gRPC headers), the data converter (payloads
// encrypted with PAYLOAD_ENCRYPTION_KEYS), and the client with the OpenTelemetry interceptor that
// carries the active trace into workflow starts and signals (so a saga continues its order's trace).
import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionLike, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { Config, PemSource } from './config.js';
import { EncryptionCodec, Keyring } from './encryption.js';

/** The PEM bytes: a file is read now, so a connection made later (a reconnect) sees a rotated one. */
function pem(source: PemSource): Buffer {
  return 'path' in source ? readFileSync(source.path) : Buffer.from(source.pem);
}

/** The TLS settings of a Temporal connection (client or worker), or undefined for plaintext gRPC. */
export function temporalTls(temporal: Config['temporal']): TLSConfig | undefined {
  const tls = temporal.tls;
  if (!tls) return undefined;
  return {
    ...(tls.serverName && { serverNameOverride: tls.serverName }),
    ...(tls.ca && { serverRootCACertificate: pem(tls.ca) }),
    ...(tls.cert && tls.key && { clientCertPair: { crt: pem(tls.cert), key: pem(tls.key) } }),
  };
}

/**
 * What both kinds of connection take (the client's Connection and the worker's NativeConnection):
 * the address, TLS, the API key (the SDK sends it as `authorization: Bearer <key>`) and headers.
 */
export function temporalConnectionOptions(temporal: Config['temporal']): {
  address: string;
  tls: TLSConfig | undefined;
  apiKey?: string;
  metadata?: Record<string, string>;
} {
  return {
    address: temporal.address,
    tls: temporalTls(temporal),
    ...(temporal.apiKey !== undefined && { apiKey: temporal.apiKey }),
    ...(temporal.grpcMeta && Object.keys(temporal.grpcMeta).length > 0 && { metadata: temporal.grpcMeta }),
  };
}

/** Payloads encrypted with the configured keys (none: stored as they are). */
export function dataConverter(payloadKeys: Config['payloadKeys']): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(new Keyring(payloadKeys))] };
}

export async function connectTemporalClient(
  config: Pick<Config, 'temporal' | 'payloadKeys'>,
): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect(temporalConnectionOptions(config.temporal));
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
