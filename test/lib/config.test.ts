// The configuration's bounds: every variable of the schema refuses a value outside what makes sense
// for it, naming the variable, the value given (secrets withheld) and what it accepts; settings
// valid alone but not together are refused; the defaults load; and a process given a setting that
// would break every saga exits 2 before it connects to anything.
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig, type ConfigVariable } from '../../lib/config.js';
import { productEnv, spawnProductProcess } from '../support/processes.js';

/** The problems loadConfig reports for `env`, or [] when it accepts it. */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return [...error.problems];
  }
}

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----';
const PRIVATE_KEY = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----';

/**
 * One entry per variable (the type makes a new variable without one a compile error, and the
 * first test a failure): values it must refuse, the words of the range it accepts, and whether
 * its value is a secret the message must not repeat.
 */
const BAD_VALUES: Record<ConfigVariable, { bad: string[]; accepts: string; secret?: true }> = {
  PORT: { bad: ['65536', '-1', 'http'], accepts: 'between 0 and 65535' },
  METRICS_PORT: { bad: ['70000'], accepts: 'between 0 and 65535' },
  CODEC_PORT: { bad: ['65536'], accepts: 'between 0 and 65535' },
  CODEC_CORS_ORIGINS: {
    bad: ['localhost:8233', 'http://localhost:8233/', 'https://ui.example/temporal'],
    accepts: 'origins such as https://temporal-ui.example',
  },
  HTTP_HEADERS_TIMEOUT: { bad: ['0', '500ms', '6m'], accepts: 'between 1s and 5m' },
  HTTP_REQUEST_TIMEOUT: { bad: ['0', '11m'], accepts: 'between 1s and 10m' },
  HTTP_KEEP_ALIVE_TIMEOUT: { bad: ['0', '11m'], accepts: 'between 1s and 10m' },
  TRUST_PROXY: { bad: ['11', '-1'], accepts: 'between 0 and 10' },
  AUTH_DISABLED: { bad: ['yes'], accepts: 'true or false' },
  AUTH_JWKS_URL: {
    bad: ['ftp://idp.example/jwks.json'],
    accepts: 'a URL starting with http:// or https://',
    secret: true,
  },
  AUTH_JWT_ISSUER: { bad: ['https://idp.example/ realm'], accepts: '1 to 2048 characters without spaces' },
  AUTH_JWT_AUDIENCE: { bad: ['order api'], accepts: '1 to 2048 characters without spaces' },
  AUTH_JWT_ALGORITHMS: { bad: ['HS256', 'none'], accepts: 'RS256, RS384' },
  AUTH_JWT_ROLES_CLAIM: { bad: ['my roles'], accepts: '1 to 256 characters without spaces' },
  AUTH_API_KEYS: { bad: ['storefront:admin:abc'], accepts: 'name:role:sha256-hex entries', secret: true },
  RATE_LIMIT_PER_IDENTITY: { bad: ['-1', '1000001'], accepts: 'between 0 and 1000000' },
  RATE_LIMIT_PER_ADDRESS: { bad: ['-1', '1000001'], accepts: 'between 0 and 1000000' },
  PAYLOAD_ENCRYPTION_KEYS: { bad: ['k1=too-short'], accepts: 'key-id=base64 entries of 32-byte keys', secret: true },
  LOG_LEVEL: { bad: ['verbose'], accepts: 'expected one of' },
  TEMPORAL_ADDRESS: { bad: ['localhost:70000', 'localhost:0', 'localhost'], accepts: 'a port between 1 and 65535' },
  TEMPORAL_NAMESPACE: { bad: ['orders prod', 'x'.repeat(256)], accepts: '1 to 255 characters without spaces' },
  TEMPORAL_TASK_QUEUE: { bad: ['orders queue', 'x'.repeat(256)], accepts: '1 to 255 characters without spaces' },
  TEMPORAL_WORKER_VERSIONING: { bad: ['pinned', 'true'], accepts: 'versioned' },
  TEMPORAL_DEPLOYMENT_NAME: {
    bad: ['order saga', 'orders:v2', "order-saga' OR 'x", 'x'.repeat(256)],
    accepts: 'without spaces or colons',
  },
  TEMPORAL_WORKER_BUILD_ID: { bad: ['build 7', 'v1:2', 'v1"2', 'x'.repeat(256)], accepts: 'without spaces or colons' },
  TEMPORAL_WORKER_BECOME_CURRENT: { bad: ['yes', 'first'], accepts: 'if-none' },
  TEMPORAL_TLS: { bad: ['yes'], accepts: 'true or false' },
  TEMPORAL_TLS_CA: { bad: [PEM], accepts: 'the path of a file, not its contents' },
  TEMPORAL_TLS_CERT: { bad: [PEM], accepts: 'the path of a file, not its contents' },
  TEMPORAL_TLS_KEY: { bad: [PRIVATE_KEY], accepts: 'the path of a file, not its contents', secret: true },
  TEMPORAL_TLS_SERVER_NAME: {
    bad: ['https://temporal.example', 'temporal.example:7233'],
    accepts: 'a host name such as temporal.example.com',
  },
  NATS_URL: { bad: ['http://nats:4222'], accepts: 'nats://host:port', secret: true },
  NATS_STREAM_REPLICAS: { bad: ['0', '6'], accepts: 'between 1 and 5' },
  NATS_TLS_CA: { bad: [PEM], accepts: 'the path of a file, not its contents' },
  NATS_TLS_CERT: { bad: [PEM], accepts: 'the path of a file, not its contents' },
  NATS_TLS_KEY: { bad: [PRIVATE_KEY], accepts: 'the path of a file, not its contents', secret: true },
  NATS_USER: { bad: ['order saga'], accepts: '1 to 256 characters without spaces' },
  NATS_PASSWORD: { bad: ['pass\nword', 'p'.repeat(1025)], accepts: '1 to 1024 characters on one line', secret: true },
  NATS_CREDS_FILE: {
    bad: ['-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ'],
    accepts: 'the path of a file, not its contents',
    secret: true,
  },
  ORDERS_STREAM_MAX_BYTES: { bad: ['1000', '1099511627777'], accepts: 'between 1048576 and 1099511627776' },
  IDEMPOTENCY_BUCKET_MAX_BYTES: { bad: ['0', '1099511627777'], accepts: 'between 1048576 and 1099511627776' },
  AUDIT_STREAM_MAX_BYTES: { bad: ['1048575', '1099511627777', '4GiB'], accepts: 'between 1048576 and 1099511627776' },
  AUDIT_STREAM_MAX_AGE: { bad: ['0', '6d', '3651d'], accepts: 'between 7d and 3650d' },
  NOTIFICATIONS_STREAM_MAX_BYTES: { bad: ['0', '1099511627777'], accepts: 'between 1048576 and 1099511627776' },
  NOTIFICATIONS_STREAM_MAX_AGE: { bad: ['0', '23h', '366d'], accepts: 'between 1d and 365d' },
  ORDERS_DLQ_STREAM_MAX_BYTES: { bad: ['0', '1099511627777'], accepts: 'between 1048576 and 1099511627776' },
  ORDERS_DLQ_STREAM_MAX_AGE: { bad: ['0', '6d', '366d'], accepts: 'between 7d and 365d' },
  DATABASE_URL: { bad: ['mysql://db:3306/inventory'], accepts: 'postgres:// or postgresql://', secret: true },
  EMBEDDED_DATABASE_DIR: { bad: ['.data/\ninventory'], accepts: 'the path of a directory' },
  INVENTORY_SEED_DEMO: { bad: ['yes'], accepts: 'true or false' },
  PAYMENT_GATEWAY_URL: { bad: ['localhost:4010'], accepts: 'http:// or https://', secret: true },
  PAYMENT_TIMEOUT: { bad: ['0', '50ms', '6m'], accepts: 'between 100ms and 5m' },
  BREAKER_FAILURE_THRESHOLD: { bad: ['0', '1001'], accepts: 'between 1 and 1000' },
  BREAKER_HALF_OPEN_AFTER: { bad: ['0', '2h'], accepts: 'between 100ms and 1h' },
  WORKER_MAX_CONCURRENT_ACTIVITIES: { bad: ['0', '10001'], accepts: 'between 1 and 10000' },
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: { bad: ['1', '10001'], accepts: 'between 2 and 10000' },
  WORKER_SHUTDOWN_GRACE: { bad: ['0', '2h'], accepts: 'between 1s and 1h' },
  STARTER_ENABLED: { bad: ['yes'], accepts: 'true or false' },
  STARTER_MAX_IN_FLIGHT: { bad: ['0', '10001'], accepts: 'between 1 and 10000' },
  STARTER_ACK_WAIT: { bad: ['0', '1s', '11m'], accepts: 'between 3s and 10m' },
  STARTER_MAX_ACK_PENDING: { bad: ['-1', '1000001'], accepts: 'between 0 and 1000000' },
  APPROVAL_THRESHOLD: { bad: ['-1', '1000000000001'], accepts: 'between 0 and 1000000000000' },
  APPROVAL_TIMEOUT: { bad: ['0', '31d'], accepts: 'between 1s and 30d' },
  ACTIVITY_TIMEOUT: { bad: ['0', '2h'], accepts: 'between 1s and 1h' },
  RETRY_INITIAL_INTERVAL: { bad: ['0', '10ms', '11m'], accepts: 'between 100ms and 10m' },
  RETRY_MAX_INTERVAL: { bad: ['0', '100ms', '2h'], accepts: 'between 200ms and 1h' },
  STEP_MAX_ATTEMPTS: { bad: ['0', '101'], accepts: 'between 1 and 100' },
  COMPENSATION_MAX_ATTEMPTS: { bad: ['0', '1001'], accepts: 'between 1 and 1000' },
  IDEMPOTENCY_TTL: { bad: ['0', '8d'], accepts: 'between 1s and 7d' },
  OTEL_EXPORTER_OTLP_ENDPOINT: { bad: ['otel-collector:4318'], accepts: 'http:// or https://' },
};

describe('each setting', () => {
  it('when a variable is added to the schema, then it has bad values here', () => {
    expect(Object.keys(BAD_VALUES).sort()).toEqual([...CONFIG_VARIABLES].sort());
  });

  const cases = Object.entries(BAD_VALUES).flatMap(([name, { bad, accepts, secret }]) =>
    bad.map((value) => ({ name, value, accepts, secret: secret ?? false })),
  );
  it.each(cases)(
    'when $name is $value, then it is refused with the range it accepts',
    ({ name, value, accepts, secret }) => {
      const problems = problemsOf({ [name]: value });
      const own = problems.filter((problem) => problem.startsWith(`${name}: `));
      expect(own, `problems: ${JSON.stringify(problems)}`).toHaveLength(1);
      expect(own[0]).toContain(accepts);
      if (secret) {
        expect(problems.join('\n')).not.toContain(value);
        expect(own[0]).toContain('value not shown');
      } else {
        expect(own[0]).toContain(`(got ${JSON.stringify(value)})`);
      }
    },
  );
});

describe('settings that must agree', () => {
  it('when RETRY_MAX_INTERVAL is below RETRY_INITIAL_INTERVAL, then it is refused naming both', () => {
    expect(problemsOf({ RETRY_INITIAL_INTERVAL: '2s', RETRY_MAX_INTERVAL: '1s' })).toEqual([
      expect.stringMatching(/^RETRY_MAX_INTERVAL: expected at least RETRY_INITIAL_INTERVAL \("2s"\).*\(got "1s"\)$/),
    ]);
    // Only the initial interval set: the message says the other is the default.
    expect(problemsOf({ RETRY_INITIAL_INTERVAL: '2m' })).toEqual([
      expect.stringMatching(
        /^RETRY_MAX_INTERVAL: expected at least RETRY_INITIAL_INTERVAL \("2m"\).*\(got "1m", the default\)$/,
      ),
    ]);
    expect(problemsOf({ RETRY_INITIAL_INTERVAL: '1s', RETRY_MAX_INTERVAL: '1s' })).toEqual([]);
  });

  it('when HTTP_HEADERS_TIMEOUT exceeds HTTP_REQUEST_TIMEOUT, then it is refused naming both', () => {
    expect(problemsOf({ HTTP_HEADERS_TIMEOUT: '30s', HTTP_REQUEST_TIMEOUT: '20s' })).toEqual([
      expect.stringMatching(/^HTTP_HEADERS_TIMEOUT: expected at most HTTP_REQUEST_TIMEOUT \("20s"\).*\(got "30s"\)$/),
    ]);
    expect(problemsOf({ HTTP_HEADERS_TIMEOUT: '2s', HTTP_REQUEST_TIMEOUT: '2s' })).toEqual([]);
  });

  it('when ACTIVITY_TIMEOUT leaves no second beyond PAYMENT_TIMEOUT, then it is refused naming both', () => {
    expect(problemsOf({ ACTIVITY_TIMEOUT: '10s' })).toEqual([
      expect.stringMatching(
        /^ACTIVITY_TIMEOUT: expected at least PAYMENT_TIMEOUT \("10s", the default\) \+ 1s.*\(got "10s"\)$/,
      ),
    ]);
    expect(problemsOf({ ACTIVITY_TIMEOUT: '2s', PAYMENT_TIMEOUT: '1s' })).toEqual([]);
  });

  it('when STARTER_MAX_ACK_PENDING is set below STARTER_MAX_IN_FLIGHT, then it is refused naming both', () => {
    expect(problemsOf({ STARTER_MAX_IN_FLIGHT: '64', STARTER_MAX_ACK_PENDING: '10' })).toEqual([
      expect.stringMatching(
        /^STARTER_MAX_ACK_PENDING: expected 0 \(unset\) or at least STARTER_MAX_IN_FLIGHT \("64"\).*\(got "10"\)$/,
      ),
    ]);
    expect(problemsOf({ STARTER_MAX_IN_FLIGHT: '64', STARTER_MAX_ACK_PENDING: '64' })).toEqual([]);
    expect(problemsOf({ STARTER_MAX_ACK_PENDING: '0' })).toEqual([]);
  });
});

describe('accepted settings', () => {
  it('when nothing is set, then the defaults load', () => {
    const config = loadConfig({});
    expect(config.saga).toEqual({
      approvalThreshold: 100_000,
      approvalTimeoutMs: 24 * 3_600_000,
      activityTimeoutMs: 30_000,
      retryInitialIntervalMs: 1_000,
      retryMaxIntervalMs: 60_000,
      stepMaxAttempts: 10,
      compensationMaxAttempts: 20,
    });
    expect(config.starter).toMatchObject({
      enabled: true,
      maxInFlight: 64,
      ackWaitMs: 30_000,
      maxAckPending: 128,
    });
    expect(config.http).toMatchObject({
      port: 8080,
      headersTimeoutMs: 5_000,
      requestTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
    });
    expect(config.payment).toMatchObject({
      timeoutMs: 10_000,
      breakerFailureThreshold: 5,
      breakerHalfOpenAfterMs: 30_000,
    });
    expect(config.idempotencyTtlMs).toBe(24 * 3_600_000);
  });

  it('when the test stacks set their short timings, then they are accepted', () => {
    // The shortest values the process tier, the chaos suite and the ingress tests start the product with.
    const short = {
      ...productEnv({}),
      STARTER_ACK_WAIT: '4s',
      IDEMPOTENCY_TTL: '5s',
      HTTP_HEADERS_TIMEOUT: '2s',
      HTTP_REQUEST_TIMEOUT: '2s',
      BREAKER_HALF_OPEN_AFTER: '1s',
      STEP_MAX_ATTEMPTS: '40',
      COMPENSATION_MAX_ATTEMPTS: '60',
      APPROVAL_THRESHOLD: '100000000',
    };
    expect(problemsOf(short)).toEqual([]);
  });
});

describe('a process started with a setting that breaks every saga', () => {
  let listener: Server | undefined;
  afterEach(() => listener?.close());

  it.each(['workers/main.ts', 'ingress/main.ts'] as const)(
    'when %s starts with RETRY_INITIAL_INTERVAL=0, then it exits 2 naming the variable before connecting to anything',
    async (entry) => {
      // NATS and Temporal both point here: any connection the process makes is counted.
      let connections = 0;
      listener = createServer((socket) => {
        connections += 1;
        socket.destroy();
      });
      await new Promise<void>((resolve) => listener!.listen(0, '127.0.0.1', resolve));
      const { port } = listener.address() as { port: number };
      const started = spawnProductProcess(
        entry,
        productEnv({
          RETRY_INITIAL_INTERVAL: '0',
          TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
          NATS_URL: `nats://127.0.0.1:${port}`,
          // Any free port: a port in use would make the process fail for another reason.
          PORT: '0',
          METRICS_PORT: '0',
        }),
      );
      const code = await new Promise((resolve) => started.child.once('exit', resolve));
      expect(code, started.output()).toBe(2);
      expect(started.output()).toContain(
        'RETRY_INITIAL_INTERVAL: expected a duration between 100ms and 10m (e.g. 500ms, 30s, 15m, 24h) (got "0")',
      );
      expect(connections).toBe(0);
    },
    30_000,
  );
});
