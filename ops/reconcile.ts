// `npm run reconcile`: compares, for the sagas started in a time window, the payment gateway's
// charges, the inventory's reservations, the sagas' statuses, the AUDIT trail and the orders the
// ingress accepted, and lists every mismatch with its order and what to do. It says which window
// it checked and what it left out as newer (still settling), with how to include it. Read-only. Exit 0:
// everything agrees; 1: mismatches listed; 2: a bad command line or a system it cannot reach.
// Runs as the chart's CronJob; reads the processes' variables (TEMPORAL_*, NATS_*,
// PAYMENT_GATEWAY_URL, PAYLOAD_ENCRYPTION_KEYS to read the sagas' results).
import { loadConfigOrExit, parseDuration } from '../lib/config.js';
import { connectNats } from '../lib/nats.js';
import { connectTemporalClient } from '../lib/temporal-client.js';
import { withLocalStackAddresses } from './local-stack.js';
import { gatherEvidence } from './reconcile/evidence.js';
import { findMismatches, type Reconciliation } from './reconcile/mismatches.js';

const USAGE = `usage: npm run reconcile -- [--since DURATION | --from TIME] [--until TIME | --settle DURATION] [--json]
  --since 24h      the window starts this long ago (default 24h)
  --from TIME      or at this ISO 8601 time
  --settle 5m      sagas started in the last 5m are left out: they may still be running (default 5m)
  --until TIME     or the window ends at this ISO 8601 time
  --json           print the reconciliation as JSON (for a job's log or a script)
Exit status: 0 nothing to do, 1 mismatches found (listed with what to do), 2 usage or connection error.`;

class UsageError extends Error {}

function durationOf(flag: string, text: string | undefined): number {
  const ms = text === undefined ? undefined : parseDuration(text);
  if (ms === undefined)
    throw new UsageError(`${flag} takes a duration such as 30m, 6h or 7d (got ${text ?? 'nothing'})`);
  return ms;
}

function timeOf(flag: string, text: string | undefined): Date {
  const time = text === undefined ? Number.NaN : Date.parse(text);
  if (Number.isNaN(time))
    throw new UsageError(`${flag} takes an ISO 8601 time such as 2026-11-22T08:00:00Z (got ${text ?? 'nothing'})`);
  return new Date(time);
}

function parseArguments(argv: string[], now = new Date()): { from: Date; until: Date; json: boolean } {
  const flags = new Map<string, string | undefined>();
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i]!;
    if (!['--since', '--from', '--until', '--settle', '--json'].includes(flag))
      throw new UsageError(`unknown argument ${flag}`);
    flags.set(flag, flag === '--json' ? '' : argv[(i += 1)]);
  }
  if (flags.has('--since') && flags.has('--from')) throw new UsageError('give --since or --from, not both');
  if (flags.has('--until') && flags.has('--settle')) throw new UsageError('give --until or --settle, not both');
  const from = flags.has('--from')
    ? timeOf('--from', flags.get('--from'))
    : new Date(now.getTime() - durationOf('--since', flags.get('--since') ?? '24h'));
  const until = flags.has('--until')
    ? timeOf('--until', flags.get('--until'))
    : new Date(now.getTime() - durationOf('--settle', flags.get('--settle') ?? '5m'));
  if (until <= from)
    throw new UsageError(`the window is empty: ${from.toISOString()} is not before ${until.toISOString()}`);
  return { from, until, json: flags.has('--json') };
}

/** The reconciliation as an operator reads it. */
function formatReconciliation(result: Reconciliation): string {
  const count = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
  const statuses = Object.entries(result.sagas)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${status} ${n}`)
    .join(', ');
  const total = Object.values(result.sagas).reduce((sum, n) => sum + n, 0);
  const { leftOut } = result;
  const notChecked = [
    count(leftOut.charges, 'charge'),
    count(leftOut.reservations, 'reservation'),
    count(leftOut.accepted, 'accepted order'),
    count(leftOut.sagas, 'saga'),
  ];
  const lines = [
    `Checked: sagas started, and charges, reservations and accepted orders, from ${result.window.from} to ${result.window.until}.`,
    ...(leftOut.charges + leftOut.reservations + leftOut.accepted + leftOut.sagas > 0
      ? [
          `Not checked, newer than ${result.window.until} (still settling): ${notChecked.slice(0, -1).join(', ')} and ` +
            `${notChecked.at(-1)}; run with --until ${leftOut.readAt} (now) or --settle 0s to include them.`,
        ]
      : []),
    `Sagas started ${result.window.from} … ${result.window.until}: ${count(total, 'saga')}${statuses ? ` (${statuses})` : ''}, ${result.inFlight} still running`,
    `Read: ${count(result.counted.charges, 'gateway charge')}, ${count(result.counted.reservations, 'reservation')}, ` +
      `${count(result.counted.auditEvents, 'audit event')}, ${count(result.counted.accepted, 'accepted order')}, ` +
      `${count(result.counted.deadLetters, 'dead letter')}`,
    ...(result.counted.notYetIndexed > 0
      ? [
          `${count(result.counted.notYetIndexed, 'saga')} not yet in Temporal's search index (it lags the histories): read from Temporal itself and checked.`,
        ]
      : []),
  ];
  if (result.mismatches.length === 0)
    return [...lines, 'No mismatches in that window: the gateway, the stock, the sagas and AUDIT agree.'].join('\n');
  lines.push(`${count(result.mismatches.length, 'mismatch', 'mismatches')}:`);
  for (const m of result.mismatches) {
    lines.push(`  ${m.kind}  ${m.orderId ? `order ${m.orderId}: ` : ''}${m.detail}`);
    lines.push(`      → ${m.action}`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const window = parseArguments(argv);
  const { env, note } = withLocalStackAddresses(process.env, [
    'NATS_URL',
    'TEMPORAL_ADDRESS',
    'PAYMENT_GATEWAY_URL',
    'PAYLOAD_ENCRYPTION_KEYS',
  ]);
  if (note) console.error(note);
  const config = loadConfigOrExit(env);
  const nc = await connectNats(config.nats, 'order-saga-reconcile', 5_000);
  const { client, connection } = await connectTemporalClient(config);
  try {
    const evidence = await gatherEvidence({ temporal: client, nc, gatewayUrl: config.payment.gatewayUrl }, window);
    const result = findMismatches(evidence);
    console.log(window.json ? JSON.stringify(result, null, 2) : formatReconciliation(result));
    return result.mismatches.length > 0 ? 1 : 0;
  } finally {
    await connection.close();
    await nc.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
    else console.error(`reconcile could not run: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
