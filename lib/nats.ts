// NATS connection and the JetStream streams of the public contract, created or
// updated at start-up with explicit settings (documented in README.md).
import { readFileSync } from 'node:fs';
import {
  connect,
  credsAuthenticator,
  nanos,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import type { Config } from './config.js';
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** How long ORDERS keeps an event: the Temporal namespace must keep closed sagas at least as long. */
export const ORDERS_MAX_AGE_MS = 7 * DAY;

/** Stream names and subjects of the public contract. */
export const STREAMS = {
  orders: { name: 'ORDERS', subjects: ['orders.>'] },
  audit: { name: 'AUDIT', subjects: ['audit.>'] },
  deadLetters: { name: 'ORDERS_DLQ', subjects: ['dlq.>'] },
  notifications: { name: 'NOTIFICATIONS', subjects: ['notifications.>'] },
} as const;

export const SUBJECTS = {
  orderCreated: 'orders.created',
  audit: (eventType: string) => `audit.orders.${eventType}`,
  inventoryAudit: (eventType: string) => `audit.inventory.${eventType}`,
  deadLetter: (originalSubject: string) => `dlq.${originalSubject}`,
  notification: (kind: string) => `notifications.${kind}`,
} as const;

/**
 * Explicit stream settings. File storage, limits retention (nothing is deleted on ack, so
 * an order can be replayed), old messages discarded only by age. The duplicate window is
 * how long a repeated Nats-Msg-Id is recognised; it must outlast any publisher's retries.
 * ORDERS also has a size limit (ORDERS_STREAM_MAX_BYTES) at which it refuses new events rather
 * than dropping old ones, so a flood of orders gets 503s and never pushes out an unprocessed order.
 */
const STREAM_SETTINGS: Record<
  keyof typeof STREAMS,
  { maxAgeMs: number; duplicateWindowMs: number; description: string }
> = {
  orders: {
    maxAgeMs: ORDERS_MAX_AGE_MS,
    duplicateWindowMs: 2 * HOUR,
    description: 'OrderCreated events from the ingress',
  },
  audit: {
    maxAgeMs: 90 * DAY,
    duplicateWindowMs: 2 * HOUR,
    description: 'One event per saga state change and compensation',
  },
  deadLetters: { maxAgeMs: 30 * DAY, duplicateWindowMs: 2 * HOUR, description: 'Events that could not start a saga' },
  notifications: {
    maxAgeMs: 30 * DAY,
    duplicateWindowMs: 24 * HOUR,
    description: 'Customer notices (one per order and kind)',
  },
};

/** The largest event ORDERS takes: an order body is at most 64 KiB, its envelope a little more. */
const ORDERS_MAX_MESSAGE_BYTES = 1024 * 1024;

/** TLS (server CA, client certificate for mutual TLS) and credentials (user/password or a creds file). */
export function natsSecurityOptions(nats: Pick<Config['nats'], 'tls' | 'credentials'>): Partial<ConnectionOptions> {
  const options: Partial<ConnectionOptions> = {};
  if (nats.tls) {
    options.tls = {
      ...(nats.tls.ca && { caFile: nats.tls.ca }),
      ...(nats.tls.cert && { certFile: nats.tls.cert, keyFile: nats.tls.key }),
    };
  }
  const credentials = nats.credentials;
  if (credentials && 'credsFile' in credentials) {
    options.authenticator = credsAuthenticator(readFileSync(credentials.credsFile));
  } else if (credentials) {
    options.user = credentials.user;
    options.pass = credentials.password;
  }
  return options;
}

/**
 * Connects to NATS (`nats`: the servers alone, or with TLS and credentials), retrying the first
 * connection until `timeoutMs`, reconnecting forever after.
 */
export async function connectNats(
  nats: string[] | Pick<Config['nats'], 'servers' | 'tls' | 'credentials'>,
  name: string,
  timeoutMs = 10_000,
): Promise<NatsConnection> {
  if (Array.isArray(nats)) nats = { servers: nats, tls: undefined, credentials: undefined };
  return connect({
    servers: nats.servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
    timeout: timeoutMs,
    ...natsSecurityOptions(nats),
  });
}

/**
 * Follows a connection's status and returns a function telling whether it is connected now
 * (readiness checks, fail-fast publishing); `onChange` hears every disconnect and reconnect.
 */
export function watchConnection(
  nc: NatsConnection,
  onChange?: (change: 'disconnect' | 'reconnect') => void,
): () => boolean {
  let connected = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type !== 'disconnect' && status.type !== 'reconnect') continue;
      connected = status.type === 'reconnect';
      onChange?.(status.type);
    }
  })();
  return () => connected && !nc.isClosed();
}

/** How many copies of each stream, and how large ORDERS may grow. */
export interface StreamLimits {
  replicas: number;
  ordersMaxBytes: number;
}

function streamConfig(key: keyof typeof STREAMS, limits: StreamLimits): Partial<StreamConfig> & { name: string } {
  const settings = STREAM_SETTINGS[key];
  const sizeLimited = key === 'orders';
  return {
    name: STREAMS[key].name,
    subjects: [...STREAMS[key].subjects],
    description: settings.description,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: sizeLimited ? DiscardPolicy.New : DiscardPolicy.Old,
    max_age: nanos(settings.maxAgeMs),
    ...(sizeLimited && { max_bytes: limits.ordersMaxBytes, max_msg_size: ORDERS_MAX_MESSAGE_BYTES }),
    duplicate_window: nanos(settings.duplicateWindowMs),
    num_replicas: limits.replicas,
    allow_direct: true,
  };
}

/** Creates each contract stream, or updates it to the settings above when it exists. */
export async function ensureStreams(
  jsm: JetStreamManager,
  limits: StreamLimits = { replicas: 1, ordersMaxBytes: 1024 ** 3 },
): Promise<void> {
  for (const key of Object.keys(STREAMS) as (keyof typeof STREAMS)[]) {
    const config = streamConfig(key, limits);
    try {
      await jsm.streams.info(config.name);
      await jsm.streams.update(config.name, config);
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
        await jsm.streams.add(config);
      } else {
        throw error;
      }
    }
  }
}
