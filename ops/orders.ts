// `npm run orders -- list`: finds orders by status, customer, age and total, from the same code
// as GET /orders (ingress/order-list.ts), straight from Temporal's search index: the operator's
// way to find stuck orders (docs/runbook.md, "Find stuck orders") without the list filter syntax.
// Reads the processes' variables (TEMPORAL_*, PAYLOAD_ENCRYPTION_KEYS); finds the local stack by itself.
// Exit status: 0 listed (also when nothing matches), 2 a bad command line or Temporal unreachable.
import { minorUnitDigits, toMajorUnits } from '../domain/money.js';
import { loadConfigOrExit } from '../lib/config.js';
import { connectTemporalClient } from '../lib/temporal-client.js';
import {
  InvalidListFilter,
  listOrders,
  MAX_PAGE_SIZE,
  parseListQuery,
  SearchIndexRefused,
  SearchIndexUnavailable,
  LIST_CONSISTENCY,
  type OrderSummary,
} from '../ingress/order-list.js';
import { withLocalStackAddresses } from './local-stack.js';

const USAGE = `usage: npm run orders -- list [FILTERS] [--limit N] [--json]
  --status S[,S...]      in one of these statuses (repeatable), e.g. COMPENSATION_FAILED,AWAITING_APPROVAL
  --older-than DURATION  in its status for longer than DURATION (e.g. 30m, 1h, 2d): stuck orders
  --newer-than DURATION  status changed within the last DURATION
  --customer ID          one customer's orders
  --created-after TIME   saga started at or after TIME (RFC 3339, e.g. 2026-12-06T09:00:00Z)
  --created-before TIME  saga started before TIME
  --min-total N          total at least N, in major units (e.g. 100 or 12.50)
  --max-total N          total at most N
  --limit N              at most N orders (default 100; the newest first)
  --json                 one JSON document: { orders, more, source, consistency }
Reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and TLS settings, and PAYLOAD_ENCRYPTION_KEYS to read
totals; with none set, uses the local stack (npm start) when it runs.
Exit status: 0 listed (also when nothing matches), 2 a bad command line or Temporal unreachable.`;

class UsageError extends Error {}

const FLAG_TO_PARAMETER: Record<string, string> = {
  '--status': 'status',
  '--customer': 'customerId',
  '--created-after': 'createdAfter',
  '--created-before': 'createdBefore',
  '--min-total': 'minTotal',
  '--max-total': 'maxTotal',
};
const UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as 90s, 30m, 1h30m or 2d, in milliseconds. */
function parseDuration(text: string): number | undefined {
  if (!/^(\d{1,6}[smhd]){1,4}$/.test(text)) return undefined;
  let total = 0;
  for (const [, count, unit] of text.matchAll(/(\d+)([smhd])/g)) total += Number(count) * UNITS_MS[unit!]!;
  return total > 0 && total <= MAX_DURATION_MS ? total : undefined;
}
/** Ten years: further back than any order a namespace keeps (its retention), and well within Date's range. */
const MAX_DURATION_MS = 3_650 * 86_400_000;

interface Listing {
  query: Record<string, string | string[]>;
  limit: number;
  json: boolean;
}

function parseCommand(argv: string[], now: Date): Listing {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h') throw new UsageError('');
  if (name !== 'list') throw new UsageError(name ? `unknown command ${name}` : 'a command is needed');
  const query: Record<string, string | string[]> = {};
  let limit = 100;
  let json = false;
  for (let i = 0; i < rest.length; i += 1) {
    const flag = rest[i]!;
    if (flag === '--help' || flag === '-h') throw new UsageError('');
    if (flag === '--json') {
      json = true;
      continue;
    }
    const value = rest[i + 1];
    if (!flag.startsWith('--')) throw new UsageError(`unexpected argument "${flag}"`);
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    i += 1;
    if (flag === '--older-than' || flag === '--newer-than') {
      const ms = parseDuration(value);
      if (ms === undefined)
        throw new UsageError(`${flag} takes a duration such as 30m, 1h or 2d (at most 3650d), not "${value}"`);
      query[flag === '--older-than' ? 'changedBefore' : 'changedAfter'] = new Date(now.getTime() - ms).toISOString();
    } else if (flag === '--limit') {
      limit = /^\d{1,6}$/.test(value) ? Number(value) : 0;
      if (limit < 1) throw new UsageError(`--limit takes a whole number of at least 1, not "${value}"`);
    } else if (flag in FLAG_TO_PARAMETER) {
      const parameter = FLAG_TO_PARAMETER[flag]!;
      const earlier = query[parameter];
      if (parameter === 'status' && earlier !== undefined) query.status = [earlier, value].flat();
      else if (earlier !== undefined) throw new UsageError(`${flag} is given twice`);
      else query[parameter] = value;
    } else {
      throw new UsageError(`unknown option ${flag}`);
    }
  }
  return { query, limit, json };
}

const FLAG_OF: Record<string, string> = {
  ...Object.fromEntries(Object.entries(FLAG_TO_PARAMETER).map(([flag, parameter]) => [parameter, flag])),
  changedBefore: '--older-than',
  changedAfter: '--newer-than',
};

function age(from: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(from)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

function table(orders: OrderSummary[], now: Date): string {
  const rows = [
    ['ORDER', 'STATUS', 'SINCE', 'CUSTOMER', 'TOTAL', 'PLACED'],
    ...orders.map((order) => [
      order.orderId,
      order.status ?? '(none yet)',
      age(order.updatedAt, now),
      order.customerId ?? '',
      order.total === undefined || order.currency === undefined
        ? ''
        : `${toMajorUnits(order.total, order.currency).toFixed(minorUnitDigits(order.currency))} ${order.currency}`,
      order.createdAt,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(argv: string[]): Promise<number> {
  const now = new Date();
  let listing: Listing;
  let request: ReturnType<typeof parseListQuery>;
  try {
    listing = parseCommand(argv, now);
    request = parseListQuery(listing.query);
  } catch (error) {
    if (error instanceof InvalidListFilter) {
      for (const { field, message } of error.problems) console.error(`orders: ${FLAG_OF[field] ?? field} ${message}`);
      return 2;
    }
    if (!(error instanceof UsageError)) throw error;
    if (error.message) console.error(`orders: ${error.message}\n`);
    (error.message ? console.error : console.log)(USAGE);
    return error.message ? 2 : 0;
  }
  const { env, note } = withLocalStackAddresses(process.env, ['TEMPORAL_ADDRESS', 'PAYLOAD_ENCRYPTION_KEYS']);
  if (note) console.error(note);
  const config = loadConfigOrExit(env);
  let client;
  try {
    ({ client } = await connectTemporalClient(config));
  } catch (error) {
    console.error(`orders: cannot reach Temporal at ${config.temporal.address}: ${(error as Error).message}`);
    return 2;
  }
  const orders: OrderSummary[] = [];
  let more = false;
  let undecodable: unknown;
  try {
    let cursor: string | undefined;
    do {
      const page = await listOrders(
        client,
        {
          filters: request.filters,
          limit: Math.min(MAX_PAGE_SIZE, listing.limit - orders.length),
          ...(cursor && { cursor }),
        },
        { onUndecodableMemo: (_workflowId, error) => (undecodable ??= error) },
      );
      orders.push(...page.orders);
      cursor = page.nextCursor;
    } while (cursor && orders.length < listing.limit);
    more = cursor !== undefined;
  } catch (error) {
    if (error instanceof SearchIndexUnavailable) {
      console.error(`orders: ${error.message} at ${config.temporal.address}; retry shortly`);
      return 2;
    }
    if (error instanceof SearchIndexRefused || error instanceof InvalidListFilter) {
      console.error(`orders: ${error.message}`);
      return 2;
    }
    throw error;
  } finally {
    await client.connection.close();
  }
  if (undecodable)
    console.error(
      `orders: totals of some orders are not shown: ${(undecodable as Error).message} ` +
        '(set PAYLOAD_ENCRYPTION_KEYS as the workers have it)',
    );
  if (listing.json) {
    console.log(JSON.stringify({ orders, more, source: 'search-index', consistency: LIST_CONSISTENCY }, null, 2));
    return 0;
  }
  if (orders.length > 0) console.log(table(orders, now));
  console.log(
    `${orders.length} order(s)${more ? `, and more: raise --limit (now ${listing.limit}) or narrow the filters` : ''}. ` +
      `SINCE: time in the current status. Listed ${LIST_CONSISTENCY}.`,
  );
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
