import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', '{lib,activities,workflows,workers,ingress,sandbox}/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    // Forks, not threads: the Temporal worker loads a native module.
    pool: 'forks',
    maxWorkers: 2,
    // Saga tests wait on real retries; audit activities add a task round trip per state change, and
    // under a full run's load two compensation tests needed more than 60 s.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: '.data/test-results.json' }]],
  },
});
