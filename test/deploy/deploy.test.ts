// Deployment artefacts, validated offline (no cluster, no Docker engine here): the Helm chart
// is linted and rendered with the pinned helm, every rendered object is validated against the
// Kubernetes (and KEDA / Prometheus Operator / Temporal Worker Controller) schemas, bad values are
// refused, and the environment the chart and docker-compose.yml give the processes is valid
// configuration.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ConfigMap, Namespace, PodTemplateSpec, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { ensureTool } from '../../scripts/toolchain.mjs';
import { renderManifests } from '../../scripts/render-manifests.mjs';
import { TEMPORAL_DYNAMIC_CONFIG } from '../../scripts/local-servers.mjs';
import { loadConfig } from '../../lib/config.js';
import { makeCertificates } from '../support/certificates.js';
import { startTlsGateway } from '../support/tls-gateway.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = `${ROOT}deploy/helm/order-saga`;
const PRODUCTION_VALUES = `${CHART}/ci/production-values.yaml`;

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; [key: string]: unknown };

/**
 * A Temporal Worker Controller resource checked against the JSON Schema written from its CRD
 * (test/deploy/schemas/, which names the CRD files and commits it follows) and, for the
 * WorkerDeployment, its pod template against Kubernetes' PodTemplateSpec, which the CRD embeds.
 * One schema serves both names of a kind: controller v1.7 renamed TemporalWorkerDeployment and
 * TemporalConnection to WorkerDeployment and Connection with the same fields.
 */
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
function crdModel(schemaFile: string, podTemplateOf?: (manifest: any) => unknown) {
  const schema = JSON.parse(readFileSync(`${ROOT}test/deploy/schemas/${schemaFile}`, 'utf8')) as object;
  const matchesCrd = ajv.compile(schema);
  return class {
    constructor(private readonly manifest: Manifest) {}
    validate(): void {
      if (!matchesCrd(this.manifest)) throw new Error(`${schemaFile}: ${ajv.errorsText(matchesCrd.errors)}`);
      if (podTemplateOf) new PodTemplateSpec(podTemplateOf(this.manifest) as never).validate();
    }
  };
}
const WorkerDeployment = crdModel('workerdeployment.schema.json', (wd) => wd.spec?.template);
const Connection = crdModel('connection.schema.json');

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Namespace': Namespace,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
  'temporal.io/v1alpha1/WorkerDeployment': WorkerDeployment, // controller v1.7 and later
  'temporal.io/v1alpha1/Connection': Connection,
  'temporal.io/v1alpha1/TemporalWorkerDeployment': WorkerDeployment, // controller v1.6 and earlier
  'temporal.io/v1alpha1/TemporalConnection': Connection,
};

let helm: string;
beforeAll(async () => {
  helm = await ensureTool('helm');
});

async function helmRun(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await exec(helm, args, { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout + failed.stderr };
  }
}

async function render(...extra: string[]): Promise<Manifest[]> {
  const { code, out } = await helmRun('template', 'order-saga', CHART, '--namespace', 'orders', ...extra);
  expect(code, out).toBe(0);
  return parseAllDocuments(out)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

function validateAll(manifests: Manifest[]): void {
  for (const manifest of manifests) {
    const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
    expect(Model, `no schema for ${manifest.apiVersion} ${manifest.kind}`).toBeDefined();
    expect(() => new Model!(manifest as never).validate(), `${manifest.kind} ${manifest.metadata.name}`).not.toThrow();
  }
}

const find = (manifests: Manifest[], kind: string, nameEnd: string) =>
  manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(nameEnd)) as any;

/** The worker's pod template: the (Temporal)WorkerDeployment's (versioning mode controller) or the plain Deployment's. */
const workerPod = (manifests: Manifest[]) =>
  (
    find(manifests, 'WorkerDeployment', '-worker') ??
    find(manifests, 'TemporalWorkerDeployment', '-worker') ??
    find(manifests, 'Deployment', '-worker')
  ).spec.template;
const UNVERSIONED = ['--set', 'worker.versioning.mode=unversioned'];
/** The kinds each worker.versioning.controllerApi renders (values.yaml), the default first. */
const CONTROLLER_LINES = [
  { controllerApi: 'v1.7', workerDeployment: 'WorkerDeployment', connection: 'Connection' },
  { controllerApi: 'v1.6', workerDeployment: 'TemporalWorkerDeployment', connection: 'TemporalConnection' },
] as const;
const controllerApi = (line: string) => ['--set', `worker.versioning.controllerApi=${line}`];

/** The variables a container's env sets to a value (not those taken from Secrets). */
const plainEnv = (container: { env?: { name: string; value?: string }[] }) =>
  Object.fromEntries((container.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])));

// What the Temporal Worker Controller adds to each container and pod of a build
// (internal/k8s/deployments.go; the same names before and after the v1.7 rename): a template
// that sets them too would give the pod two values.
const CONTROLLER_ENV = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_DEPLOYMENT_NAME',
  'TEMPORAL_WORKER_BUILD_ID',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
];
const CONTROLLER_VOLUME = 'temporal-tls';

describe('Helm chart', () => {
  it('passes helm lint --strict with its defaults and with production-like values', async () => {
    for (const args of [[], ['-f', PRODUCTION_VALUES]]) {
      const { code, out } = await helmRun('lint', '--strict', CHART, ...args);
      expect(code, out).toBe(0);
      expect(out).toContain('0 chart(s) failed');
    }
  });

  it('renders its defaults into objects that the Kubernetes schemas and the Temporal Worker Controller CRDs accept', async () => {
    const manifests = await render();
    validateAll(manifests);
    expect(manifests.map((m) => m.kind).sort()).toEqual(
      [
        'ConfigMap',
        'ConfigMap',
        'CronJob',
        'Deployment', // the ingress; the worker is the WorkerDeployment
        'WorkerDeployment',
        'Connection',
        'Job',
        'NetworkPolicy',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'PodDisruptionBudget',
        'Service',
        'Service',
        'Service',
        'Service',
        'ServiceAccount',
      ].sort(),
    );
  });

  it('deploys the worker by default through the Temporal Worker Controller: a progressive rollout, a sunset, the connection from the Temporal settings, a versioned worker that never makes its build current', async () => {
    const manifests = await render();
    const twd = find(manifests, 'WorkerDeployment', '-worker');
    const connection = find(manifests, 'Connection', '-temporal');
    expect(find(manifests, 'Deployment', '-worker')).toBeUndefined();
    expect(twd.spec).toMatchObject({
      replicas: 2,
      workerOptions: { connectionRef: { name: connection.metadata.name }, temporalNamespace: 'default' },
      rollout: {
        strategy: 'Progressive',
        steps: [
          { rampPercentage: 10, pauseDuration: '5m' },
          { rampPercentage: 50, pauseDuration: '10m' },
        ],
      },
      sunset: { scaledownDelay: '1h', deleteDelay: '24h' },
    });
    expect(twd.spec.rollout.gate).toBeUndefined();
    expect(connection.spec).toEqual({ hostPort: 'temporal-frontend.temporal.svc:7233' });
    // The pod keeps the labels the PodDisruptionBudget, the NetworkPolicy and the metrics Service select.
    const pod = workerPod(manifests);
    for (const [kind, nameEnd, selectorOf] of [
      ['PodDisruptionBudget', '-worker', (m: any) => m.spec.selector.matchLabels],
      ['NetworkPolicy', '-worker', (m: any) => m.spec.podSelector.matchLabels],
      ['Service', '-worker-metrics', (m: any) => m.spec.selector],
    ] as const)
      expect(pod.metadata.labels, kind).toMatchObject(selectorOf(find(manifests, kind, nameEnd)));
    const container = pod.spec.containers[0];
    expect(plainEnv(container)).toEqual({
      TEMPORAL_WORKER_VERSIONING: 'versioned',
      TEMPORAL_WORKER_BECOME_CURRENT: 'never',
    });
    // Nothing the controller adds to a build's pods is set twice.
    for (const name of CONTROLLER_ENV) expect(container.env.map((e: { name: string }) => e.name)).not.toContain(name);
    const withTls = workerPod(await render('-f', PRODUCTION_VALUES)).spec;
    expect(withTls.volumes.map((v: { name: string }) => v.name)).not.toContain(CONTROLLER_VOLUME);
  });

  it('renders the kinds of the controller line worker.versioning.controllerApi names, with the same fields and pod in each', async () => {
    const specs: unknown[] = [];
    for (const line of CONTROLLER_LINES) {
      for (const values of [[], ['-f', PRODUCTION_VALUES]]) {
        const manifests = await render(...values, ...controllerApi(line.controllerApi));
        validateAll(manifests);
        const workerDeployment = find(manifests, line.workerDeployment, '-worker');
        const connection = find(manifests, line.connection, '-temporal');
        // Only this line's kinds: the other line's controller would refuse or ignore them.
        const other = CONTROLLER_LINES.find((l) => l !== line)!;
        const kinds = manifests.map((m) => m.kind);
        expect(kinds, line.controllerApi).not.toContain(other.workerDeployment);
        expect(kinds, line.controllerApi).not.toContain(other.connection);
        for (const resource of [workerDeployment, connection]) expect(resource.apiVersion).toBe('temporal.io/v1alpha1');
        expect(workerDeployment.spec.workerOptions.connectionRef).toEqual({ name: connection.metadata.name });
        specs.push({
          values,
          names: [workerDeployment.metadata.name, connection.metadata.name],
          workerDeployment: workerDeployment.spec,
          connection: connection.spec,
        });
      }
    }
    // Both lines get the same objects but for the kind, under the same names (the controller's
    // migration from the old kinds to the new ones takes over the objects of the same name).
    const [v17, v17Production, v16, v16Production] = specs;
    expect(v16).toEqual(v17);
    expect(v16Production).toEqual(v17Production);
  });

  it('checks the Temporal Worker Controller resources against their CRDs: what the controller refuses, the checks refuse', async () => {
    const broken = (manifest: any, change: (copy: any) => void) => {
      const copy = structuredClone(manifest);
      change(copy);
      return copy;
    };
    for (const line of CONTROLLER_LINES) {
      const manifests = await render('-f', PRODUCTION_VALUES, ...controllerApi(line.controllerApi));
      const workerDeployment = find(manifests, line.workerDeployment, '-worker');
      const connection = find(manifests, line.connection, '-temporal');
      expect(() => new WorkerDeployment(workerDeployment).validate()).not.toThrow();
      expect(() => new Connection(connection).validate()).not.toThrow();
      for (const [what, manifest] of [
        ['a ramp of 100', broken(workerDeployment, (m) => (m.spec.rollout.steps[0].rampPercentage = 100))],
        ['an unknown strategy', broken(workerDeployment, (m) => (m.spec.rollout.strategy = 'Canary'))],
        ['no Temporal namespace', broken(workerDeployment, (m) => delete m.spec.workerOptions.temporalNamespace)],
        ['no sunset', broken(workerDeployment, (m) => delete m.spec.sunset)],
        ['a misspelt field', broken(workerDeployment, (m) => (m.spec.sunset.scaleDownDelay = '1h'))],
        ['an unknown kind', broken(workerDeployment, (m) => (m.kind = 'TemporalWorker'))],
        ['a container without a name', broken(workerDeployment, (m) => delete m.spec.template.spec.containers[0].name)],
        [
          'a probe port of the wrong type',
          broken(workerDeployment, (m) => (m.spec.template.spec.containers[0].readinessProbe.periodSeconds = '5')),
        ],
      ] as const)
        expect(() => new WorkerDeployment(manifest).validate(), `${line.workerDeployment}: ${what}`).toThrow();
      expect(() =>
        new Connection(
          broken(connection, (m) => (m.spec.apiKeySecretRef = { name: 'temporal-api-key', key: 'key' })),
        ).validate(),
      ).toThrow();
      expect(() => new Connection(broken(connection, (m) => (m.spec.hostPort = 'temporal'))).validate()).toThrow();
    }
    // What only the WorkerDeployment CRD (controller v1.7) refuses; the TemporalWorkerDeployment CRD
    // the schema follows took a rollback, and none of these rules.
    const [v17, v16] = await Promise.all(
      CONTROLLER_LINES.map(async (line) =>
        find(await render(...controllerApi(line.controllerApi)), line.workerDeployment, '-worker'),
      ),
    );
    const rollback = (m: any) => (m.spec.rollback = { strategy: 'AllAtOnce' });
    const longName = (m: any) => (m.metadata.name = 'w'.repeat(64));
    const manySteps = (m: any) =>
      (m.spec.rollout.steps = Array.from({ length: 21 }, (_, i) => ({ rampPercentage: i + 1, pauseDuration: '1m' })));
    const noSteps = (m: any) => delete m.spec.rollout.steps;
    const bothInputs = (m: any) =>
      (m.spec.rollout.gate = {
        workflowType: 'gate',
        inputFrom: { configMapKeyRef: { name: 'a', key: 'k' }, secretKeyRef: { name: 'b', key: 'k' } },
      });
    for (const [what, change] of [
      ['a rollback', rollback],
      ['a name longer than 63 characters', longName],
      ['21 rollout steps', manySteps],
      ['a Progressive rollout without steps', noSteps],
      ['a gate input from a ConfigMap and a Secret', bothInputs],
    ] as const) {
      expect(() => new WorkerDeployment(broken(v17, change)).validate(), `WorkerDeployment: ${what}`).toThrow();
      expect(
        () => new WorkerDeployment(broken(v16, change)).validate(),
        `TemporalWorkerDeployment: ${what}`,
      ).not.toThrow();
    }
  });

  it('keeps the plain rolling Deployment of an unversioned worker in versioning mode unversioned', async () => {
    const manifests = await render(...UNVERSIONED);
    validateAll(manifests);
    const kinds = manifests.map((m) => m.kind);
    for (const line of CONTROLLER_LINES) {
      expect(kinds).not.toContain(line.workerDeployment);
      expect(kinds).not.toContain(line.connection);
    }
    const deployment = find(manifests, 'Deployment', '-worker');
    expect(deployment.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
    expect(plainEnv(deployment.spec.template.spec.containers[0])).toEqual({
      TEMPORAL_WORKER_VERSIONING: 'unversioned',
    });
    // Apart from that variable, the pod is the one the controller would run.
    const versioned = workerPod(await render());
    const withoutVersioning = (pod: any) => {
      const copy = structuredClone(pod);
      copy.spec.containers[0].env = copy.spec.containers[0].env.filter(
        (e: { name: string }) => e.name === 'DATABASE_URL',
      );
      delete copy.metadata.annotations['checksum/config'];
      return copy;
    };
    expect(withoutVersioning(deployment.spec.template)).toEqual(withoutVersioning(versioned));
  });

  it('renders production-like values (Temporal Worker Controller, ServiceMonitor, HPA, own Secret) into valid objects', async () => {
    const manifests = await render('-f', PRODUCTION_VALUES);
    validateAll(manifests);
    const kinds = new Set(manifests.map((m) => m.kind));
    for (const kind of [
      'WorkerDeployment',
      'Connection',
      'ServiceMonitor',
      'PrometheusRule',
      'HorizontalPodAutoscaler',
      'Secret',
    ])
      expect(kinds).toContain(kind);
    // The controller reaches Temporal with the workers' client certificate.
    expect(find(manifests, 'Connection', '-temporal').spec).toEqual({
      hostPort: 'temporal-frontend.temporal.svc.cluster.local:7233',
      mutualTLSSecretRef: { name: 'order-saga-temporal-client-tls' },
    });
    expect(find(manifests, 'WorkerDeployment', '-worker').spec).toMatchObject({
      replicas: 4,
      workerOptions: { temporalNamespace: 'orders-prod' },
      rollout: { strategy: 'Progressive' },
      sunset: { scaledownDelay: '2h', deleteDelay: '48h' },
    });
    // Metrics say which build each worker runs.
    expect(find(manifests, 'ServiceMonitor', '').spec.podTargetLabels).toEqual(['temporal.io/build-id']);
    // The alerts link to the runbook set in the values; the dashboard ConfigMap carries the sidecar's label.
    const rule = find(manifests, 'PrometheusRule', '').spec.groups[0].rules[0];
    expect(rule.annotations.runbook_url).toMatch(/^https:\/\/wiki\.internal\.example\/order-saga\/runbook#/);
    const dashboard = find(manifests, 'ConfigMap', '-dashboard');
    expect(dashboard.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(dashboard.data['order-saga.json']).uid).toBe('order-saga');
  });

  it('scales an unversioned worker with KEDA on the task-queue backlog', async () => {
    const manifests = await render('-f', PRODUCTION_VALUES, ...UNVERSIONED, '--set', 'worker.keda.enabled=true');
    validateAll(manifests);
    const scaledObject = find(manifests, 'ScaledObject', '-worker');
    expect(scaledObject.spec.scaleTargetRef.name).toBe(find(manifests, 'Deployment', '-worker').metadata.name);
    expect(scaledObject.spec.triggers[0]).toMatchObject({
      type: 'temporal',
      metadata: { taskQueue: 'orders', namespace: 'orders-prod' },
    });
    expect(find(manifests, 'Deployment', '-worker').spec.replicas).toBeUndefined(); // KEDA owns the replica count
    expect(find(manifests, 'ServiceMonitor', '').spec.podTargetLabels).toBeUndefined();
  });

  it('exposes only the API through the ingress Service; metrics and the codec server have Services of their own; credentials come from Secrets', async () => {
    const manifests = await render('-f', PRODUCTION_VALUES);
    const ports = (nameEnd: string) =>
      find(manifests, 'Service', nameEnd).spec.ports.map((p: { targetPort: string }) => p.targetPort);
    expect(ports('-ingress')).toEqual(['http']);
    expect(ports('-ingress-metrics')).toEqual(['metrics']);
    expect(ports('-codec')).toEqual(['codec']);
    expect(find(manifests, 'ServiceMonitor', '').spec.endpoints.map((e: { port: string }) => e.port)).toEqual([
      'metrics',
    ]);
    const ingress = find(manifests, 'Deployment', '-ingress').spec.template.spec.containers[0];
    expect(ingress.readinessProbe.httpGet.port).toBe('metrics');
    const secrets = (container: { envFrom: { secretRef?: { name: string } }[] }) =>
      container.envFrom.flatMap((source) => (source.secretRef ? [source.secretRef.name] : []));
    expect(secrets(ingress)).toEqual(['order-saga-payload-keys', 'order-saga-nats-credentials', 'order-saga-api-keys']);
    const worker = workerPod(manifests).spec.containers[0];
    expect(secrets(worker)).toEqual(['order-saga-payload-keys', 'order-saga-nats-credentials']); // no API keys
    expect(worker.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toEqual([
      '/tmp',
      '/etc/order-saga/temporal-tls',
      '/etc/order-saga/nats-tls',
    ]);
    // The ConfigMap plus the Secrets' variables is a configuration the ingress starts with.
    const env = {
      ...find(manifests, 'ConfigMap', 'order-saga').data,
      PAYLOAD_ENCRYPTION_KEYS: `k1=${Buffer.alloc(32).toString('base64')}`,
      NATS_USER: 'order-saga',
      NATS_PASSWORD: 'secret',
    };
    // The files are the pod's mounts, not on this machine: their names are checked, not their contents.
    const config = loadConfig(env, { ingress: true, checkFiles: false });
    expect(config.auth.jwt?.audience).toBe('order-saga-api');
    expect(config.temporal.tls).toMatchObject({ ca: { path: '/etc/order-saga/temporal-tls/ca.crt' } });
    expect(config.warnings).toEqual([]); // the Temporal CLI's names, no deprecated ones
    expect(config.nats.tls).toMatchObject({ cert: '/etc/order-saga/nats-tls/tls.crt' });
  });

  it('gives the worker probes, a non-root read-only container and a termination grace longer than its shutdown grace', async () => {
    const manifests = await render();
    const worker = workerPod(manifests).spec;
    const container = worker.containers[0];
    expect(container.livenessProbe.httpGet.path).toBe('/health');
    expect(container.readinessProbe.httpGet.path).toBe('/ready');
    expect(worker.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const config = find(manifests, 'ConfigMap', 'order-saga').data;
    expect(worker.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      loadConfig(config).worker.shutdownGraceMs + 5_000,
    );
  });

  it('runs the reconciliation as a CronJob that fails on a mismatch and reads what the workers read', async () => {
    const manifests = await render('-f', PRODUCTION_VALUES);
    const cronJob = find(manifests, 'CronJob', '-reconcile').spec;
    const job = cronJob.jobTemplate.spec;
    const container = job.template.spec.containers[0];
    expect(container.args).toEqual(['dist/ops/reconcile.js', '--since', '3h', '--settle', '30m']);
    // A failed run is the finding: not retried, kept, never two at once.
    expect(job.backoffLimit).toBe(0);
    expect(job.template.spec.restartPolicy).toBe('Never');
    expect(cronJob.concurrencyPolicy).toBe('Forbid');
    // The same configuration, payload keys, NATS credentials and TLS mounts as the worker; no database.
    const worker = workerPod(manifests).spec.containers[0];
    expect(container.envFrom).toEqual(worker.envFrom);
    expect(container.volumeMounts).toEqual(worker.volumeMounts);
    expect(container.env).toBeUndefined();
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true });
    const disabled = await render('--set', 'reconcile.enabled=false');
    expect(disabled.filter((m) => m.kind === 'CronJob')).toEqual([]);
  });

  it('registers the search attributes through mutual TLS: the Job, run as rendered against a Temporal that demands a client certificate and names its server, presents the Secret of the workers or one of its own', async () => {
    // The frontend's certificate names only a host the address does not: the Job must ask for it.
    const certificates = await makeCertificates({ serverNames: ['frontend.temporal.test'] });
    const gateway = await startTlsGateway(inject('temporalAddress'), certificates);
    const secretDir = mkdtempSync(join(tmpdir(), 'order-saga-job-tls-'));
    try {
      const namespace = `job-tls-${randomBytes(4).toString('hex')}`;
      const manifests = await render(
        ...['--set', `temporal.address=${gateway.address}`, '--set', `temporal.namespace=${namespace}`],
        ...['--set', 'temporal.tls.enabled=true', '--set', 'temporal.tls.secret=order-saga-temporal-client-tls'],
        ...['--set', 'temporal.tls.serverName=frontend.temporal.test'],
      );
      const pod = find(manifests, 'Job', '-search-attributes').spec.template.spec;
      const container = pod.containers[0];
      // The Secret's keys as a cert-manager Certificate writes them, in a folder standing for its mount.
      const volume = pod.volumes.find((v: { secret?: { secretName: string } }) => v.secret);
      expect(volume.secret.secretName).toBe('order-saga-temporal-client-tls');
      const mount = container.volumeMounts.find((m: { name: string }) => m.name === volume.name);
      copyFileSync(certificates.ca, join(secretDir, 'ca.crt'));
      copyFileSync(certificates.clientCert, join(secretDir, 'tls.crt'));
      copyFileSync(certificates.clientKey, join(secretDir, 'tls.key'));
      const env = Object.fromEntries(
        Object.entries(plainEnv(container)).map(([name, value]) => [name, value.replace(mount.mountPath, secretDir)]),
      );
      const script = find(manifests, 'ConfigMap', '-search-attributes').data['register-search-attributes.sh'];
      const scriptFile = join(secretDir, 'register.sh');
      writeFileSync(scriptFile, script);
      const { stdout } = await exec('sh', [scriptFile], {
        env: { PATH: `${dirname(inject('temporalBinary'))}:${process.env.PATH ?? ''}`, HOME: secretDir, ...env },
        timeout: 120_000, // refused, the script would wait for Temporal longer than the test
      });
      expect(stdout).toContain('registered search attribute OrderStatus');
      expect(gateway.accepted()).toBeGreaterThan(0);
      expect(gateway.refusals).toEqual([]);
      const { stdout: listed } = await exec(inject('temporalBinary'), [
        ...['operator', 'search-attribute', 'list', '--namespace', namespace],
        ...['--address', inject('temporalAddress')],
      ]);
      for (const name of ['OrderStatus', 'CustomerId', 'OrderTotal', 'OrderUpdatedAt']) expect(listed).toContain(name);

      // A certificate of its own for the Job (allowed to manage the namespace), the workers keeping theirs.
      const withAdminCertificate = await render(
        ...['--set', 'temporal.tls.enabled=true', '--set', 'temporal.tls.secret=order-saga-temporal-client-tls'],
        ...['--set', 'searchAttributesJob.tlsSecret=order-saga-temporal-admin-tls'],
      );
      const secretsOf = (spec: { volumes?: { secret?: { secretName: string } }[] }) =>
        (spec.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []));
      expect(secretsOf(find(withAdminCertificate, 'Job', '-search-attributes').spec.template.spec)).toEqual([
        'order-saga-temporal-admin-tls',
      ]);
      expect(secretsOf(workerPod(withAdminCertificate).spec)).toContain('order-saga-temporal-client-tls');
    } finally {
      await gateway.close();
      rmSync(secretDir, { recursive: true, force: true });
      rmSync(certificates.dir, { recursive: true, force: true });
    }
  }, 150_000);

  it('gives the processes an environment the service accepts as configuration', async () => {
    for (const [args, podsPerBuild, builds] of [
      [[], 2, 2], // a rollout runs two builds' pods side by side
      [UNVERSIONED, 2, 1],
      [['-f', PRODUCTION_VALUES], 4, 2],
    ] as const) {
      const manifests = await render(...args);
      const controller = builds === 2;
      const env: Record<string, string> = {
        ...find(manifests, 'ConfigMap', 'order-saga').data,
        ...plainEnv(workerPod(manifests).spec.containers[0]),
        DATABASE_URL: 'postgres://u:p@db:5432/inventory',
        // What the Temporal Worker Controller sets in the pods of a build (e.g. of the image tag 0.1.0).
        ...(controller && {
          TEMPORAL_DEPLOYMENT_NAME: 'orders/order-saga-worker',
          TEMPORAL_WORKER_BUILD_ID: '0.1.0-7c9f5d',
        }),
      };
      // The TLS files are the pods' mounts, not on this machine: their names are checked, not their contents.
      const config = loadConfig(env, { checkFiles: false });
      expect(config.warnings).toEqual([]); // no deprecated variable in what the chart sets
      expect(config.versioning).toEqual(
        controller
          ? {
              mode: 'versioned',
              deploymentName: 'orders/order-saga-worker',
              buildId: '0.1.0-7c9f5d',
              becomeCurrent: 'never',
            }
          : { mode: 'unversioned' },
      );
      expect(config.temporal.taskQueue).toBe('orders');
      expect(config.worker.shutdownGraceMs).toBeGreaterThan(0);
      // A production NATS is a 3-node cluster: every stream and the idempotency bucket get 3 copies.
      expect(config.nats.streamReplicas).toBe(3);
      // Every stream gets a byte limit and an age from the chart: the service's defaults unless set.
      expect(config.nats.streams).toEqual(loadConfig({}).nats.streams);
      // The shared consumer leaves room for every worker the chart may run (2 × in-flight each).
      expect(config.starter.maxAckPending).toBe(2 * config.starter.maxInFlight * podsPerBuild * builds);
    }
  });

  it('refuses more stream replicas than a JetStream cluster allows', async () => {
    const { code, out } = await helmRun('template', 'order-saga', CHART, '--set', 'nats.streamReplicas=7');
    expect(code).not.toBe(0);
    expect(out).toContain('/nats/streamReplicas');
  });

  /** Values setting the rollout's steps (helm's --set of one list element would drop the others). */
  const steps = (...list: [number, string][]) => [
    '--set-json',
    `worker.versioning.rollout.steps=${JSON.stringify(list.map(([rampPercentage, pauseDuration]) => ({ rampPercentage, pauseDuration })))}`,
  ];

  it.each([
    ['a negative replica count', ['--set', 'worker.replicaCount=-1'], '/worker/replicaCount'],
    ['an unknown log level', ['--set', 'logLevel=loud'], '/logLevel'],
    ['a malformed duration', ['--set', 'saga.approvalTimeout=tomorrow'], '/saga/approvalTimeout'],
    ['a stream byte limit below 1 MiB', ['--set', 'nats.auditMaxBytes=1000'], '/nats/auditMaxBytes'],
    ['an unknown key', ['--set', 'worker.replicas=3'], 'additional properties'],
    ['no database at all', ['--set', 'database.existingSecret='], '/database'],
    [
      'an ingress with no way to authenticate callers',
      ['--set', 'auth.apiKeysSecret='],
      'the ingress needs a way to authenticate callers',
    ],
    [
      'a JWKS without issuer and audience',
      ['--set', 'auth.jwt.jwksUrl=https://idp.example/jwks'],
      'issuer and audience are required',
    ],
    ['no payload encryption keys', ['--set', 'encryption.keysSecret='], '/encryption/keysSecret'],
    ['Temporal TLS without its Secret', ['--set', 'temporal.tls.enabled=true'], 'temporal.tls.secret'],
    ['a Temporal address without port', ['--set', 'temporal.address=temporal'], '/temporal/address'],
    [
      'a termination grace shorter than the shutdown grace',
      ['--set', 'worker.shutdownGraceSeconds=60'],
      'must exceed worker.shutdownGraceSeconds',
    ],
    [
      'KEDA and the HPA together',
      ['--set', 'worker.keda.enabled=true', '--set', 'worker.autoscaling.enabled=true'],
      'enable one of them',
    ],
    ['an unknown versioning mode', ['--set', 'worker.versioning.mode=blue-green'], '/worker/versioning/mode'],
    ['a rollout step ramping 0 %', steps([0, '5m'], [50, '10m']), '/worker/versioning/rollout/steps/0/rampPercentage'],
    [
      'a rollout step ramping 100 %',
      steps([10, '5m'], [100, '10m']),
      '/worker/versioning/rollout/steps/1/rampPercentage',
    ],
    [
      'an unknown rollout strategy',
      ['--set', 'worker.versioning.rollout.strategy=Canary'],
      '/worker/versioning/rollout/strategy',
    ],
    [
      'a Progressive rollout without steps',
      ['--set-json', 'worker.versioning.rollout.steps=[]'],
      '/worker/versioning/rollout/steps',
    ],
    [
      'a pause that is not a duration',
      steps([10, '5 minutes'], [50, '10m']),
      '/worker/versioning/rollout/steps/0/pauseDuration',
    ],
    [
      'a rollout whose share goes down',
      steps([10, '5m'], [5, '10m']),
      'steps[1].rampPercentage (5) must be larger than the step before',
    ],
    [
      'a rollout step shorter than 30s',
      steps([10, '20s'], [50, '10m']),
      'steps[0].pauseDuration (20s) is shorter than the 30s',
    ],
    [
      'a sunset delay in days',
      ['--set', 'worker.versioning.sunset.deleteDelay=2d'],
      '/worker/versioning/sunset/deleteDelay',
    ],
    [
      'an HPA on the worker under the controller',
      ['--set', 'worker.autoscaling.enabled=true'],
      'set worker.autoscaling.enabled=false and size the worker with worker.replicaCount',
    ],
    [
      'KEDA on the worker under the controller',
      ['--set', 'worker.keda.enabled=true'],
      'set worker.keda.enabled=false and size the worker with worker.replicaCount (pods per build), or set worker.versioning.mode=unversioned',
    ],
    [
      'a Temporal address the Connection does not take',
      ['--set', 'temporal.address=temporal_frontend:7233'],
      "the Temporal Worker Controller's Connection takes host:port",
    ],
    [
      'a Temporal address the TemporalConnection does not take',
      ['--set', 'temporal.address=temporal_frontend:7233', ...controllerApi('v1.6')],
      "the Temporal Worker Controller's TemporalConnection takes host:port",
    ],
    ['an unknown controller line', controllerApi('v1.8'), '/worker/versioning/controllerApi'],
    [
      'more rollout steps than the WorkerDeployment takes',
      steps(...Array.from({ length: 21 }, (_, i): [number, string] => [i + 1, '1m'])),
      '/worker/versioning/rollout/steps',
    ],
  ])('refuses %s with a message naming it', async (_name, args, message) => {
    const { code, out } = await helmRun('template', 'order-saga', CHART, ...args);
    expect(code).not.toBe(0);
    expect(out).toContain(message);
  });

  it('has committed plain manifests that match a fresh render (npm run render-manifests)', async () => {
    expect(readFileSync(`${ROOT}deploy/rendered/order-saga.yaml`, 'utf8')).toBe(await renderManifests());
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8'), { merge: true }) as {
    services: Record<string, any>;
  };

  it('passes the Compose schema and lint rules (dclint)', async () => {
    const { stdout } = await exec(`${ROOT}node_modules/.bin/dclint`, ['docker-compose.yml', '--max-warnings', '0'], {
      cwd: ROOT,
    }).catch((e: { stdout: string; code: number }) => {
      throw new Error(`dclint failed (exit ${e.code}):\n${e.stdout}`);
    });
    expect(stdout).not.toContain('error');
  });

  it('runs the full stack, each service waiting on the health of what it needs', () => {
    const names = Object.keys(compose.services).sort();
    expect(names).toEqual([
      'grafana',
      'ingress',
      'jaeger',
      'nats',
      'payment-sandbox',
      'postgres',
      'prometheus',
      'temporal',
      'temporal-setup',
      'temporal-ui',
      'worker',
    ]);
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [dependency, { condition }] of Object.entries(
        (service.depends_on ?? {}) as Record<string, { condition: string }>,
      )) {
        const target = compose.services[dependency];
        expect(target, `${name} depends on unknown ${dependency}`).toBeDefined();
        // Services built from our Dockerfile inherit its HEALTHCHECK; the others declare one.
        const hasHealthCheck = target.healthcheck !== undefined || target.build !== undefined;
        if (condition === 'service_healthy') expect(hasHealthCheck, `${dependency} needs a health check`).toBe(true);
      }
    }
  });

  /** A service's environment as Compose would interpolate it, with `given` for the required `${NAME:?…}` variables. */
  const environmentOf = (name: string, given: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(compose.services[name].environment as Record<string, string>).map(([key, value]) => {
        const required = /^\$\{(\w+):\?[^}]+\}$/.exec(value);
        return [key, required ? given[required[1]!]! : value];
      }),
    );
  const secrets = {
    PAYLOAD_ENCRYPTION_KEYS: `local-1=${Buffer.alloc(32, 1).toString('base64')}`,
    ORDER_SAGA_API_KEYS: `ops:operator:${'a'.repeat(64)}`,
  };

  it('gives the worker and the ingress an environment the service accepts as configuration', () => {
    expect(() => loadConfig(environmentOf('worker', secrets)), 'worker').not.toThrow();
    expect(() => loadConfig(environmentOf('ingress', secrets), { ingress: true }), 'ingress').not.toThrow();
    const worker = loadConfig(environmentOf('worker', secrets));
    expect(worker.database.url).toContain('@postgres:5432/inventory');
    // One build, versioned, made current as the worker starts (no rollout controller in Compose).
    expect(worker.versioning).toEqual({
      mode: 'versioned',
      deploymentName: 'order-saga',
      buildId: undefined,
      becomeCurrent: 'always',
    });
    // One NATS server in Compose: one copy of each stream (the chart's cluster default would not fit).
    expect(worker.nats.streamReplicas).toBe(1);
  });

  it("runs Temporal with the local stack's dynamic configuration (eager activity dispatch)", () => {
    const temporal = compose.services.temporal as { environment: Record<string, string>; volumes: string[] };
    const path = temporal.environment.DYNAMIC_CONFIG_FILE_PATH!;
    const mount = temporal.volumes
      .map((volume) => volume.split(':'))
      .find(([, target]) => target === `/etc/temporal/${path}`);
    expect(mount, `a volume mounted at /etc/temporal/${path}`).toBeDefined();
    const file = parse(readFileSync(`${ROOT}${mount![0]}`, 'utf8')) as Record<string, { value: unknown }[]>;
    for (const [key, value] of Object.entries(TEMPORAL_DYNAMIC_CONFIG)) expect(file[key], key).toEqual([{ value }]);
  });

  it('cannot start without payload keys and API keys: Compose requires both variables', () => {
    expect(compose.services.ingress.environment.AUTH_API_KEYS).toMatch(/^\$\{ORDER_SAGA_API_KEYS:\?/);
    for (const name of ['worker', 'ingress']) {
      expect(compose.services[name].environment.PAYLOAD_ENCRYPTION_KEYS).toMatch(/^\$\{PAYLOAD_ENCRYPTION_KEYS:\?/);
    }
  });
});
