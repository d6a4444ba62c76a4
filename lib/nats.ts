// NATS connection and the JetStream streams of the public contract, created or
// updated at start-up with explicit settings (documented in README.md).
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
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
  deadLetter: (originalSubject: string) => `dlq.${originalSubject}`,
  notification: (kind: string) => `notifications.${kind}`,
} as const;

/**
 * Explicit stream settings. File storage, limits retention (nothing is deleted on ack, so
 * an order can be replayed), old messages discarded only by age. The duplicate window is
 * how long a repeated Nats-Msg-Id is recognised; it must outlast any publisher's retries.
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

/** Connects to NATS, retrying the first connection until `timeoutMs`, reconnecting forever after. */
export async function connectNats(servers: string[], name: string, timeoutMs = 10_000): Promise<NatsConnection> {
  return connect({
    servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
    timeout: timeoutMs,
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

function streamConfig(key: keyof typeof STREAMS, replicas: number): Partial<StreamConfig> & { name: string } {
  const settings = STREAM_SETTINGS[key];
  return {
    name: STREAMS[key].name,
    subjects: [...STREAMS[key].subjects],
    description: settings.description,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(settings.maxAgeMs),
    duplicate_window: nanos(settings.duplicateWindowMs),
    num_replicas: replicas,
    allow_direct: true,
  };
}

/** Creates each contract stream, or updates it to the settings above when it exists. */
export async function ensureStreams(jsm: JetStreamManager, replicas = 1): Promise<void> {
  for (const key of Object.keys(STREAMS) as (keyof typeof STREAMS)[]) {
    const config = streamConfig(key, replicas);
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
