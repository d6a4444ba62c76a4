// Bundles the workflow code ahead of time, beside the compiled worker (dist/workers/), so
// production workers load it and skip webpack. Run from source by `npm run build` after tsc;
// an argument names another dist folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleOrderWorkflows } from './order-worker.js';

const distDir = process.argv[2] ?? fileURLToPath(new URL('../dist', import.meta.url));
const target = `${distDir}/workers/workflow-bundle.js`;
const code = await bundleOrderWorkflows();
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, code);
console.log(`workflow bundle written to ${target} (${Math.round(code.length / 1024)} KiB)`);
