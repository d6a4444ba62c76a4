// NATS connection and the JetStream streams of the public contract, created or
// updated at start-up with explicit settings (documented in docs/api.md).
import { readFileSync } from 'node:fs';
import {
  connect,
  credsAuthenticator,
  nanos,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { loadConfig, type Config } from './config.js';
import type { StreamFill } from './metrics.js';
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
 * Explicit stream settings. File storage, limits retention (nothing is deleted on ack, so an order
 * can be replayed). Every stream has a byte limit besides its age: the JetStream store is shared, so
 * one stream left to grow would fill it, and then every stream, ORDERS included, refuses writes. NATS
 * reserves each stream's byte limit in the store and refuses a limit that does not fit beside the
 * others' (ensureStreams then says which variables to lower), so streams within their limits cannot
 * crowd each other out. What a stream does at its byte limit is chosen for what it holds:
 * - ORDERS refuses new events (discard new): a flood of orders gets 503s and never pushes out an
 *   unprocessed order.
 * - AUDIT refuses new events (discard new), so the audit trail loses nothing it was given: an event
 *   leaves it only by age (AUDIT_STREAM_MAX_AGE, 90 days by default). The price is paid at the
 *   limit, where it shows: the sagas' audit activities retry until AUDIT has room, so sagas wait at
 *   their next state change (nothing is skipped or reordered, they go on by themselves), and an
 *   operator's stock change is applied but answered that its audit event could not be stored.
 *   Dropping the oldest instead would let a surge cut the trail short of its age with no trace of it.
 * - ORDERS_DLQ refuses new dead letters (discard new): the starter then hands the event back to ORDERS
 *   and tries again later, so an accepted order that cannot start a saga is never dropped unseen;
 *   dropping the oldest would delete the only record of orders that were accepted and never started.
 * - NOTIFICATIONS drops its oldest notices (discard old): the saga's confirmation step publishes its
 *   notice, and a refusal would fail that step and make the saga undo a paid order. The oldest notices
 *   are the ones the notification sender took long ago, and AUDIT keeps what each order's notice said.
 * The duplicate window is how long a repeated Nats-Msg-Id is recognised; it must outlast any
 * publisher's retries (and JetStream refuses one longer than the stream's age).
 */
const STREAM_SETTINGS: Record<
  keyof typeof STREAMS,
  { discard: DiscardPolicy; duplicateWindowMs: number; description: string; maxBytesVariable: string }
> = {
  orders: {
    discard: DiscardPolicy.New,
    duplicateWindowMs: 2 * HOUR,
    description: 'OrderCreated events from the ingress',
    maxBytesVariable: 'ORDERS_STREAM_MAX_BYTES',
  },
  audit: {
    discard: DiscardPolicy.New,
    duplicateWindowMs: 2 * HOUR,
    description: 'One event per saga state change and compensation',
    maxBytesVariable: 'AUDIT_STREAM_MAX_BYTES',
  },
  deadLetters: {
    discard: DiscardPolicy.New,
    duplicateWindowMs: 2 * HOUR,
    description: 'Events that could not start a saga',
    maxBytesVariable: 'ORDERS_DLQ_STREAM_MAX_BYTES',
  },
  notifications: {
    discard: DiscardPolicy.Old,
    duplicateWindowMs: 24 * HOUR,
    description: 'Customer notices (one per order and kind)',
    maxBytesVariable: 'NOTIFICATIONS_STREAM_MAX_BYTES',
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

/** How many copies of each stream, and each one's limits (the NATS part of the configuration). */
export type StreamLimits = Pick<Config['nats'], 'streamReplicas' | 'ordersMaxBytes' | 'streams'>;

/** How much `key` may hold and for how long: ORDERS keeps 7 days (see ORDERS_MAX_AGE_MS), the others what they are given. */
function retentionOf(key: keyof typeof STREAMS, limits: StreamLimits): { maxBytes: number; maxAgeMs: number } {
  return key === 'orders' ? { maxBytes: limits.ordersMaxBytes, maxAgeMs: ORDERS_MAX_AGE_MS } : limits.streams[key];
}

function streamConfig(key: keyof typeof STREAMS, limits: StreamLimits): Partial<StreamConfig> & { name: string } {
  const settings = STREAM_SETTINGS[key];
  const { maxBytes, maxAgeMs } = retentionOf(key, limits);
  return {
    name: STREAMS[key].name,
    subjects: [...STREAMS[key].subjects],
    description: settings.description,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: settings.discard,
    max_age: nanos(maxAgeMs),
    max_bytes: maxBytes,
    ...(key === 'orders' && { max_msg_size: ORDERS_MAX_MESSAGE_BYTES }),
    duplicate_window: nanos(settings.duplicateWindowMs),
    num_replicas: limits.streamReplicas,
    allow_direct: true,
  };
}

/** JetStream's answer when a stream's byte limit does not fit in what is left of the store (or the account's share of it). */
const INSUFFICIENT_STORAGE = 10047;

/** The streams' byte limits do not fit in the JetStream store together: a configuration to correct, not a fault to wait out. */
export class StreamLimitsDoNotFitError extends Error {
  constructor(key: keyof typeof STREAMS, limits: StreamLimits) {
    const all = (Object.keys(STREAMS) as (keyof typeof STREAMS)[])
      .map((k) => `${STREAM_SETTINGS[k].maxBytesVariable}=${retentionOf(k, limits).maxBytes}`)
      .join(', ');
    super(
      `JetStream has no room for the byte limit of ${STREAMS[key].name} ` +
        `(${STREAM_SETTINGS[key].maxBytesVariable}=${retentionOf(key, limits).maxBytes}): NATS reserves each stream's ` +
        `limit in its store, and the limits together (${all}, IDEMPOTENCY_BUCKET_MAX_BYTES, and any other stream of ` +
        `the account) must fit it. Lower these variables, or give JetStream a larger store (the server's ` +
        `max_file_store, or the account's storage limit).`,
    );
    this.name = 'StreamLimitsDoNotFitError';
  }
}

/**
 * Creates each contract stream, or updates it to the settings above when it exists (earlier versions
 * made AUDIT, NOTIFICATIONS and ORDERS_DLQ without a byte limit: they get theirs here). A lowered limit
 * removes nothing from a discard-new stream that holds more: it takes nothing new until age frees room.
 */
export async function ensureStreams(jsm: JetStreamManager, limits: StreamLimits = loadConfig({}).nats): Promise<void> {
  for (const key of Object.keys(STREAMS) as (keyof typeof STREAMS)[]) {
    try {
      await createOrUpdate(jsm, streamConfig(key, limits));
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === INSUFFICIENT_STORAGE)
        throw new StreamLimitsDoNotFitError(key, limits);
      throw error;
    }
  }
}

async function createOrUpdate(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    await jsm.streams.add(config);
    return;
  }
  await jsm.streams.update(config.name, config);
}

/** The fill of each of `streams` that exists, for the jetstream_stream_* metrics. */
export async function readStreamFill(jsm: JetStreamManager, streams: readonly string[]): Promise<StreamFill[]> {
  const fills: StreamFill[] = [];
  for (const stream of streams) {
    try {
      const { state, config } = await jsm.streams.info(stream);
      fills.push({ stream, bytes: state.bytes, maxBytes: config.max_bytes });
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    }
  }
  return fills;
}
