// The configuration's bounds: every variable of the schema refuses a value outside what makes sense
// for it, naming the variable, the value given (secrets withheld) and what it accepts; settings
// valid alone but not together are refused; the defaults load; and a process given a setting that
// would break every saga exits 2 before it connects to anything. The Temporal connection is read as
// the Temporal CLI reads it (variables over a profile of its TOML file), the project's old TLS names
// still work with a warning, and a profile, file or key that cannot serve is refused naming its source.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  CONFIG_VARIABLES,
  ConfigError,
  defaultTemporalConfigFile,
  loadConfig,
  loadConfigOrExit,
  type ConfigVariable,
} from '../../lib/config.js';
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
  TEMPORAL_PROFILE: { bad: ['prod east'], accepts: '1 to 255 characters without spaces' },
  TEMPORAL_CONFIG_FILE: {
    bad: ['[profile.default]\naddress = "x:7233"'],
    accepts: 'the path of a file, not its contents',
  },
  TEMPORAL_API_KEY: { bad: ['key with spaces', 'key\nkey'], accepts: 'printable characters on one line', secret: true },
  TEMPORAL_TASK_QUEUE: { bad: ['orders queue', 'x'.repeat(256)], accepts: '1 to 255 characters without spaces' },
  TEMPORAL_WORKER_VERSIONING: { bad: ['pinned', 'true'], accepts: 'versioned' },
  TEMPORAL_DEPLOYMENT_NAME: {
    bad: ['order saga', 'orders:v2', "order-saga' OR 'x", 'x'.repeat(256)],
    accepts: 'without spaces or colons',
  },
  TEMPORAL_WORKER_BUILD_ID: { bad: ['build 7', 'v1:2', 'v1"2', 'x'.repeat(256)], accepts: 'without spaces or colons' },
  TEMPORAL_WORKER_BECOME_CURRENT: { bad: ['yes', 'first'], accepts: 'if-none' },
  TEMPORAL_TLS: { bad: ['yes', 'on'], accepts: 'true or false' },
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: { bad: [PEM], accepts: 'the path of a file, not its contents' },
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: { bad: ['/etc/temporal/ca.crt'], accepts: 'PEM text starting with -----BEGIN' },
  TEMPORAL_TLS_CLIENT_CERT_PATH: { bad: [PEM], accepts: 'the path of a file, not its contents' },
  TEMPORAL_TLS_CLIENT_CERT_DATA: { bad: ['/etc/temporal/tls.crt'], accepts: 'PEM text starting with -----BEGIN' },
  TEMPORAL_TLS_CLIENT_KEY_PATH: { bad: [PRIVATE_KEY], accepts: 'the path of a file, not its contents', secret: true },
  TEMPORAL_TLS_CLIENT_KEY_DATA: {
    bad: ['/etc/temporal/tls.key'],
    accepts: 'PEM text starting with -----BEGIN',
    secret: true,
  },
  TEMPORAL_TLS_SERVER_NAME: {
    bad: ['https://temporal.example', 'temporal.example:7233'],
    accepts: 'a host name such as temporal.example.com',
  },
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: { bad: ['yes'], accepts: 'true or false' },
  TEMPORAL_TLS_CA: { bad: [PEM], accepts: 'the path of a file, not its contents' },
  TEMPORAL_TLS_CERT: { bad: [PEM], accepts: 'the path of a file, not its contents' },
  TEMPORAL_TLS_KEY: { bad: [PRIVATE_KEY], accepts: 'the path of a file, not its contents', secret: true },
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

describe('the Temporal connection, as the Temporal CLI and SDKs read it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'order-saga-envconfig-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** Writes `text` to a file of the test's folder and returns its path. */
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return path;
  };
  const ca = file('ca.pem', `${PEM}\n`);
  const cert = file('tls.crt', `${PEM}\n`);
  const key = file('tls.key', `${PRIVATE_KEY}\n`);
  const notPem = file('ca.der', 'a DER certificate is binary, not PEM\n');
  const profiles = file(
    'temporal.toml',
    [
      '[profile.staging]',
      'address = "temporal.staging.example:7233"',
      'namespace = "orders-staging"',
      '[profile.staging.tls]',
      `server_ca_cert_path = ${JSON.stringify(ca)}`,
      `client_cert_path = ${JSON.stringify(cert)}`,
      `client_key_path = ${JSON.stringify(key)}`,
      'server_name = "frontend.staging.example"',
      '[profile.cloud]',
      'address = "eu-west-1.aws.api.temporal.io:7233"',
      'namespace = "orders.a1b2c"',
      'api_key = "cloud-key-from-file"',
      '[profile.half-pair.tls]',
      `client_cert_path = ${JSON.stringify(cert)}`,
      '[profile.missing-ca.tls]',
      `server_ca_cert_path = ${JSON.stringify(join(dir, 'no-such-ca.pem'))}`,
      '[profile.not-pem.tls]',
      `server_ca_cert_path = ${JSON.stringify(notPem)}`,
      '[profile.bad-address]',
      'address = "temporal.example"',
      '[profile.key-in-clear]',
      'api_key = "cloud-key-in-clear"',
      '[profile.key-in-clear.tls]',
      'disabled = true',
      '',
    ].join('\n'),
  );
  const withProfile = (profile: string, env: Record<string, string> = {}) => ({
    TEMPORAL_CONFIG_FILE: profiles,
    TEMPORAL_PROFILE: profile,
    ...env,
  });

  it('when nothing is set and there is no config file, then it connects to localhost:7233, namespace default, in plaintext', () => {
    expect(loadConfig({ HOME: join(dir, 'no-home') }).temporal).toMatchObject({
      address: 'localhost:7233',
      namespace: 'default',
      tls: undefined,
      apiKey: undefined,
      profile: undefined,
    });
  });

  it('when TEMPORAL_PROFILE names a profile of TEMPORAL_CONFIG_FILE, then its address, namespace and mutual TLS are used', () => {
    const config = loadConfig(withProfile('staging'));
    expect(config.temporal).toMatchObject({
      address: 'temporal.staging.example:7233',
      namespace: 'orders-staging',
      tls: { serverName: 'frontend.staging.example', ca: { path: ca }, cert: { path: cert }, key: { path: key } },
      profile: { name: 'staging', file: profiles },
    });
    expect(config.warnings).toEqual([]);
  });

  it("when a TEMPORAL_* variable is set beside the profile, then it wins over the profile's setting, as in the CLI", () => {
    const config = loadConfig(
      withProfile('staging', { TEMPORAL_ADDRESS: 'other.example:7233', TEMPORAL_TLS_SERVER_NAME: 'other.example' }),
    );
    expect(config.temporal).toMatchObject({
      address: 'other.example:7233',
      namespace: 'orders-staging',
      tls: { serverName: 'other.example', ca: { path: ca } },
    });
  });

  it('when TEMPORAL_CONFIG_FILE is unset, then the profile "default" of the CLI\'s own file is read', () => {
    const configHome = join(dir, 'xdg');
    file('xdg/temporalio/temporal.toml', '[profile.default]\naddress = "from-cli-default.example:7233"\n');
    expect(defaultTemporalConfigFile({ XDG_CONFIG_HOME: configHome })).toBe(
      join(configHome, 'temporalio', 'temporal.toml'),
    );
    expect(loadConfig({ XDG_CONFIG_HOME: configHome }).temporal).toMatchObject({
      address: 'from-cli-default.example:7233',
      profile: { name: 'default', file: join(configHome, 'temporalio', 'temporal.toml') },
    });
  });

  it('when an API key is set, by variable or in a profile, then it is kept and TLS is on with the system CAs', () => {
    expect(loadConfig({ TEMPORAL_API_KEY: 'cloud-key' }).temporal).toMatchObject({ apiKey: 'cloud-key', tls: {} });
    expect(loadConfig(withProfile('cloud')).temporal).toMatchObject({
      address: 'eu-west-1.aws.api.temporal.io:7233',
      namespace: 'orders.a1b2c',
      apiKey: 'cloud-key-from-file',
      tls: {},
    });
    // An API key beside mutual TLS is accepted (a Cloud namespace may take either).
    expect(
      problemsOf({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS_CLIENT_CERT_PATH: cert, TEMPORAL_TLS_CLIENT_KEY_PATH: key }),
    ).toEqual([]);
  });

  it('when the PEM itself is given (TEMPORAL_TLS_*_DATA), then it is used as given', () => {
    expect(loadConfig({ TEMPORAL_TLS_SERVER_CA_CERT_DATA: PEM }).temporal.tls).toEqual({ ca: { pem: PEM } });
  });

  it('when TEMPORAL_TLS_CA, _CERT and _KEY are set, then they still work, each with a warning naming its replacement', () => {
    const config = loadConfig({ TEMPORAL_TLS_CA: ca, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key });
    expect(config.temporal.tls).toEqual({ ca: { path: ca }, cert: { path: cert }, key: { path: key } });
    expect(config.warnings).toEqual([
      expect.stringMatching(/^TEMPORAL_TLS_CA is deprecated .*: set TEMPORAL_TLS_SERVER_CA_CERT_PATH instead/),
      expect.stringMatching(/^TEMPORAL_TLS_CERT is deprecated .*: set TEMPORAL_TLS_CLIENT_CERT_PATH instead/),
      expect.stringMatching(/^TEMPORAL_TLS_KEY is deprecated .*: set TEMPORAL_TLS_CLIENT_KEY_PATH instead/),
    ]);
    // Beside the new name (as where the Temporal Worker Controller sets it), the new name wins and the old is called ignored.
    const both = loadConfig({
      TEMPORAL_TLS_CERT: '/elsewhere/tls.crt',
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      TEMPORAL_TLS_KEY: key,
    });
    expect(both.temporal.tls).toMatchObject({ cert: { path: cert }, key: { path: key } });
    expect(both.warnings[0]).toMatch(
      /^TEMPORAL_TLS_CERT is deprecated and ignored: TEMPORAL_TLS_CLIENT_CERT_PATH is set too/,
    );
    // And the messages name the variable the operator set.
    expect(problemsOf({ TEMPORAL_TLS_CERT: cert })).toEqual([
      'TEMPORAL_TLS_CLIENT_KEY_PATH: required with TEMPORAL_TLS_CERT (set both or neither)',
    ]);
  });

  it('when the process starts, then loadConfigOrExit prints each deprecation warning once on stderr', () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      loadConfigOrExit({ TEMPORAL_TLS_CA: ca });
    } finally {
      spy.mockRestore();
    }
    expect(written).toEqual([
      'warning: TEMPORAL_TLS_CA is deprecated and will be removed in the next release: set TEMPORAL_TLS_SERVER_CA_CERT_PATH instead (the name the Temporal CLI and SDKs read)\n',
    ]);
  });

  const refusals: [string, Record<string, string>, RegExp][] = [
    [
      'a profile the file does not have',
      withProfile('production'),
      /^TEMPORAL_PROFILE: no profile "production" in .*temporal\.toml \(its profiles: staging, cloud, half-pair, .*\); set TEMPORAL_PROFILE to one of them/,
    ],
    [
      'a profile with no config file to read it from',
      { TEMPORAL_PROFILE: 'staging', HOME: join(dir, 'no-home') },
      /^TEMPORAL_PROFILE: profile "staging" is read from the Temporal CLI's config file, and there is none at .*no-home\/\.config\/temporalio\/temporal\.toml; set TEMPORAL_CONFIG_FILE/,
    ],
    [
      'a config file that is not there',
      { TEMPORAL_CONFIG_FILE: join(dir, 'nowhere.toml') },
      /^TEMPORAL_CONFIG_FILE \(.*nowhere\.toml\): cannot read it \(ENOENT\)/,
    ],
    [
      'a config file that is not TOML',
      { TEMPORAL_CONFIG_FILE: file('broken.toml', '[profile.default\naddress = 1\n') },
      /^TEMPORAL_CONFIG_FILE \(.*broken\.toml\): not valid TOML at line 1, column \d+/,
    ],
    [
      "a profile's address that is not host:port",
      withProfile('bad-address'),
      /^TEMPORAL_CONFIG_FILE \(.*\) profile "bad-address" address: expected host:port .*\(got "temporal\.example"\)$/,
    ],
    [
      'a certificate path nobody can read',
      { TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'no-such-ca.pem') },
      /^TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read .*no-such-ca\.pem \(ENOENT\); mount the file there or fix the path$/,
    ],
    [
      "a profile's certificate path nobody can read",
      withProfile('missing-ca'),
      /^TEMPORAL_CONFIG_FILE \(.*\) profile "missing-ca" tls\.server_ca_cert_path: cannot read .*no-such-ca\.pem \(ENOENT\)/,
    ],
    [
      'a directory for a certificate',
      { TEMPORAL_TLS_CLIENT_CERT_PATH: dir, TEMPORAL_TLS_CLIENT_KEY_PATH: key },
      /^TEMPORAL_TLS_CLIENT_CERT_PATH: .* is a directory; give the PEM file in it$/,
    ],
    [
      'a file that is not PEM',
      withProfile('not-pem'),
      /^TEMPORAL_CONFIG_FILE \(.*\) profile "not-pem" tls\.server_ca_cert_path: .*ca\.der is not PEM/,
    ],
    [
      'a client certificate without its key, from a profile',
      withProfile('half-pair'),
      /^TEMPORAL_TLS_CLIENT_KEY_PATH: required with TEMPORAL_CONFIG_FILE \(.*\) profile "half-pair" tls\.client_cert_path \(set both or neither\)$/,
    ],
    [
      'both the path and the PEM of one certificate',
      { TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca, TEMPORAL_TLS_SERVER_CA_CERT_DATA: PEM },
      /^TEMPORAL_TLS_SERVER_CA_CERT_PATH: set it or TEMPORAL_TLS_SERVER_CA_CERT_DATA, not both$/,
    ],
    [
      'an API key with TLS turned off',
      { TEMPORAL_API_KEY: 'cloud-key', TEMPORAL_TLS: 'false' },
      /^TEMPORAL_API_KEY: needs TLS, and TEMPORAL_TLS=false turns TLS off: the key would cross the network in clear/,
    ],
    [
      'an API key with TLS turned off in its profile',
      withProfile('key-in-clear'),
      /^TEMPORAL_CONFIG_FILE \(.*\) profile "key-in-clear" api_key: needs TLS, and .* tls\.disabled = true turns TLS off/,
    ],
    [
      'an API key beside an authorization header of its own',
      { TEMPORAL_API_KEY: 'cloud-key', TEMPORAL_GRPC_META_AUTHORIZATION: 'Bearer other' },
      /^TEMPORAL_API_KEY: sent as the authorization header, which TEMPORAL_GRPC_META_AUTHORIZATION sets too; keep one of them$/,
    ],
    [
      'TLS turned off beside TLS files',
      { TEMPORAL_TLS: 'false', TEMPORAL_TLS_CA: ca },
      /^TEMPORAL_TLS: false turns off the TLS settings set beside it \(TEMPORAL_TLS_CA\); unset one or the other$/,
    ],
    [
      'host verification turned off',
      { TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' },
      /^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: the Temporal SDK always checks the server's certificate; set TEMPORAL_TLS_SERVER_NAME/,
    ],
    [
      'a gRPC header that is not one line',
      { TEMPORAL_GRPC_META_X_TEAM: 'orders\nops' },
      /^TEMPORAL_GRPC_META_X_TEAM: expected a header value of printable characters on one line \(value not shown\)$/,
    ],
  ];
  it.each(refusals)(
    'when given %s, then it is refused naming where the value came from and what to do',
    (_, env, message) => {
      const problems = problemsOf(env);
      expect(problems, JSON.stringify(problems)).toEqual([expect.stringMatching(message)]);
      // No message repeats a key.
      for (const secret of ['cloud-key', 'cloud-key-in-clear']) expect(problems[0]).not.toContain(`${secret}"`);
    },
  );

  it('when the profile sets gRPC headers and a variable adds one, then both are sent', () => {
    const headers = file('headers.toml', '[profile.default.grpc_meta]\nx-team = "orders"\n');
    expect(
      loadConfig({ TEMPORAL_CONFIG_FILE: headers, TEMPORAL_GRPC_META_X_ENV: 'staging' }).temporal.grpcMeta,
    ).toEqual({ 'x-team': 'orders', 'x-env': 'staging' });
  });
});
