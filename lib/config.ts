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

const schema = z.object({
  PORT: port(8080),
  METRICS_PORT: port(9464),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'expected host:port, e.g. localhost:7233')
    .default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('orders'),

  NATS_URL: z
    .string()
    .default('nats://localhost:4222')
    .refine((text) => text.split(',').every((u) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(u.trim())), {
      message: 'expected nats://host:port (several may be given, comma-separated)',
    }),
  NATS_STREAM_REPLICAS: integer(1, 1, 5),

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

export interface Config {
  http: { port: number; metricsPort: number };
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
  temporal: { address: string; namespace: string; taskQueue: string };
  /** `streamReplicas`: copies JetStream keeps of each stream and the idempotency bucket (3 on a cluster). */
  nats: { servers: string[]; streamReplicas: number };
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

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
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
  return {
    http: { port: e.PORT, metricsPort: e.METRICS_PORT },
    logLevel: e.LOG_LEVEL,
    temporal: { address: e.TEMPORAL_ADDRESS, namespace: e.TEMPORAL_NAMESPACE, taskQueue: e.TEMPORAL_TASK_QUEUE },
    nats: { servers: e.NATS_URL.split(',').map((s) => s.trim()), streamReplicas: e.NATS_STREAM_REPLICAS },
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

function describeGiven(env: Record<string, string | undefined>, path: PropertyKey[]): string {
  const name = String(path[0]);
  const value = env[name];
  if (value === undefined || /URL|TOKEN|SECRET|PASSWORD/.test(name)) return '';
  return ` (got "${value}")`;
}

/** For process entry points: the config, or a clear message on stderr and exit code 2. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}
