// The part of docs/benchmarks.md that `npm run bench:servers` writes: the same scenarios on the
// Temporal dev server and on a Temporal cluster on PostgreSQL, side by side. `npm run bench`
// rewrites the rest of the file and keeps this part.

/** The section with its markers, as it stands in the report. */
export const SERVERS_SECTION = /<!-- servers:begin[^]*?<!-- servers:end -->/;

/** One server's run, as `bench/run.ts --json` writes it. */
export interface ServerRun {
  temporal: 'dev' | 'cluster';
  date: string;
  machine: string;
  options: { rates: number[]; ceilingRates: number[]; durationS: number; drainS: number };
  /** The names under which Temporal's CPU is counted (its processes; PostgreSQL's on the cluster). */
  temporalProcesses: string[];
  results: {
    scenario: string;
    rate: number;
    arrivals: number;
    completed: number;
    p50: number;
    p99: number;
    cpuMsPerOrder: Record<string, number>;
    sustained: boolean;
    visibilityLag?: { p50: number; p99: number; samples: number };
  }[];
  shapes: Record<string, { events: number; workflowTasks: number; searchAttributeUpserts: number }>;
}

const SERVER_NAMES = { dev: 'dev server (SQLite)', cluster: 'cluster on PostgreSQL' } as const;
const TARGET = 10_000;

const ms = (value: number) =>
  !Number.isFinite(value)
    ? 'unfinished'
    : value >= 1_000
      ? `${(value / 1_000).toFixed(2)} s`
      : `${Math.round(value)} ms`;
const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

/** The section, from one run on each server of the same scenarios at the same rates. */
export function serversSection(runs: ServerRun[], command: string): string {
  const scenarios = [...new Set(runs.flatMap((run) => run.results.map((r) => r.scenario)))];
  const best = (run: ServerRun, scenario: string) => {
    const sustained = run.results.filter((r) => r.scenario === scenario && r.sustained);
    return sustained.sort((a, b) => b.rate - a.rate)[0];
  };
  const rows = scenarios.flatMap((scenario) =>
    runs.map((run) => {
      const top = best(run, scenario);
      if (!top) return `| ${scenario} | ${SERVER_NAMES[run.temporal]} | none of the rates tried | | | | |`;
      const temporalCpu = sum(run.temporalProcesses.map((name) => top.cpuMsPerOrder[name] ?? 0));
      const postgres = top.cpuMsPerOrder.postgres;
      const all = sum(Object.values(top.cpuMsPerOrder));
      const shape = run.shapes[scenario];
      return (
        `| ${scenario} | ${SERVER_NAMES[run.temporal]} | ${top.rate} | ${ms(top.p50)} / ${ms(top.p99)} | ` +
        `${temporalCpu.toFixed(1)}${postgres === undefined ? '' : ` (${postgres.toFixed(1)})`} | ${all.toFixed(1)} | ` +
        `${shape ? `${shape.events.toFixed(0)} / ${shape.searchAttributeUpserts.toFixed(0)}` : '–'} |`
      );
    }),
  );
  const cluster = runs.find((run) => run.temporal === 'cluster');
  const productScenario = scenarios.find((scenario) => scenario.startsWith('product end to end'));
  const product = cluster && productScenario ? best(cluster, productScenario) : undefined;
  const sizing = product
    ? `### What ${TARGET.toLocaleString('en')} orders/min needs on a production-shaped Temporal

${product.scenario} on the cluster at ${product.rate} orders/min (its highest rate sustained), CPU per
order of each process times ${TARGET.toLocaleString('en')} / 60 orders per second; add headroom (×1.5) for bursts and
rolling restarts. Of Temporal's share, the most went to ${topOf(product.cpuMsPerOrder, cluster?.temporalProcesses ?? [])}.

| Process | CPU ms per order | Cores for ${TARGET.toLocaleString('en')} orders/min |
| --- | ---: | ---: |
${Object.entries(product.cpuMsPerOrder)
  .map(([name, value]) => `| ${name} | ${value.toFixed(1)} | ${((value * TARGET) / 60 / 1_000).toFixed(1)} |`)
  .join('\n')}
| all | ${sum(Object.values(product.cpuMsPerOrder)).toFixed(1)} | ${((sum(Object.values(product.cpuMsPerOrder)) * TARGET) / 60 / 1_000).toFixed(1)} |
`
    : '';
  const lagRows = productScenario
    ? first0(runs).options.rates.map((rate) => {
        const cells = runs.map((run) => {
          const lag = run.results.find((r) => r.scenario === productScenario && r.rate === rate)?.visibilityLag;
          return lag && lag.samples > 0 ? `${ms(lag.p50)} / ${ms(lag.p99)} (${lag.samples})` : '–';
        });
        return `| ${rate} | ${cells.join(' | ')} |`;
      })
    : [];
  const lagSection =
    lagRows.length > 0
      ? `### How far the search index lags

From a saga's final audit event to the search index listing it as completed (what \`GET /orders\`,
\`npm run orders -- list\` and operators' searches see), for one order in ten of the product scenario:
p50 / p99 (samples). Reads of one order (\`GET /orders/{id}\`) ask the saga itself and do not lag.

| Orders/min | ${runs.map((run) => SERVER_NAMES[run.temporal]).join(' | ')} |
| ---: | ${runs.map(() => '---:').join(' | ')} |
${lagRows.join('\n')}

`
      : '';
  const first = first0(runs);
  return `<!-- servers:begin (written by npm run bench:servers; npm run bench keeps it) -->
## The dev server and a production-shaped cluster, side by side

Made by \`${command}\` on ${first.date.slice(0, 10)}, ${first.machine}: the scenarios that measure the Temporal under the
product, at ${first.options.rates.join(', ')} orders/min (the empty workflow at ${first.options.ceilingRates.join(', ')}), ${first.options.durationS} s per
rate, on each server one after the other in one run, with the rest of the stack the same. The
cluster is temporal-server 1.29.1 as production runs it: frontend, two history nodes, matching
and the internal worker as processes of their own, on this machine's PostgreSQL (persistence and
SQL visibility, PostgreSQL's defaults: fsync and synchronous commit on). Temporal CPU counts all
its processes, and on the cluster PostgreSQL's (in brackets). History: events / search-attribute
upserts per workflow, the same on both (the server does not change the saga's history).

| Scenario | Server | Highest rate sustained (per min) | p50 / p99 there | Temporal CPU ms per order (PostgreSQL) | All processes, CPU ms per order | History events / upserts |
| --- | --- | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

${lagSection}${sizing}<!-- servers:end -->`;
}

/** The two of `names` with the most CPU per order, with their figures. */
function topOf(cpu: Record<string, number>, names: string[]): string {
  const [first, second] = names
    .filter((name) => cpu[name] !== undefined)
    .sort((a, b) => cpu[b]! - cpu[a]!)
    .map((name) => `${name} (${cpu[name]!.toFixed(1)} ms)`);
  return second ? `${first} and ${second}` : (first ?? 'none');
}

const first0 = (runs: ServerRun[]) => {
  if (runs.length === 0) throw new Error('no runs to compare');
  return runs[0]!;
};
