// ESLint flat config. Type-aware rules for TypeScript; workflows/ gets an extra
// fence because workflow code must stay deterministic (it is replayed).
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.data/', 'deploy/rendered/', 'coverage/'] },
  js.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        Buffer: 'readonly',
      },
    },
  },
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    plugins: { 'import-x': importX },
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } }, 'import-x/ignore': ['node_modules'] },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    // Tests may use loose typing on parsed JSON and YAML (responses, rendered manifests), and pass activity functions
    // (which never use `this`) to the mock activity environment.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    // The order's own definitions: plain data and pure functions that every folder (the workflow
    // bundle included) may import, so they import nothing but each other.
    files: ['domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['*', '!./*'], message: 'domain/ imports nothing but domain/: no I/O, no framework.' }] },
      ],
    },
  },
  {
    // Shared plumbing sits below the product's folders: they use it, it never uses them.
    files: ['lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../workflows/*', '../activities/*', '../ingress/*', '../workers/*'],
              message: 'lib/ must not depend on the product folders; move the shared definition to domain/.',
            },
          ],
        },
      ],
    },
  },
  {
    // Workflow code is replayed: no Node built-ins, no I/O, no clients, no module-level mutable state.
    files: ['workflows/**/*.ts', 'bench/baseline-workflows.ts'],
    ignores: ['workflows/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins
              .flatMap((name) => [name, `node:${name}`])
              .map((name) => ({
                name,
                message: 'Workflow code must be deterministic: no Node built-ins. Do I/O in an activity.',
              })),
            { name: '@temporalio/client', message: 'Workflows talk to Temporal through @temporalio/workflow only.' },
            { name: '@temporalio/activity', message: 'Import activities as types only, through proxyActivities.' },
            { name: '@temporalio/worker', message: 'Workflows must not import the worker.' },
          ],
          patterns: [
            {
              group: ['../activities/*', '../lib/*', '../ingress/*', '../workers/*'],
              allowTypeImports: true,
              message: 'Workflow code may import other folders as types only.',
            },
            {
              group: ['pg', 'pino', 'express', '@nats-io/*', 'prom-client'],
              message: 'No I/O libraries in workflow code.',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'setInterval', 'fetch', 'process', 'require'],
      'prefer-const': 'error',
      'no-var': 'error',
    },
  },
);
