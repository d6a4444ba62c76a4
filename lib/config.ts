// One place reads the environment: validated once at start-up, handed on as typed config.
// Every variable is documented in .env.example and the guides in docs/ (docs/configuration.md).
// The Temporal connection is read as the Temporal CLI and SDKs read it (@temporalio/envconfig):
// TEMPORAL_* variables over a profile of the CLI's TOML config file (see resolveTemporal).
import { readFileSync, statSync } from 'node:fs';
import { platform } from 'node:os';
import { isAbsolute, join } from 'node:path';
import {
  loadClientConfig,
  loadClientConfigProfile,
  type ClientConfigProfile,
  type ConfigDataSource,
} from '@temporalio/envconfig';
import { z } from 'zod';
import type { SagaSettings } from '../domain/saga-settings.js';

/** Thrown when the environment is invalid; its message names every bad variable and what it expects. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\nFix these environment variables (see .env.example) and start again.`,
    );
    this.name = 'ConfigError';
  }
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "250ms", "30s", "15m", "24h", "7d" or a plain number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 'ms']!);
}

/** Writes milliseconds in the largest unit that divides them, as an operator would (60000 → "1m"). */
export function formatDuration(ms: number): string {
  const unit = ['d', 'h', 'm', 's'].find((u) => ms >= DURATION_UNITS_MS[u]! && ms % DURATION_UNITS_MS[u]! === 0);
  return unit ? `${ms / DURATION_UNITS_MS[unit]!}${unit}` : `${ms}ms`;
}

/**
 * A duration with the range that makes sense for it: 0 or a few milliseconds would make a timer
 * fire at once or a retry spin, and a huge value would wait for ever (the saga's settings travel
 * in its input, so a bad one breaks every saga started under it). The range is given as written.
 */
const duration = (fallback: string, bounds: { min: string; max: string }) => {
  const [min, max] = [parseDuration(bounds.min)!, parseDuration(bounds.max)!];
  const message = `expected a duration between ${bounds.min} and ${bounds.max} (e.g. 500ms, 30s, 15m, 24h)`;
  return z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined || ms < min || ms > max) {
        ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      }
      return ms;
    });
};

/** A whole number in [min, max]; every one has a maximum, so a stray digit is refused, not obeyed. */
const integer = (fallback: number, min: number, max: number) => {
  const message = `expected a whole number between ${min} and ${max}`;
  return z.coerce
    .number({ error: message })
    .refine((n) => Number.isInteger(n) && n >= min && n <= max, { message })
    .default(fallback);
};

const port = (fallback: number) => integer(fallback, 0, 65_535);

const flag = (fallback: 'true' | 'false') =>
  z.enum(['true', 'false'], { error: 'expected true or false' }).default(fallback);

/** A comma-separated list, empty entries dropped. */
const list = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text) =>
      text
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
    );

/** A name matched exactly elsewhere (namespace, claim, user): a space in it is a typo that never matches. */
const word = (maxLength: number) =>
  z.string().regex(new RegExp(`^\\S{1,${maxLength}}$`), `expected 1 to ${maxLength} characters without spaces`);

/**
 * A Worker Deployment name or a build id: letters, digits and . _ - / + (an image tag, a hash, the
 * Temporal Worker Controller's "namespace/name"). No colon (the server joins them with one into
 * the version's name), no space or quote (they are written into visibility queries).
 */
export const VERSION_PART = /^[\w./+-]{1,255}$/;
const versionPart = () =>
  z
    .string()
    .regex(VERSION_PART, 'expected 1 to 255 characters without spaces or colons: letters, digits and . _ - / +');

/** The path of a file the process reads; pasting the PEM or creds text itself is the usual mistake. */
const filePath = z.string().refine((text) => /^[^\r\n\0]{1,4096}$/.test(text) && !text.startsWith('-----BEGIN'), {
  message: 'expected the path of a file, not its contents (one line, at most 4096 characters)',
});

/** PEM text itself (TEMPORAL_TLS_*_DATA); a path there is the usual mistake. */
const pemText = z.string().refine((text) => /^\s*-----BEGIN [A-Z0-9 ]+-----/.test(text) && text.length <= 65_536, {
  message: 'expected PEM text starting with -----BEGIN (for a file, set the matching _PATH variable instead)',
});

/** host:port, as Temporal's frontend address is written everywhere (CLI, SDKs, the Worker Controller). */
const HOST_PORT = (text: string) => {
  const port = Number(/^[^\s:]+:(\d+)$/.exec(text)?.[1]);
  return port >= 1 && port <= 65_535;
};
const HOST_PORT_MESSAGE = 'expected host:port with a port between 1 and 65535, e.g. localhost:7233';
const NAMESPACE = /^\S{1,255}$/;
const NAMESPACE_MESSAGE = 'expected 1 to 255 characters without spaces';
/** An API key as Temporal Cloud issues it: printable, one line, no spaces (it travels in a header). */
const API_KEY = /^[\x21-\x7e]{1,8192}$/;
const API_KEY_MESSAGE = 'expected the key as issued: printable characters on one line, without spaces';

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z\d](?:[A-Za-z\d-]*[A-Za-z\d])?(?:\.[A-Za-z\d](?:[A-Za-z\d-]*[A-Za-z\d])?)*$/;

/** A browser's Origin header is scheme://host[:port] exactly: anything more never matches. */
function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return ['http:', 'https:'].includes(url.protocol) && url.origin === text;
  } catch {
    return false;
  }
}

const urlWith = (protocols: string[]) =>
  z.string().refine(
    (text) => {
      try {
        return protocols.includes(new URL(text).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const API_KEY_ENTRY = /^[\w.-]{1,64}:(operator|service):[\da-f]{64}$/i;
const ENCRYPTION_KEY_ENTRY = /^[\w.-]{1,64}=[A-Za-z0-9+/]{43}=$/;

const schema = z.object({
  PORT: port(8080),
  METRICS_PORT: port(9464),
  CODEC_PORT: port(0).optional(),
  CODEC_CORS_ORIGINS: list('').refine((entries) => entries.every(isOrigin), {
    message:
      'expected comma-separated origins such as https://temporal-ui.example (scheme, host and port only: no path, no trailing slash)',
  }),
  // The server checks deadlines every 500 ms, so less than 1 s is not kept; 0 would switch them off.
  HTTP_HEADERS_TIMEOUT: duration('5s', { min: '1s', max: '5m' }),
  HTTP_REQUEST_TIMEOUT: duration('10s', { min: '1s', max: '10m' }),
  HTTP_KEEP_ALIVE_TIMEOUT: duration('5s', { min: '1s', max: '10m' }),
  TRUST_PROXY: integer(0, 0, 10),

  AUTH_DISABLED: flag('false'),
  AUTH_JWKS_URL: urlWith(['http:', 'https:']).optional(),
  AUTH_JWT_ISSUER: word(2048).optional(),
  AUTH_JWT_AUDIENCE: word(2048).optional(),
  AUTH_JWT_ALGORITHMS: list('RS256,ES256').refine(
    (algorithms) => algorithms.length > 0 && algorithms.every((a) => JWT_ALGORITHMS.includes(a)),
    { message: `expected a comma-separated list of ${JWT_ALGORITHMS.join(', ')}` },
  ),
  AUTH_JWT_ROLES_CLAIM: word(256).default('roles'),
  AUTH_API_KEYS: list('').refine((entries) => entries.every((entry) => API_KEY_ENTRY.test(entry)), {
    message:
      'expected name:role:sha256-hex entries, comma-separated (role operator or service); make one with npm run api-key',
  }),
  RATE_LIMIT_PER_IDENTITY: integer(600, 0, 1_000_000),
  RATE_LIMIT_PER_ADDRESS: integer(1_200, 0, 1_000_000),

  PAYLOAD_ENCRYPTION_KEYS: list('').refine((entries) => entries.every((entry) => ENCRYPTION_KEY_ENTRY.test(entry)), {
    message: 'expected key-id=base64 entries of 32-byte keys, comma-separated, the key to encrypt with first',
  }),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  // The connection, as the Temporal CLI and SDKs read it; each overrides the profile's setting.
  // Unset and not in a profile: localhost:7233, namespace default, plaintext.
  TEMPORAL_ADDRESS: z.string().refine(HOST_PORT, { message: HOST_PORT_MESSAGE }).optional(),
  TEMPORAL_NAMESPACE: word(255).optional(),
  TEMPORAL_PROFILE: word(255).optional(),
  TEMPORAL_CONFIG_FILE: filePath.optional(),
  TEMPORAL_API_KEY: z.string().regex(API_KEY, API_KEY_MESSAGE).optional(),
  TEMPORAL_TASK_QUEUE: word(255).default('orders'),
  // Worker Versioning (docs/deployment.md, "Deploying a new build of the saga"). The Temporal Worker Controller
  // sets TEMPORAL_DEPLOYMENT_NAME and TEMPORAL_WORKER_BUILD_ID in the pods it runs.
  TEMPORAL_WORKER_VERSIONING: z
    .enum(['versioned', 'unversioned'], {
      error:
        'expected versioned (the worker joins a Worker Deployment) or unversioned (a cluster without Worker Versioning)',
    })
    .default('versioned'),
  TEMPORAL_DEPLOYMENT_NAME: versionPart().default('order-saga'),
  /** Unset: derived from the workflow bundle's content (workers/worker-versioning.ts). */
  TEMPORAL_WORKER_BUILD_ID: versionPart().optional(),
  TEMPORAL_WORKER_BECOME_CURRENT: z
    .enum(['never', 'if-none', 'always'], {
      error:
        'expected never (a rollout decides, e.g. the Temporal Worker Controller), if-none (only when the deployment has no current build yet) or always',
    })
    .default('if-none'),
  // The CLI and SDKs take 1 and 0 too.
  TEMPORAL_TLS: z.enum(['true', 'false', '1', '0'], { error: 'expected true or false (or 1 or 0)' }).optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: filePath.optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: pemText.optional(),
  TEMPORAL_TLS_CLIENT_CERT_PATH: filePath.optional(),
  TEMPORAL_TLS_CLIENT_CERT_DATA: pemText.optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: filePath.optional(),
  TEMPORAL_TLS_CLIENT_KEY_DATA: pemText.optional(),
  TEMPORAL_TLS_SERVER_NAME: z
    .string()
    .regex(HOST_NAME, 'expected a host name such as temporal.example.com (no scheme, port or path)')
    .optional(),
  // Read by the CLI; the TypeScript SDK cannot skip the check, so true is refused (combinationProblems).
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: z
    .enum(['true', 'false', '1', '0'], { error: 'expected true or false' })
    .optional(),
  // Deprecated (DEPRECATED_VARIABLES): this project's names before it read the CLI's.
  TEMPORAL_TLS_CA: filePath.optional(),
  TEMPORAL_TLS_CERT: filePath.optional(),
  TEMPORAL_TLS_KEY: filePath.optional(),

  NATS_URL: z
    .string()
    .default('nats://localhost:4222')
    .refine((text) => text.split(',').every((u) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(u.trim())), {
      message: 'expected nats://host:port (several may be given, comma-separated)',
    }),
  NATS_STREAM_REPLICAS: integer(1, 1, 5),
  NATS_TLS_CA: filePath.optional(),
  NATS_TLS_CERT: filePath.optional(),
  NATS_TLS_KEY: filePath.optional(),
  NATS_USER: word(256).optional(),
  NATS_PASSWORD: z
    .string()
    .regex(/^[^\r\n\0]{1,1024}$/, 'expected 1 to 1024 characters on one line')
    .optional(),
  NATS_CREDS_FILE: filePath.optional(),
  ORDERS_STREAM_MAX_BYTES: integer(1024 ** 3, 1024 ** 2, 1024 ** 4),
  IDEMPOTENCY_BUCKET_MAX_BYTES: integer(256 * 1024 ** 2, 1024 ** 2, 1024 ** 4),
  // The other streams' limits; lib/nats.ts says what each does at its byte limit, and why. The ages
  // are how long each keeps an event: AUDIT and ORDERS_DLQ at least as long as ORDERS (7 days), whose
  // orders reconcile compares with AUDIT and whose originals a dead letter points to; NOTIFICATIONS at
  // least its duplicate window (1 day), which JetStream refuses to exceed the age.
  AUDIT_STREAM_MAX_BYTES: integer(4 * 1024 ** 3, 1024 ** 2, 1024 ** 4),
  AUDIT_STREAM_MAX_AGE: duration('90d', { min: '7d', max: '3650d' }),
  NOTIFICATIONS_STREAM_MAX_BYTES: integer(512 * 1024 ** 2, 1024 ** 2, 1024 ** 4),
  NOTIFICATIONS_STREAM_MAX_AGE: duration('30d', { min: '1d', max: '365d' }),
  ORDERS_DLQ_STREAM_MAX_BYTES: integer(256 * 1024 ** 2, 1024 ** 2, 1024 ** 4),
  ORDERS_DLQ_STREAM_MAX_AGE: duration('30d', { min: '7d', max: '365d' }),

  DATABASE_URL: urlWith(['postgres:', 'postgresql:']).optional(),
  EMBEDDED_DATABASE_DIR: z
    .string()
    .regex(/^[^\r\n\0]{1,4096}$/, 'expected the path of a directory (one line, at most 4096 characters)')
    .default('.data/inventory'),
  INVENTORY_SEED_DEMO: z.enum(['true', 'false'], { error: 'expected true or false' }).default('false'),

  PAYMENT_GATEWAY_URL: urlWith(['http:', 'https:']).default('http://localhost:4010'),
  PAYMENT_TIMEOUT: duration('10s', { min: '100ms', max: '5m' }),
  BREAKER_FAILURE_THRESHOLD: integer(5, 1, 1_000),
  // 0 would close the breaker again at once: it would never spare a gateway that is down.
  BREAKER_HALF_OPEN_AFTER: duration('30s', { min: '100ms', max: '1h' }),

  WORKER_MAX_CONCURRENT_ACTIVITIES: integer(100, 1, 10_000),
  // The SDK raises anything below 2 to 2 (one slot for the sticky queue, one for the normal one).
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: integer(100, 2, 10_000),
  WORKER_SHUTDOWN_GRACE: duration('20s', { min: '1s', max: '1h' }),
  STARTER_ENABLED: z.enum(['true', 'false'], { error: 'expected true or false' }).default('true'),
  STARTER_MAX_IN_FLIGHT: integer(64, 1, 10_000),
  // The starter extends an event's ack deadline every third of this while a start runs: at 3 s that
  // is every second, well above a NATS round trip and an event-loop stall; 0 spun that timer.
  STARTER_ACK_WAIT: duration('30s', { min: '3s', max: '10m' }),
  /** Consumer-wide; unset: 2 × STARTER_MAX_IN_FLIGHT (one or two workers). */
  STARTER_MAX_ACK_PENDING: integer(0, 0, 1_000_000),

  // Saga policy: travels in each saga's input, so a value refused here is one no saga ever runs with.
  APPROVAL_THRESHOLD: integer(100_000, 0, 1_000_000_000_000),
  APPROVAL_TIMEOUT: duration('24h', { min: '1s', max: '30d' }),
  ACTIVITY_TIMEOUT: duration('30s', { min: '1s', max: '1h' }),
  // The SDK refuses a retry policy with an initial interval of 0, or a maximum below the initial
  // interval, inside the workflow task: every saga's task would fail for good. The audit's retries
  // start at 200 ms and share RETRY_MAX_INTERVAL (workflows/order-saga/activities.ts): hence its minimum.
  RETRY_INITIAL_INTERVAL: duration('1s', { min: '100ms', max: '10m' }),
  RETRY_MAX_INTERVAL: duration('1m', { min: '200ms', max: '1h' }),
  // 0 would mean "retry for ever" to Temporal, holding stock while a step can never succeed.
  STEP_MAX_ATTEMPTS: integer(10, 1, 100),
  COMPENSATION_MAX_ATTEMPTS: integer(20, 1, 1_000),

  // At most ORDERS' age (7 days; lib/nats.ts): a key must not outlive the order it names.
  IDEMPOTENCY_TTL: duration('24h', { min: '1s', max: '7d' }),

  OTEL_EXPORTER_OTLP_ENDPOINT: urlWith(['http:', 'https:']).optional(),
});

/** Every environment variable the schema reads (test/lib/config.test.ts gives each one bad values). */
export type ConfigVariable = keyof typeof schema.shape;
export const CONFIG_VARIABLES = Object.keys(schema.shape) as ConfigVariable[];

/** Files of a TLS client: the CA that signed the server's certificate, and the client's own pair for mutual TLS. */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export type ApiKeyRole = 'operator' | 'service';

/** A PEM file's path, read when the process connects, or the PEM text itself (TEMPORAL_TLS_*_DATA, *_data in a profile). */
export type PemSource = { path: string } | { pem: string };

/** TLS to Temporal: the CA of the server's certificate (unset: the system's), the client's pair for mutual TLS. */
export interface TemporalTls {
  /** The name checked in the server's certificate, when it is not the address's host. */
  serverName?: string;
  ca?: PemSource;
  cert?: PemSource;
  key?: PemSource;
}

/** How much a stream may hold and for how long (lib/nats.ts: what it does at the byte limit). */
export interface StreamRetention {
  maxBytes: number;
  maxAgeMs: number;
}

/**
 * `versioned`: the worker polls as build `buildId` (unset: derived from the workflow bundle) of the
 * Worker Deployment `deploymentName`; `becomeCurrent` says whether it makes that build the one new
 * sagas start on when it starts. `unversioned`: a cluster without Worker Versioning.
 */
export type WorkerVersioningConfig =
  | {
      mode: 'versioned';
      deploymentName: string;
      buildId: string | undefined;
      becomeCurrent: 'never' | 'if-none' | 'always';
    }
  | { mode: 'unversioned' };

export interface Config {
  /**
   * `metricsPort`: the operations endpoints (/health, /ready with details, /metrics), never the public API.
   * `codecPort`: the payload codec server for the Temporal Web UI (ingress; unset: not served).
   */
  http: {
    port: number;
    metricsPort: number;
    codecPort: number | undefined;
    codecCorsOrigins: string[];
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    /** How many proxies in front of the ingress set X-Forwarded-For (0: the peer address is the client's). */
    trustProxy: number;
  };
  /** Who may call the API; `disabled` only for a local stack (every caller is then an operator). */
  auth: {
    disabled: boolean;
    jwt: { jwksUrl: string; issuer: string; audience: string; algorithms: string[]; rolesClaim: string } | undefined;
    /** Static keys of service callers: the key's SHA-256, never the key itself. */
    apiKeys: { name: string; role: ApiKeyRole; sha256: string }[];
  };
  /** Requests per minute; 0 turns a limit off. */
  rateLimits: { perIdentity: number; perAddress: number };
  /** AES-256-GCM keys by id; the first encrypts, every one decrypts. Empty: payloads stored in clear. */
  payloadKeys: { id: string; key: Buffer }[];
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
  temporal: {
    address: string;
    namespace: string;
    taskQueue: string;
    /** Temporal Cloud's API key, sent as `authorization: Bearer <key>` on every call; it implies TLS. */
    apiKey?: string;
    /** Undefined: plaintext gRPC. */
    tls: TemporalTls | undefined;
    /** gRPC headers sent on every call (TEMPORAL_GRPC_META_*, a profile's grpc_meta). */
    grpcMeta?: Record<string, string>;
    /** The profile of the Temporal CLI's config file these settings start from, if one was read. */
    profile?: { name: string; file: string };
  };
  /** How the worker joins Temporal's Worker Versioning: workers/worker-versioning.ts. */
  versioning: WorkerVersioningConfig;
  /** `streamReplicas`: copies JetStream keeps of each stream and the idempotency bucket (3 on a cluster). */
  nats: {
    servers: string[];
    streamReplicas: number;
    tls: TlsFiles | undefined;
    credentials: { user: string; password: string } | { credsFile: string } | undefined;
    ordersMaxBytes: number;
    idempotencyMaxBytes: number;
    /** The limits of AUDIT, NOTIFICATIONS and ORDERS_DLQ (ORDERS keeps 7 days, up to ordersMaxBytes). */
    streams: { audit: StreamRetention; notifications: StreamRetention; deadLetters: StreamRetention };
  };
  database: { url: string | undefined; embeddedDir: string; seedDemoCatalog: boolean };
  payment: { gatewayUrl: string; timeoutMs: number; breakerFailureThreshold: number; breakerHalfOpenAfterMs: number };
  worker: { maxConcurrentActivities: number; maxConcurrentWorkflowTasks: number; shutdownGraceMs: number };
  /**
   * `maxAckPending`: events delivered and not yet acknowledged across every worker (the durable
   * consumer's max_ack_pending); each worker holds up to 2 × maxInFlight of them.
   */
  starter: { enabled: boolean; maxInFlight: number; ackWaitMs: number; maxAckPending: number };
  saga: SagaSettings;
  /** How long an Idempotency-Key names its order; used again after that, it starts a new one. */
  idempotencyTtlMs: number;
  otlpEndpoint: string | undefined;
  /** Deprecated settings in use, each naming its replacement: loadConfigOrExit prints them once at start. */
  warnings: string[];
}

/**
 * `ingress`: the process serves the public API, so it must know how to authenticate callers.
 * `checkFiles`: false when the TLS files named are on another machine (a rendered manifest's pod
 * mounts), so only their names are checked; by default each must be a readable PEM file.
 */
export interface ConfigOptions {
  ingress?: boolean;
  checkFiles?: boolean;
}

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env, options: ConfigOptions = {}): Config {
  // Empty strings count as unset, as they do in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (issue) => `${issue.path.join('.')}: ${issue.message}${describeGiven(present, issue.path)}`,
      ),
    );
  }
  const e = parsed.data;
  const temporal = resolveTemporal(present, options);
  const problems = [...combinationProblems(e, options), ...temporal.problems, ...disagreements(e, present)];
  if (problems.length > 0) throw new ConfigError(problems);
  const tlsFiles = (ca?: string, cert?: string, key?: string): TlsFiles => ({
    ...(ca && { ca }),
    ...(cert && { cert }),
    ...(key && { key }),
  });
  const servers = e.NATS_URL.split(',').map((s) => s.trim());
  const natsTls =
    e.NATS_TLS_CA || e.NATS_TLS_CERT || servers.some((url) => url.startsWith('tls://'))
      ? tlsFiles(e.NATS_TLS_CA, e.NATS_TLS_CERT, e.NATS_TLS_KEY)
      : undefined;
  return {
    http: {
      port: e.PORT,
      metricsPort: e.METRICS_PORT,
      codecPort: e.CODEC_PORT,
      codecCorsOrigins: e.CODEC_CORS_ORIGINS,
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT,
      trustProxy: e.TRUST_PROXY,
    },
    auth: {
      disabled: e.AUTH_DISABLED === 'true',
      jwt: e.AUTH_JWKS_URL
        ? {
            jwksUrl: e.AUTH_JWKS_URL,
            issuer: e.AUTH_JWT_ISSUER!,
            audience: e.AUTH_JWT_AUDIENCE!,
            algorithms: e.AUTH_JWT_ALGORITHMS,
            rolesClaim: e.AUTH_JWT_ROLES_CLAIM,
          }
        : undefined,
      apiKeys: e.AUTH_API_KEYS.map((entry) => {
        const [name, role, sha256] = entry.split(':') as [string, ApiKeyRole, string];
        return { name, role, sha256: sha256.toLowerCase() };
      }),
    },
    rateLimits: { perIdentity: e.RATE_LIMIT_PER_IDENTITY, perAddress: e.RATE_LIMIT_PER_ADDRESS },
    payloadKeys: e.PAYLOAD_ENCRYPTION_KEYS.map((entry) => {
      const at = entry.indexOf('=');
      return { id: entry.slice(0, at), key: Buffer.from(entry.slice(at + 1), 'base64') };
    }),
    logLevel: e.LOG_LEVEL,
    temporal: { ...temporal.settings!, taskQueue: e.TEMPORAL_TASK_QUEUE },
    versioning:
      e.TEMPORAL_WORKER_VERSIONING === 'versioned'
        ? {
            mode: 'versioned' as const,
            deploymentName: e.TEMPORAL_DEPLOYMENT_NAME,
            buildId: e.TEMPORAL_WORKER_BUILD_ID,
            becomeCurrent: e.TEMPORAL_WORKER_BECOME_CURRENT,
          }
        : { mode: 'unversioned' as const },
    nats: {
      servers,
      streamReplicas: e.NATS_STREAM_REPLICAS,
      tls: natsTls,
      credentials: e.NATS_CREDS_FILE
        ? { credsFile: e.NATS_CREDS_FILE }
        : e.NATS_USER
          ? { user: e.NATS_USER, password: e.NATS_PASSWORD! }
          : undefined,
      ordersMaxBytes: e.ORDERS_STREAM_MAX_BYTES,
      idempotencyMaxBytes: e.IDEMPOTENCY_BUCKET_MAX_BYTES,
      streams: {
        audit: { maxBytes: e.AUDIT_STREAM_MAX_BYTES, maxAgeMs: e.AUDIT_STREAM_MAX_AGE },
        notifications: { maxBytes: e.NOTIFICATIONS_STREAM_MAX_BYTES, maxAgeMs: e.NOTIFICATIONS_STREAM_MAX_AGE },
        deadLetters: { maxBytes: e.ORDERS_DLQ_STREAM_MAX_BYTES, maxAgeMs: e.ORDERS_DLQ_STREAM_MAX_AGE },
      },
    },
    database: {
      url: e.DATABASE_URL,
      embeddedDir: e.EMBEDDED_DATABASE_DIR,
      seedDemoCatalog: e.INVENTORY_SEED_DEMO === 'true',
    },
    payment: {
      gatewayUrl: e.PAYMENT_GATEWAY_URL,
      timeoutMs: e.PAYMENT_TIMEOUT,
      breakerFailureThreshold: e.BREAKER_FAILURE_THRESHOLD,
      breakerHalfOpenAfterMs: e.BREAKER_HALF_OPEN_AFTER,
    },
    worker: {
      maxConcurrentActivities: e.WORKER_MAX_CONCURRENT_ACTIVITIES,
      maxConcurrentWorkflowTasks: e.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
      shutdownGraceMs: e.WORKER_SHUTDOWN_GRACE,
    },
    starter: {
      enabled: e.STARTER_ENABLED === 'true',
      maxInFlight: e.STARTER_MAX_IN_FLIGHT,
      ackWaitMs: e.STARTER_ACK_WAIT,
      maxAckPending: e.STARTER_MAX_ACK_PENDING || 2 * e.STARTER_MAX_IN_FLIGHT,
    },
    saga: {
      approvalThreshold: e.APPROVAL_THRESHOLD,
      approvalTimeoutMs: e.APPROVAL_TIMEOUT,
      activityTimeoutMs: e.ACTIVITY_TIMEOUT,
      retryInitialIntervalMs: e.RETRY_INITIAL_INTERVAL,
      retryMaxIntervalMs: e.RETRY_MAX_INTERVAL,
      stepMaxAttempts: e.STEP_MAX_ATTEMPTS,
      compensationMaxAttempts: e.COMPENSATION_MAX_ATTEMPTS,
    },
    idempotencyTtlMs: e.IDEMPOTENCY_TTL,
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    warnings: temporal.warnings,
  };
}

/** Settings that are valid alone but not together, or missing for this process. */
function combinationProblems(e: z.infer<typeof schema>, options: ConfigOptions): string[] {
  const problems: string[] = [];
  const pair = (a: string, b: string) => {
    const [hasA, hasB] = [e[a as keyof typeof e] !== undefined, e[b as keyof typeof e] !== undefined];
    if (hasA !== hasB) problems.push(`${hasA ? b : a}: required with ${hasA ? a : b} (set both or neither)`);
  };
  pair('NATS_TLS_CERT', 'NATS_TLS_KEY');
  pair('NATS_USER', 'NATS_PASSWORD');
  if (e.NATS_CREDS_FILE && e.NATS_USER) problems.push('NATS_CREDS_FILE: set it or NATS_USER/NATS_PASSWORD, not both');
  if (e.AUTH_JWKS_URL && (!e.AUTH_JWT_ISSUER || !e.AUTH_JWT_AUDIENCE)) {
    problems.push(
      'AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE: required with AUTH_JWKS_URL (tokens are checked against both)',
    );
  }
  const keyIds = e.PAYLOAD_ENCRYPTION_KEYS.map((entry) => entry.split('=')[0]);
  if (new Set(keyIds).size !== keyIds.length) problems.push('PAYLOAD_ENCRYPTION_KEYS: each key id may appear once');
  const authConfigured = e.AUTH_JWKS_URL !== undefined || e.AUTH_API_KEYS.length > 0;
  if (options.ingress && !authConfigured && e.AUTH_DISABLED !== 'true') {
    problems.push(
      'AUTH_JWKS_URL or AUTH_API_KEYS: the ingress needs a way to authenticate callers; set one (see docs/security.md), ' +
        'or AUTH_DISABLED=true for a local stack that nobody else can reach',
    );
  }
  if (authConfigured && e.AUTH_DISABLED === 'true') {
    problems.push('AUTH_DISABLED: true turns off the AUTH_JWKS_URL/AUTH_API_KEYS set beside it; unset one of them');
  }
  return problems;
}

/** Settings each in range but that break sagas or requests together; each message names both and their values. */
function disagreements(e: z.infer<typeof schema>, present: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  /** The value as given, or the default the schema filled in. */
  const given = (name: ConfigVariable, parsed: number, format: (n: number) => string = formatDuration) =>
    present[name] !== undefined ? JSON.stringify(present[name]) : `${JSON.stringify(format(parsed))}, the default`;
  if (e.RETRY_MAX_INTERVAL < e.RETRY_INITIAL_INTERVAL) {
    problems.push(
      `RETRY_MAX_INTERVAL: expected at least RETRY_INITIAL_INTERVAL (${given('RETRY_INITIAL_INTERVAL', e.RETRY_INITIAL_INTERVAL)}): ` +
        `retries back off from the initial interval up to this one, and Temporal refuses a maximum below it ` +
        `(got ${given('RETRY_MAX_INTERVAL', e.RETRY_MAX_INTERVAL)})`,
    );
  }
  if (e.HTTP_HEADERS_TIMEOUT > e.HTTP_REQUEST_TIMEOUT) {
    problems.push(
      `HTTP_HEADERS_TIMEOUT: expected at most HTTP_REQUEST_TIMEOUT (${given('HTTP_REQUEST_TIMEOUT', e.HTTP_REQUEST_TIMEOUT)}): ` +
        `the headers are part of the request (got ${given('HTTP_HEADERS_TIMEOUT', e.HTTP_HEADERS_TIMEOUT)})`,
    );
  }
  // chargePayment publishes its audit events, then makes one gateway call bounded by PAYMENT_TIMEOUT.
  // An attempt cut short by its start-to-close timeout loses the answer of a charge that may have
  // gone through, and the breaker never sees the gateway's slowness.
  if (e.ACTIVITY_TIMEOUT < e.PAYMENT_TIMEOUT + 1_000) {
    problems.push(
      `ACTIVITY_TIMEOUT: expected at least PAYMENT_TIMEOUT (${given('PAYMENT_TIMEOUT', e.PAYMENT_TIMEOUT)}) + 1s: ` +
        `a step's attempt must outlast its gateway call (got ${given('ACTIVITY_TIMEOUT', e.ACTIVITY_TIMEOUT)})`,
    );
  }
  if (e.STARTER_MAX_ACK_PENDING !== 0 && e.STARTER_MAX_ACK_PENDING < e.STARTER_MAX_IN_FLIGHT) {
    problems.push(
      `STARTER_MAX_ACK_PENDING: expected 0 (unset) or at least STARTER_MAX_IN_FLIGHT (${given('STARTER_MAX_IN_FLIGHT', e.STARTER_MAX_IN_FLIGHT, String)}): ` +
        `fewer would leave a single worker's in-flight slots idle; set 2 × STARTER_MAX_IN_FLIGHT × workers ` +
        `(got ${given('STARTER_MAX_ACK_PENDING', e.STARTER_MAX_ACK_PENDING, String)})`,
    );
  }
  return problems;
}

/**
 * This project's names before it read the Temporal CLI's, and the CLI's name for each. Read for
 * one more release, each with a warning at start (docs/configuration.md, "Deprecated variables").
 */
export const DEPRECATED_VARIABLES = {
  TEMPORAL_TLS_CA: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  TEMPORAL_TLS_CERT: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  TEMPORAL_TLS_KEY: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
} as const;

/** The TLS material of a profile: its field here, its key in the TOML file, and its two variables. */
const TLS_MATERIAL = [
  {
    field: 'ca',
    profileKey: 'serverCACert',
    toml: 'server_ca_cert',
    path: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
    data: 'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  },
  {
    field: 'cert',
    profileKey: 'clientCert',
    toml: 'client_cert',
    path: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
    data: 'TEMPORAL_TLS_CLIENT_CERT_DATA',
  },
  {
    field: 'key',
    profileKey: 'clientKey',
    toml: 'client_key',
    path: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
    data: 'TEMPORAL_TLS_CLIENT_KEY_DATA',
  },
] as const;

const GRPC_META_PREFIX = 'TEMPORAL_GRPC_META_';

/**
 * Where the Temporal CLI keeps its config file when TEMPORAL_CONFIG_FILE is unset, as
 * @temporalio/envconfig finds it; undefined when the environment names no home.
 */
export function defaultTemporalConfigFile(env: Record<string, string | undefined>): string | undefined {
  const under = (dir: string | undefined) => (dir ? join(dir, 'temporalio', 'temporal.toml') : undefined);
  if (platform() === 'win32') return under(env.APPDATA);
  if (platform() === 'darwin') return under(env.HOME && join(env.HOME, 'Library', 'Application Support'));
  if (env.XDG_CONFIG_HOME) return isAbsolute(env.XDG_CONFIG_HOME) ? under(env.XDG_CONFIG_HOME) : undefined;
  return under(env.HOME && join(env.HOME, '.config'));
}

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();

/**
 * The Temporal connection as the Temporal CLI and SDKs read it (@temporalio/envconfig): the
 * profile TEMPORAL_PROFILE names (else "default", if there is one) of the TOML file at
 * TEMPORAL_CONFIG_FILE (else the CLI's default path), each setting overridden by its TEMPORAL_*
 * variable. The deprecated names stand in for the CLI's when those are unset. Every problem
 * names the variable, or the file, profile and key, that gave the value.
 */
function resolveTemporal(
  present: Record<string, string | undefined>,
  options: ConfigOptions,
): { settings?: Omit<Config['temporal'], 'taskQueue'>; problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];

  // What envconfig reads: the environment with each deprecated name moved to the CLI's.
  const sdkEnv = Object.fromEntries(
    Object.entries(present).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  /** The variable the operator set for each of the CLI's names (a deprecated one, or the name itself). */
  const setAs: Record<string, string> = {};
  for (const [old, replacement] of Object.entries(DEPRECATED_VARIABLES)) {
    delete sdkEnv[old];
    const value = present[old];
    if (value === undefined) continue;
    if (present[replacement] === undefined) {
      sdkEnv[replacement] = value;
      setAs[replacement] = old;
      warnings.push(
        `${old} is deprecated and will be removed in the next release: set ${replacement} instead (the name the Temporal CLI and SDKs read)`,
      );
    } else {
      // Not refused: the Temporal Worker Controller sets the CLI's names in the pods it runs, beside a
      // ConfigMap that may still set the old ones (the same Secret, mounted twice).
      warnings.push(
        `${old} is deprecated and ignored: ${replacement} is set too and is used; unset ${old} (it will be removed in the next release)`,
      );
    }
  }
  const variable = (name: string) => setAs[name] ?? name;

  for (const material of TLS_MATERIAL) {
    if (sdkEnv[material.path] !== undefined && sdkEnv[material.data] !== undefined) {
      problems.push(`${variable(material.path)}: set it or ${material.data}, not both`);
    }
  }
  if (
    present.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === 'true' ||
    present.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === '1'
  ) {
    problems.push(
      "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: the Temporal SDK always checks the server's certificate; " +
        'set TEMPORAL_TLS_SERVER_NAME to the name in it (and TEMPORAL_TLS_SERVER_CA_CERT_PATH to its CA), then unset this',
    );
  }
  const grpcMeta = Object.keys(sdkEnv).filter((name) => name.startsWith(GRPC_META_PREFIX));
  for (const name of grpcMeta) {
    if (!/^[A-Za-z\d][\w.-]*$/.test(name.slice(GRPC_META_PREFIX.length))) {
      problems.push(`${name}: expected ${GRPC_META_PREFIX} and a header name (letters, digits, _ - .)`);
    }
    if (!/^[\x20-\x7e]{1,8192}$/.test(sdkEnv[name]!)) {
      problems.push(`${name}: expected a header value of printable characters on one line (value not shown)`);
    }
  }
  if (problems.length > 0) return { problems, warnings };

  // The config file: TEMPORAL_CONFIG_FILE must be readable; the default path may be absent.
  const explicitFile = present.TEMPORAL_CONFIG_FILE;
  const file = explicitFile ?? defaultTemporalConfigFile(present);
  const fileLabel = explicitFile
    ? `TEMPORAL_CONFIG_FILE (${file})`
    : `TEMPORAL_CONFIG_FILE (unset, so the CLI's default ${file})`;
  let fileText: string | undefined;
  if (file !== undefined) {
    try {
      if (statSync(file).isDirectory()) throw Object.assign(new Error('a directory'), { code: 'EISDIR' });
      fileText = readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (explicitFile !== undefined || code !== 'ENOENT') {
        problems.push(
          `${fileLabel}: cannot read it (${code ?? firstLine(error)}); ` +
            (explicitFile !== undefined
              ? 'give the path of the TOML file `temporal config set` writes, or unset TEMPORAL_CONFIG_FILE'
              : 'make it readable, or set TEMPORAL_CONFIG_FILE to another file'),
        );
      }
    }
  }
  const profileName = present.TEMPORAL_PROFILE;
  if (profileName !== undefined && fileText === undefined && problems.length === 0) {
    problems.push(
      `TEMPORAL_PROFILE: profile "${profileName}" is read from the Temporal CLI's config file, and ` +
        (file === undefined
          ? 'TEMPORAL_CONFIG_FILE is unset (and there is no HOME to find the default one)'
          : `there is none at ${file}`) +
        '; set TEMPORAL_CONFIG_FILE to the file that has it, or unset TEMPORAL_PROFILE',
    );
  }
  if (problems.length > 0) return { problems, warnings };

  const source = fileText === undefined ? { disableFile: true } : { configSource: { data: fileText } };
  const profileLabel = `${fileLabel} profile "${profileName ?? 'default'}"`;
  let fromFile: ClientConfigProfile = {};
  let merged: ClientConfigProfile;
  try {
    if (fileText !== undefined) {
      fromFile = loadClientConfigProfile({ ...source, disableEnv: true, ...(profileName && { profile: profileName }) });
    }
    merged = loadClientConfigProfile({
      ...source,
      overrideEnvVars: sdkEnv,
      ...(profileName && { profile: profileName }),
    });
  } catch (error) {
    if (profileName !== undefined && /not found/.test(firstLine(error))) {
      let names: string[] = [];
      try {
        names = Object.keys(loadClientConfig({ configSource: { data: fileText! } }).profiles);
      } catch {
        // A profile that does not load is reported once TEMPORAL_PROFILE names one that exists.
      }
      problems.push(
        `TEMPORAL_PROFILE: no profile "${profileName}" in ${file} (its profiles: ${names.join(', ') || 'none'}); ` +
          `set TEMPORAL_PROFILE to one of them, or add it with temporal config set --profile ${profileName} --prop address --value HOST:PORT`,
      );
    } else if (typeof (error as { line?: unknown }).line === 'number') {
      const { line, column } = error as { line?: number; column?: number };
      problems.push(
        `${fileLabel}: not valid TOML at line ${line}, column ${column} (${firstLine(error).replace(/^Invalid TOML document: /, '')}); fix the file or point TEMPORAL_CONFIG_FILE at another`,
      );
    } else {
      problems.push(
        `${fileText === undefined ? 'TEMPORAL_*' : profileLabel}: ${firstLine(error)}; fix it (temporal config get --profile NAME shows what the CLI reads)`,
      );
    }
    return { problems, warnings };
  }

  /** Who gave a setting: its variable when set, else the profile's key. */
  const origin = (envName: string, tomlKey: string) =>
    sdkEnv[envName] !== undefined ? variable(envName) : `${profileLabel} ${tomlKey}`;
  const checkFromFile = (envName: string, tomlKey: string, value: string | undefined, ok: boolean, message: string) => {
    if (value !== undefined && sdkEnv[envName] === undefined && !ok) {
      problems.push(`${profileLabel} ${tomlKey}: ${message} (got ${JSON.stringify(value)})`);
    }
  };
  checkFromFile('TEMPORAL_ADDRESS', 'address', merged.address, HOST_PORT(merged.address ?? ''), HOST_PORT_MESSAGE);
  checkFromFile(
    'TEMPORAL_NAMESPACE',
    'namespace',
    merged.namespace,
    NAMESPACE.test(merged.namespace ?? ''),
    NAMESPACE_MESSAGE,
  );
  checkFromFile(
    'TEMPORAL_TLS_SERVER_NAME',
    'tls.server_name',
    merged.tls?.serverName,
    HOST_NAME.test(merged.tls?.serverName ?? ''),
    'expected a host name such as temporal.example.com (no scheme, port or path)',
  );
  if (merged.apiKey !== undefined && sdkEnv.TEMPORAL_API_KEY === undefined && !API_KEY.test(merged.apiKey)) {
    problems.push(`${profileLabel} api_key: ${API_KEY_MESSAGE} (value not shown: it is secret)`);
  }

  const tls = merged.tls;
  const tlsOn = tls ? tls.disabled !== true : merged.apiKey !== undefined;
  const tlsOrigin =
    sdkEnv.TEMPORAL_TLS !== undefined ? `TEMPORAL_TLS=${sdkEnv.TEMPORAL_TLS}` : `${profileLabel} tls.disabled = true`;
  if (merged.apiKey !== undefined && tls?.disabled === true) {
    problems.push(
      `${origin('TEMPORAL_API_KEY', 'api_key')}: needs TLS, and ${tlsOrigin} turns TLS off: the key would cross the network in clear; ` +
        'remove that setting (an API key turns TLS on)',
    );
  }
  const headers = merged.grpcMeta ?? {};
  if (merged.apiKey !== undefined && headers.authorization !== undefined) {
    problems.push(
      `${origin('TEMPORAL_API_KEY', 'api_key')}: sent as the authorization header, which ` +
        `${sdkEnv.TEMPORAL_GRPC_META_AUTHORIZATION !== undefined ? 'TEMPORAL_GRPC_META_AUTHORIZATION' : `${profileLabel} grpc_meta.authorization`} sets too; keep one of them`,
    );
  }
  if (sdkEnv.TEMPORAL_TLS === 'false' || sdkEnv.TEMPORAL_TLS === '0') {
    const beside = [
      ...TLS_MATERIAL.flatMap((m) => [m.path, m.data])
        .filter((name) => sdkEnv[name] !== undefined)
        .map(variable),
      ...(sdkEnv.TEMPORAL_TLS_SERVER_NAME !== undefined ? ['TEMPORAL_TLS_SERVER_NAME'] : []),
    ];
    if (beside.length > 0) {
      problems.push(
        `TEMPORAL_TLS: ${sdkEnv.TEMPORAL_TLS} turns off the TLS settings set beside it (${beside.join(', ')}); unset one or the other`,
      );
    }
  }
  const cert = TLS_MATERIAL[1];
  const key = TLS_MATERIAL[2];
  const materialOrigin = (m: (typeof TLS_MATERIAL)[number]) =>
    sdkEnv[m.data] !== undefined
      ? m.data
      : sdkEnv[m.path] !== undefined
        ? variable(m.path)
        : `${profileLabel} tls.${m.toml}_${tls?.[m.profileKey] && 'data' in tls[m.profileKey]! ? 'data' : 'path'}`;
  if (tls && (tls.clientCert === undefined) !== (tls.clientKey === undefined)) {
    const [missing, given] = tls.clientCert === undefined ? [cert, key] : [key, cert];
    problems.push(`${missing.path}: required with ${materialOrigin(given)} (set both or neither)`);
  }

  const settings: Omit<Config['temporal'], 'taskQueue'> = {
    address: merged.address ?? 'localhost:7233',
    namespace: merged.namespace ?? 'default',
    apiKey: merged.apiKey,
    tls: undefined,
    grpcMeta: headers,
    profile:
      fileText !== undefined && Object.keys(fromFile).length > 0
        ? { name: profileName ?? 'default', file: file! }
        : undefined,
  };
  if (tlsOn) {
    const temporalTls: TemporalTls = { ...(tls?.serverName && { serverName: tls.serverName }) };
    for (const m of TLS_MATERIAL) {
      const given: ConfigDataSource | undefined = tls?.[m.profileKey];
      if (given === undefined) continue;
      const pem: PemSource =
        'path' in given
          ? { path: given.path }
          : { pem: typeof given.data === 'string' ? given.data : Buffer.from(given.data).toString('utf8') };
      temporalTls[m.field] = pem;
      const problem = options.checkFiles === false && 'path' in pem ? undefined : pemProblem(pem);
      if (problem) problems.push(`${materialOrigin(m)}: ${problem}`);
    }
    settings.tls = temporalTls;
  }
  return { settings, problems, warnings };
}

/** Why a PEM source cannot serve, or undefined: the file is unreadable, or the text is not PEM. */
function pemProblem(source: PemSource): string | undefined {
  let text: string;
  if ('path' in source) {
    try {
      if (statSync(source.path).isDirectory()) return `${source.path} is a directory; give the PEM file in it`;
      text = readFileSync(source.path, 'utf8');
    } catch (error) {
      return `cannot read ${source.path} (${(error as NodeJS.ErrnoException).code ?? firstLine(error)}); mount the file there or fix the path`;
    }
  } else {
    text = source.pem;
  }
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) {
    return `${'path' in source ? source.path : 'the text given'} is not PEM (no -----BEGIN line); give the PEM form (openssl x509 -inform der -outform pem converts a certificate)`;
  }
  return undefined;
}

/** The value given, for the message; withheld for variables that may hold a secret (keys, passwords, URLs with credentials). */
function describeGiven(env: Record<string, string | undefined>, path: PropertyKey[]): string {
  const name = String(path[0]);
  const value = env[name];
  if (value === undefined) return '';
  if (/URL|TOKEN|SECRET|PASSWORD|KEY|CREDS/.test(name)) return ' (value not shown: it may be secret)';
  return ` (got ${JSON.stringify(value)})`;
}

/** For process entry points: the config, or a clear message on stderr and exit code 2. */
export function loadConfigOrExit(
  env: Record<string, string | undefined> = process.env,
  options: ConfigOptions = {},
): Config {
  try {
    const config = loadConfig(env, options);
    for (const warning of config.warnings) process.stderr.write(`warning: ${warning}\n`);
    return config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}
