// Bundles the workflow code ahead of time, beside the compiled worker (dist/workers/), so
// production workers load it and skip webpack. Run from source by `npm run build` after tsc.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOWS_PATH } from './order-worker.js';

const target = fileURLToPath(new URL('../dist/workers/workflow-bundle.js', import.meta.url));
const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH });
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, code);
console.log(`workflow bundle written to ${target} (${Math.round(code.length / 1024)} KiB)`);
