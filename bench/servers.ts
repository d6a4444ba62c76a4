// `npm run bench:servers`: the server family of the benchmark (empty workflow, the saga's shape,
// the product end to end) on the Temporal dev server, then on a Temporal cluster on PostgreSQL, in
// one run, and the two side by side in docs/benchmarks.md (the rest of that file is left alone).
//
//   npm run bench:servers -- [--rates 300,600,900,1200,1500] [--ceiling-rates 1200,2400,3600,4800,6000] [--duration 30] [--drain 10]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, step } from '../scripts/setup.mjs';
import { SERVERS_SECTION, serversSection, type ServerRun } from './servers-section.js';

const passed = process.argv.slice(2);
const runs: ServerRun[] = [];
for (const temporal of ['dev', 'cluster'] as const) {
  step(`Server family on the Temporal ${temporal === 'dev' ? 'dev server' : 'cluster'}`);
  const json = join(ROOT, '.data', `bench-servers-${temporal}.json`);
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/run.ts', '--temporal', temporal, '--family', 'servers', '--json', json, ...passed],
    { cwd: ROOT, stdio: 'inherit' },
  );
  if (result.status !== 0) {
    process.stderr.write(`the benchmark on the ${temporal} server failed (exit ${result.status})\n`);
    process.exit(result.status ?? 1);
  }
  runs.push(JSON.parse(readFileSync(json, 'utf8')) as ServerRun);
}
const file = join(ROOT, 'docs', 'benchmarks.md');
const section = serversSection(runs, ['npm run bench:servers', ...(passed.length ? ['--', ...passed] : [])].join(' '));
const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
writeFileSync(
  file,
  SERVERS_SECTION.test(current) ? current.replace(SERVERS_SECTION, section) : `${current.trimEnd()}\n\n${section}\n`,
);
step(`Both servers side by side in ${file}`);
