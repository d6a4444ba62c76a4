// One place reads the environment: validated once at start-up, handed on as typed config.
// Every variable is documented in README.md and .env.example.
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

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected a duration such as 500ms, 30s, 15m, 24h` });
        return z.NEVER;
      }
      return ms;
    });

const integer = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: 'expected a whole number' })
    .int('expected a whole number')
    .min(min, `expected at least ${min}`)
    .max(max, `expected at most ${max}`)
    .default(fallback);

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
  CODEC_CORS_ORIGINS: list(''),
  HTTP_HEADERS_TIMEOUT: duration('5s'),
  HTTP_REQUEST_TIMEOUT: duration('10s'),
  HTTP_KEEP_ALIVE_TIMEOUT: duration('5s'),
  TRUST_PROXY: integer(0, 0, 10),

  AUTH_DISABLED: flag('false'),
  AUTH_JWKS_URL: urlWith(['http:', 'https:']).optional(),
  AUTH_JWT_ISSUER: z.string().min(1).optional(),
  AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
  AUTH_JWT_ALGORITHMS: list('RS256,ES256').refine(
    (algorithms) => algorithms.length > 0 && algorithms.every((a) => JWT_ALGORITHMS.includes(a)),
    { message: `expected a comma-separated list of ${JWT_ALGORITHMS.join(', ')}` },
  ),
  AUTH_JWT_ROLES_CLAIM: z.string().min(1).default('roles'),
  AUTH_API_KEYS: list('').refine((entries) => entries.every((entry) => API_KEY_ENTRY.test(entry)), {
    message:
      'expected name:role:sha256-hex entries, comma-separated (role operator or service); make one with npm run api-key',
  }),
  RATE_LIMIT_PER_IDENTITY: integer(600, 0),
  RATE_LIMIT_PER_ADDRESS: integer(1_200, 0),

  PAYLOAD_ENCRYPTION_KEYS: list('').refine((entries) => entries.every((entry) => ENCRYPTION_KEY_ENTRY.test(entry)), {
    message: 'expected key-id=base64 entries of 32-byte keys, comma-separated, the key to encrypt with first',
  }),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'expected host:port, e.g. localhost:7233')
    .default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('orders'),
  TEMPORAL_TLS: flag('false'),
  TEMPORAL_TLS_CA: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),

  NATS_URL: z
    .string()
    .default('nats://localhost:4222')
    .refine((text) => text.split(',').every((u) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(u.trim())), {
      message: 'expected nats://host:port (several may be given, comma-separated)',
    }),
  NATS_STREAM_REPLICAS: integer(1, 1, 5),
  NATS_TLS_CA: z.string().min(1).optional(),
  NATS_TLS_CERT: z.string().min(1).optional(),
  NATS_TLS_KEY: z.string().min(1).optional(),
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().min(1).optional(),
  NATS_CREDS_FILE: z.string().min(1).optional(),
  ORDERS_STREAM_MAX_BYTES: integer(1024 ** 3, 1024 ** 2),
  IDEMPOTENCY_BUCKET_MAX_BYTES: integer(256 * 1024 ** 2, 1024 ** 2),

  DATABASE_URL: urlWith(['postgres:', 'postgresql:']).optional(),
  EMBEDDED_DATABASE_DIR: z.string().default('.data/inventory'),
  INVENTORY_SEED_DEMO: z.enum(['true', 'false'], { error: 'expected true or false' }).default('false'),

  PAYMENT_GATEWAY_URL: urlWith(['http:', 'https:']).default('http://localhost:4010'),
  PAYMENT_TIMEOUT: duration('10s'),
  BREAKER_FAILURE_THRESHOLD: integer(5, 1),
  BREAKER_HALF_OPEN_AFTER: duration('30s'),

  WORKER_MAX_CONCURRENT_ACTIVITIES: integer(100, 1),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: integer(100, 1),
  WORKER_SHUTDOWN_GRACE: duration('20s'),
  STARTER_ENABLED: z.enum(['true', 'false'], { error: 'expected true or false' }).default('true'),
  STARTER_MAX_IN_FLIGHT: integer(64, 1, 10_000),
  STARTER_MAX_DELIVER: integer(10, 1),
  STARTER_ACK_WAIT: duration('30s'),
  /** Consumer-wide; unset: 2 × STARTER_MAX_IN_FLIGHT (one or two workers). */
  STARTER_MAX_ACK_PENDING: integer(0, 0, 1_000_000),

  APPROVAL_THRESHOLD: integer(100_000, 0),
  APPROVAL_TIMEOUT: duration('24h'),
  ACTIVITY_TIMEOUT: duration('30s'),
  RETRY_INITIAL_INTERVAL: duration('1s'),
  RETRY_MAX_INTERVAL: duration('1m'),
  STEP_MAX_ATTEMPTS: integer(10, 1),
  COMPENSATION_MAX_ATTEMPTS: integer(20, 1),

  IDEMPOTENCY_TTL: duration('24h'),

  OTEL_EXPORTER_OTLP_ENDPOINT: urlWith(['http:', 'https:']).optional(),
});

/** Files of a TLS client: the CA that signed the server's certificate, and the client's own pair for mutual TLS. */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export type ApiKeyRole = 'operator' | 'service';

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
    /** Undefined: plaintext gRPC. `serverName` overrides the name checked in the server's certificate. */
    tls: (TlsFiles & { serverName?: string }) | undefined;
  };
  /** `streamReplicas`: copies JetStream keeps of each stream and the idempotency bucket (3 on a cluster). */
  nats: {
    servers: string[];
    streamReplicas: number;
    tls: TlsFiles | undefined;
    credentials: { user: string; password: string } | { credsFile: string } | undefined;
    ordersMaxBytes: number;
    idempotencyMaxBytes: number;
  };
  database: { url: string | undefined; embeddedDir: string; seedDemoCatalog: boolean };
  payment: { gatewayUrl: string; timeoutMs: number; breakerFailureThreshold: number; breakerHalfOpenAfterMs: number };
  worker: { maxConcurrentActivities: number; maxConcurrentWorkflowTasks: number; shutdownGraceMs: number };
  /**
   * `maxAckPending`: events delivered and not yet acknowledged across every worker (the durable
   * consumer's max_ack_pending); each worker holds up to 2 × maxInFlight of them.
   */
  starter: { enabled: boolean; maxInFlight: number; maxDeliver: number; ackWaitMs: number; maxAckPending: number };
  saga: SagaSettings;
  /** How long an Idempotency-Key names its order; used again after that, it starts a new one. */
  idempotencyTtlMs: number;
  otlpEndpoint: string | undefined;
}

/** `ingress`: the process serves the public API, so it must know how to authenticate callers. */
export interface ConfigOptions {
  ingress?: boolean;
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
  const problems = combinationProblems(e, options);
  if (problems.length > 0) throw new ConfigError(problems);
  const tlsFiles = (ca?: string, cert?: string, key?: string): TlsFiles => ({
    ...(ca && { ca }),
    ...(cert && { cert }),
    ...(key && { key }),
  });
  const temporalTls =
    e.TEMPORAL_TLS === 'true' || e.TEMPORAL_TLS_CA || e.TEMPORAL_TLS_CERT
      ? {
          ...tlsFiles(e.TEMPORAL_TLS_CA, e.TEMPORAL_TLS_CERT, e.TEMPORAL_TLS_KEY),
          ...(e.TEMPORAL_TLS_SERVER_NAME && { serverName: e.TEMPORAL_TLS_SERVER_NAME }),
        }
      : undefined;
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
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      tls: temporalTls,
    },
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
      maxDeliver: e.STARTER_MAX_DELIVER,
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
  };
}

/** Settings that are valid alone but not together, or missing for this process. */
function combinationProblems(e: z.infer<typeof schema>, options: ConfigOptions): string[] {
  const problems: string[] = [];
  const pair = (a: string, b: string) => {
    const [hasA, hasB] = [e[a as keyof typeof e] !== undefined, e[b as keyof typeof e] !== undefined];
    if (hasA !== hasB) problems.push(`${hasA ? b : a}: required with ${hasA ? a : b} (set both or neither)`);
  };
  pair('TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY');
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
      'AUTH_JWKS_URL or AUTH_API_KEYS: the ingress needs a way to authenticate callers; set one (see the README, ' +
        '"Security"), or AUTH_DISABLED=true for a local stack that nobody else can reach',
    );
  }
  if (authConfigured && e.AUTH_DISABLED === 'true') {
    problems.push('AUTH_DISABLED: true turns off the AUTH_JWKS_URL/AUTH_API_KEYS set beside it; unset one of them');
  }
  return problems;
}

function describeGiven(env: Record<string, string | undefined>, path: PropertyKey[]): string {
  const name = String(path[0]);
  const value = env[name];
  if (value === undefined || /URL|TOKEN|SECRET|PASSWORD|KEYS/.test(name)) return '';
  return ` (got "${value}")`;
}

/** For process entry points: the config, or a clear message on stderr and exit code 2. */
export function loadConfigOrExit(
  env: Record<string, string | undefined> = process.env,
  options: ConfigOptions = {},
): Config {
  try {
    return loadConfig(env, options);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}
