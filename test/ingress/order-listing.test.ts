// Listing orders (GET /orders and `npm run orders -- list`) against the real ingress, worker,
// Temporal and NATS with authentication on: filters, pages, who sees what, filters that try to
// write Temporal's query language, and how far the search index lags the sagas, measured.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIdentityProvider, type IdentityProvider } from '../support/identity-provider.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { runOpsCommand } from '../support/commands.js';
import { listOrdersQuerySchema, type OrderSummary } from '../../ingress/order-list.js';
import { TERMINAL_STATUSES, type OrderStatus } from '../../workflows/contract.js';

const OPERATOR_KEY = `op_${randomUUID()}`;
const SERVICE_KEY = `svc_${randomUUID()}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const asOperator = { 'x-api-key': OPERATOR_KEY };
const asService = { 'x-api-key': SERVICE_KEY };
const run = randomUUID().slice(0, 8);
const alice = `alice-${run}`;
const bob = `bob-${run}`;

let idp: IdentityProvider;
let stack: ProcessTier;
let asAlice: Record<string, string>;
let asBob: Record<string, string>;
/** Alice's three orders, oldest first; Bob's small one and his large one (awaits approval). */
const placed = { alice: [] as string[], bobSmall: '', bobLarge: '' };

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function get(path: string, headers: Record<string, string>): Promise<Answer> {
  const response = await fetch(`${stack.api}${path}`, { headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as never) : {} };
}

async function list(query: string, headers: Record<string, string>): Promise<OrderSummary[]> {
  const answer = await get(`/orders?${query}`, headers);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body.orders as OrderSummary[];
}

const ids = (orders: OrderSummary[]) => orders.map((order) => order.orderId);

async function statusOf(orderId: string): Promise<string | undefined> {
  const answer = await get(`/orders/${orderId}`, asOperator);
  return answer.status === 200 ? (answer.body.status as string) : undefined;
}

/** Polls until `check` holds (also in beforeAll, where expect.poll is not available). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const terminal = (orderId: string) =>
  until(`order ${orderId} ends`, async () => TERMINAL_STATUSES.includes((await statusOf(orderId)) as OrderStatus));

/** When this file began: its orders' sagas start after it. */
const startedAt = new Date().toISOString();

beforeAll(async () => {
  idp = await startIdentityProvider();
  stack = await startProcessTier('listing', {
    ...idp.env,
    AUTH_DISABLED: '',
    AUTH_API_KEYS: `ops-team:operator:${sha256(OPERATOR_KEY)},storefront:service:${sha256(SERVICE_KEY)}`,
    APPROVAL_THRESHOLD: '5000',
    // Payloads encrypted as in production: the listing reads totals from the memo through the codec.
    PAYLOAD_ENCRYPTION_KEYS: `k1=${randomBytes(32).toString('base64')}`,
  });
  await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
  asAlice = { authorization: `Bearer ${await idp.token(alice)}` };
  asBob = { authorization: `Bearer ${await idp.token(bob)}` };
  for (const unitPrice of [900, 1200, 1500]) {
    placed.alice.push(await stack.placeOrder({ unitPrice, customerId: alice }, asAlice));
    await terminal(placed.alice.at(-1)!);
  }
  placed.bobSmall = await stack.placeOrder({ unitPrice: 700, customerId: bob }, asBob);
  placed.bobLarge = await stack.placeOrder({ unitPrice: 9900, customerId: bob }, asBob);
  await terminal(placed.bobSmall);
  // Every order in the index as its saga has it now, before the listings are checked: the index
  // follows the sagas, so an order whose saga ended may still be listed with an older status, or as
  // running (the saga closes a moment after it answers COMPLETED, and a listing puts running ones first).
  const ended = (order: OrderSummary | undefined) => order?.status === 'COMPLETED' && order.sagaStatus === 'COMPLETED';
  await until('the index shows every order as its saga has it', async () => {
    const alices = await list('', asAlice);
    const bobs = await list(`customerId=${bob}`, asService);
    const bobsOrder = (orderId: string) => bobs.find((order) => order.orderId === orderId);
    return (
      alices.length === placed.alice.length &&
      alices.every(ended) &&
      ended(bobsOrder(placed.bobSmall)) &&
      bobsOrder(placed.bobLarge)?.status === 'AWAITING_APPROVAL'
    );
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await idp?.close();
});

describe('who sees what', () => {
  it('when a customer lists, then it gets its own orders only, newest first, each a summary with its link', async () => {
    const orders = await list('', asAlice);
    expect(ids(orders)).toEqual([...placed.alice].reverse());
    expect(orders[0]).toMatchObject({
      orderId: placed.alice[2],
      status: 'COMPLETED',
      customerId: alice,
      total: 1500,
      currency: 'EUR',
      sagaStatus: 'COMPLETED',
      links: { self: `/orders/${placed.alice[2]}` },
    });
    expect(Date.parse(orders[0]!.updatedAt)).toBeGreaterThan(Date.parse(orders[0]!.createdAt));
    // Bob's orders do not show whatever Alice filters on.
    expect(ids(await list('status=AWAITING_APPROVAL', asAlice))).toEqual([]);
    expect(ids(await list('minTotal=0', asAlice))).toEqual([...placed.alice].reverse());
  });

  it("when a customer asks for another customer's orders, then it is refused 403 and learns nothing", async () => {
    const answer = await get(`/orders?customerId=${bob}`, asAlice);
    expect(answer.status).toBe(403);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(answer.body.detail).toContain('a customer lists its own orders');
    expect(answer.body).not.toHaveProperty('orders');
  });

  it('when a service or an operator lists, then it sees every customer, and filters by customer, status and total', async () => {
    // Other test files' sagas share this Temporal: page through those started since this file began.
    const everyone: string[] = [];
    let path = `/orders?limit=100&createdAfter=${encodeURIComponent(startedAt)}`;
    for (let page = 0; page < 50; page += 1) {
      const answer = await get(path, asOperator);
      expect(answer.status).toBe(200);
      everyone.push(...ids(answer.body.orders as OrderSummary[]));
      if (!answer.body.nextCursor) break;
      path = (answer.body.links as { next: string }).next;
    }
    expect(everyone).toEqual(expect.arrayContaining([...placed.alice, placed.bobSmall, placed.bobLarge]));
    expect(new Set(everyone).size).toBe(everyone.length);
    expect(ids(await list(`customerId=${bob}`, asService)).sort()).toEqual([placed.bobSmall, placed.bobLarge].sort());
    expect(ids(await list(`customerId=${bob}&status=AWAITING_APPROVAL`, asService))).toEqual([placed.bobLarge]);
    expect(ids(await list(`customerId=${bob}&status=COMPLETED,AWAITING_APPROVAL`, asService)).sort()).toEqual(
      [placed.bobSmall, placed.bobLarge].sort(),
    );
    expect(ids(await list(`customerId=${bob}&status=COMPLETED&status=AWAITING_APPROVAL`, asService))).toHaveLength(2);
    // Totals in major units: Bob's are 7.00 and 99.00 EUR.
    expect(ids(await list(`customerId=${bob}&minTotal=50`, asService))).toEqual([placed.bobLarge]);
    expect(ids(await list(`customerId=${bob}&maxTotal=7.00`, asService))).toEqual([placed.bobSmall]);
    expect(ids(await list(`customerId=${bob}&minTotal=7.01&maxTotal=98.99`, asService))).toEqual([]);
  });

  it('when filtering by when an order started or last changed, then the windows are half-open: at or after, before', async () => {
    const [large] = await list(`customerId=${bob}&status=AWAITING_APPROVAL`, asService);
    const at = (time: string, ms: number) => encodeURIComponent(new Date(Date.parse(time) + ms).toISOString());
    const bobs = (query: string) => list(`customerId=${bob}&status=AWAITING_APPROVAL&${query}`, asService).then(ids);
    expect(await bobs(`createdAfter=${at(large!.createdAt, 0)}`)).toEqual([placed.bobLarge]);
    expect(await bobs(`createdBefore=${at(large!.createdAt, 0)}`)).toEqual([]);
    // The saga starts after the order is accepted: within seconds here.
    expect(await bobs(`createdBefore=${at(large!.createdAt, 10_000)}`)).toEqual([placed.bobLarge]);
    expect(await bobs(`changedBefore=${at(large!.updatedAt, 1)}`)).toEqual([placed.bobLarge]);
    expect(await bobs(`changedAfter=${at(large!.updatedAt, 1)}`)).toEqual([]);
    // Offsets other than Z mean the same instant.
    const plusTwo = new Date(Date.parse(large!.updatedAt) + 1 + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    expect(await bobs(`changedBefore=${encodeURIComponent(plusTwo)}`)).toEqual([placed.bobLarge]);
  });
});

describe('pages', () => {
  it('when a page size is given, then the pages follow one another through nextCursor, each order once, newest first', async () => {
    const seen: string[] = [];
    let path = `/orders?customerId=${alice}&limit=1`;
    for (let page = 0; page < 10; page += 1) {
      const answer = await get(path, asService);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ source: 'search-index' });
      expect(answer.body.consistency).toContain('search index');
      const orders = answer.body.orders as OrderSummary[];
      expect(orders.length).toBeLessThanOrEqual(1);
      seen.push(...ids(orders));
      if (!answer.body.nextCursor) break;
      const next = (answer.body.links as { next: string }).next;
      expect(next).toContain(`cursor=${answer.body.nextCursor as string}`);
      expect(next).toContain(`customerId=${alice}`);
      path = next;
    }
    expect(seen).toEqual([...placed.alice].reverse());
  });

  it('when a cursor is sent with other filters, altered, or made up, then it is refused 400 naming the cursor', async () => {
    const first = await get(`/orders?customerId=${alice}&limit=1`, asService);
    const cursor = first.body.nextCursor as string;
    expect(cursor).toBeTruthy();
    const otherFilters = await get(`/orders?customerId=${bob}&limit=1&cursor=${cursor}`, asService);
    expect(otherFilters.status).toBe(400);
    expect(otherFilters.body.errors).toEqual([
      { field: 'cursor', message: expect.stringContaining('belongs to a listing with other filters') },
    ]);
    // A customer cannot page through another customer's listing with a service's cursor either.
    expect((await get(`/orders?limit=1&cursor=${cursor}`, asBob)).status).toBe(400);
    for (const made of [
      'abc',
      Buffer.from('{"q":1}').toString('base64url'),
      `${cursor.slice(0, -4)}AAAA`,
      '%27%20OR',
    ]) {
      const answer = await get(`/orders?customerId=${alice}&limit=1&cursor=${made}`, asService);
      expect({ made, status: answer.status }).toEqual({ made, status: 400 });
      expect((answer.body.errors as { field: string }[])[0]!.field).toBe('cursor');
    }
  });
});

describe('bad filters', () => {
  it('when filters are wrong, then the answer is 400 problem+json naming every parameter and what it takes', async () => {
    const cases: [query: string, fields: string[]][] = [
      ['status=SHIPPED', ['status']],
      ['status=', ['status']],
      ['limit=0', ['limit']],
      ['limit=101', ['limit']],
      ['limit=ten', ['limit']],
      ['createdAfter=yesterday', ['createdAfter']],
      ['createdAfter=2026-12-06', ['createdAfter']],
      ['changedBefore=2026-12-06T10:00:00', ['changedBefore']],
      ['minTotal=-1', ['minTotal']],
      ['maxTotal=1e3', ['maxTotal']],
      ['customerId=a%20b', ['customerId']],
      ['customerId=a&customerId=b', ['customerId']],
      ['stauts=COMPLETED', ['stauts']],
      ['status=NOPE&limit=0&minTotal=x', ['status', 'minTotal', 'limit']],
    ];
    for (const [query, fields] of cases) {
      const answer = await get(`/orders?${query}`, asOperator);
      expect({ query, status: answer.status }).toEqual({ query, status: 400 });
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
      expect(answer.body.title).toBe('Invalid list filter');
      expect({ query, fields: (answer.body.errors as { field: string }[]).map((e) => e.field).sort() }).toEqual({
        query,
        fields: [...fields].sort(),
      });
      for (const field of fields) expect(answer.body.detail).toContain(field);
    }
  });

  it("when a filter carries Temporal's query language, then it is refused 400 and no other customer's order leaks", async () => {
    const attempts = [
      "' OR '1'='1",
      "x' OR CustomerId != 'x",
      "COMPLETED') OR (WorkflowType = 'orderSaga",
      'COMPLETED\\',
      "2026-12-06T10:00:00Z' OR 1=1 OR StartTime > '1970-01-01T00:00:00Z",
      '1 OR OrderTotal > 0',
      '`OrderStatus`',
      'COMPLETED ORDER BY StartTime',
      '\u0000',
    ];
    for (const filter of Object.keys(listOrdersQuerySchema.shape))
      for (const attempt of attempts) {
        const query = `${filter}=${encodeURIComponent(attempt)}`;
        const answer = await get(`/orders?${query}`, asAlice);
        expect({ query, status: answer.status }).toEqual({ query, status: 400 });
        expect(answer.body).not.toHaveProperty('orders');
      }
    // And the ingress still serves.
    expect(ids(await list('', asAlice))).toEqual([...placed.alice].reverse());
  });
});

describe('the search index follows the sagas', () => {
  it('when an order changes status, then the listing shows it within 2 seconds (measured, the dev server)', async () => {
    const lags: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const orderId = await stack.placeOrder({ unitPrice: 9000 + i, customerId: bob }, asBob);
      await until(`order ${orderId} awaits approval`, async () => (await statusOf(orderId)) === 'AWAITING_APPROVAL');
      const approve = await fetch(`${stack.api}/orders/${orderId}/approve`, { method: 'POST', headers: asOperator });
      expect(approve.status).toBe(202);
      // The saga's own record says when it left AWAITING_APPROVAL; the listing follows from then.
      await terminal(orderId);
      const view = (await get(`/orders/${orderId}`, asOperator)).body as { status: string; updatedAt: string };
      const changedAt = Date.parse(view.updatedAt);
      let listedAt = 0;
      while (Date.now() - changedAt < 10_000) {
        const [summary] = await list(`customerId=${bob}&status=${view.status}&limit=100`, asService).then((orders) =>
          orders.filter((order) => order.orderId === orderId),
        );
        if (summary) {
          expect(summary.updatedAt).toBe(view.updatedAt);
          listedAt = Date.now();
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(listedAt, `order ${orderId} not listed as ${view.status} within 10 s`).toBeGreaterThan(0);
      lags.push(listedAt - changedAt);
    }
    console.log(`search index lag after a status change (ms, dev server): ${lags.join(', ')}`);
    expect(Math.max(...lags)).toBeLessThan(2_000);
  });
});

describe('npm run orders -- list', () => {
  const command = (args: string[]) =>
    runOpsCommand('ops/orders.ts', ['list', ...args], { ...process.env, ...stack.env });

  it('when an operator lists stuck orders, then the command finds them with the same filters, as a table or JSON', async () => {
    const json = await command(['--status', 'AWAITING_APPROVAL', '--customer', bob, '--json']);
    expect(json.code, json.out).toBe(0);
    const document = JSON.parse(json.out.slice(json.out.indexOf('{'))) as { orders: OrderSummary[]; more: boolean };
    expect(ids(document.orders)).toEqual([placed.bobLarge]);
    expect(document.more).toBe(false);
    // Waiting for less than an hour: not stuck yet; for more than a second: stuck.
    const notYet = await command(['--status', 'AWAITING_APPROVAL', '--customer', bob, '--older-than', '1h']);
    expect(notYet.code).toBe(0);
    expect(notYet.out).toContain('0 order(s)');
    const stuck = await command(['--status', 'AWAITING_APPROVAL', '--customer', bob, '--older-than', '1s']);
    expect(stuck.code).toBe(0);
    expect(stuck.out).toMatch(
      new RegExp(`${placed.bobLarge}\\s+AWAITING_APPROVAL\\s+\\d+[smhd]\\s+${bob}\\s+99\\.00 EUR`),
    );
    expect(stuck.out).toContain('1 order(s)');
    const limited = await command(['--customer', alice, '--limit', '2']);
    expect(limited.out).toContain('2 order(s), and more: raise --limit');
  });

  it('when the command lacks the payload key, then it still lists every order, without totals, and says why', async () => {
    const result = await runOpsCommand('ops/orders.ts', ['list', '--customer', bob, '--json'], {
      ...process.env,
      ...stack.env,
      PAYLOAD_ENCRYPTION_KEYS: '',
    });
    expect(result.code, result.out).toBe(0);
    expect(result.out).toContain('orders: totals of some orders are not shown: data is encrypted with key "k1"');
    const document = JSON.parse(result.out.slice(result.out.indexOf('{'), result.out.lastIndexOf('}') + 1)) as {
      orders: OrderSummary[];
    };
    expect(ids(document.orders)).toEqual(expect.arrayContaining([placed.bobSmall, placed.bobLarge]));
    expect(document.orders.every((order) => order.total === undefined && order.status !== undefined)).toBe(true);
  });

  it("when the namespace lacks the saga's search attributes, then the listing says so and names the script, instead of 'retry'", async () => {
    const namespace = `bare-${run}`;
    const connection = await Connection.connect({ address: stack.env.TEMPORAL_ADDRESS! });
    try {
      await connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs('1 day'),
      });
    } finally {
      await connection.close();
    }
    const bare = { ...process.env, ...stack.env, TEMPORAL_NAMESPACE: namespace };
    let result = { code: 0, out: '' };
    // A new namespace takes a moment to be known by every part of the server.
    for (let attempt = 0; attempt < 40; attempt += 1) {
      result = await runOpsCommand('ops/orders.ts', ['list', '--older-than', '1h'], bare);
      if (!/not found|NotFound/i.test(result.out)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(result.code, result.out).toBe(2);
    expect(result.out).toContain('Temporal refused the listing query');
    expect(result.out).toContain('register-search-attributes.sh');
    expect(result.out).not.toContain('retry shortly');
  });

  it('when the command line is wrong, then it exits 2 naming the option and what it takes', async () => {
    const cases: [string[], string][] = [
      [['--status', 'STUCK'], '--status has unknown status "STUCK"'],
      [['--older-than', 'an hour'], '--older-than takes a duration such as 30m, 1h or 2d'],
      [['--older-than', '999999d'], '--older-than takes a duration such as 30m, 1h or 2d (at most 3650d)'],
      [['--created-after', '2026-02-30T00:00:00Z'], '--created-after must be an RFC 3339 time'],
      [['--min-total', 'ten'], '--min-total must be a number'],
      [['--customer'], '--customer needs a value'],
      [['--colour', 'red'], 'unknown option --colour'],
    ];
    for (const [args, message] of cases) {
      const result = await command(args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.out).toContain(message);
    }
  });
});
