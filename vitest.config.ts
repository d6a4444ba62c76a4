import { defineConfig } from 'vitest/config';
import ClusterTiersSpread from './test/harness/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', '{lib,activities,workflows,workers,ingress,sandbox}/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    // Checks every answer a test receives from an ingress against docs/openapi.json.
    setupFiles: ['test/harness/check-api-responses.ts'],
    // Forks, not threads: the Temporal worker loads a native module.
    pool: 'forks',
    maxWorkers: 2,
    // The cluster tiers, which run one at a time, spread through the queue (test/harness/sequencer.ts).
    sequence: { sequencer: ClusterTiersSpread },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: '.data/test-results.json' }]],
  },
});
