#!/usr/bin/env node
// Renders the Helm chart with its default values into deploy/rendered/order-saga.yaml, the
// plain manifests for users without Helm. A test fails when the committed file is stale.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTool } from './toolchain.mjs';
import { ROOT } from './setup.mjs';

/** The plain manifests `helm template` makes from the chart's defaults. */
export async function renderManifests() {
  const helm = await ensureTool('helm');
  const result = spawnSync(
    helm,
    ['template', 'order-saga', join(ROOT, 'deploy/helm/order-saga'), '--namespace', 'orders'],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  return (
    '# Rendered from deploy/helm/order-saga with its default values (npm run render-manifests).\n' +
    '# The worker is a WorkerDeployment: install the Temporal Worker Controller (v1.7 or later) first (docs/deployment.md, "Temporal Worker Controller");\n' +
    '# for controller v1.6 and earlier, render with --set worker.versioning.controllerApi=v1.6 (TemporalWorkerDeployment);\n' +
    '# without a controller, render with --set worker.versioning.mode=unversioned for a plain Deployment.\n' +
    `# Apply with: kubectl apply -n orders -f order-saga.yaml   (create the Secret order-saga-database first)\n${result.stdout}`
  );
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const target = join(ROOT, 'deploy/rendered/order-saga.yaml');
  mkdirSync(join(ROOT, 'deploy/rendered'), { recursive: true });
  writeFileSync(target, await renderManifests());
  console.log(`wrote ${target}`);
}
