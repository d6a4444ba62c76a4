// Listing orders: GET /orders and `npm run orders -- list` read Temporal's search index
// (visibility) through this one module. Filters are checked here and turned into a list query
// the ingress writes itself: every value in the query is one this code produced (a status from
// the contract's list, a customer id of letters, digits and . _ : @ -, a time it formatted, a
// number it formatted), so no caller text reaches Temporal's query language.
//
// The search index follows each saga by a moment (the dev server: milliseconds; a production
// Temporal: seconds under load): a listing can show a status an order has just left. The order
// itself, GET /orders/{orderId}, is read from its saga.
import { createHash } from 'node:crypto';
import { ServiceError, type Client } from '@temporalio/client';
// The SDK's own decoding of a listed execution (memo through the payload codec): its list()
// iterator pages internally and hides the page token a cursor needs, so the page is fetched raw.
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers.js';
import { z } from 'zod';
import {
  CustomerIdKey,
  ORDER_SAGA_WORKFLOW_TYPE,
  ORDER_STATUSES,
  ORDER_SUMMARY_MEMO_KEY,
  OrderStatusKey,
  OrderTotalKey,
  OrderUpdatedAtKey,
  ORDER_WORKFLOW_ID_PREFIX,
  type OrderStatus,
  type OrderSummaryMemo,
} from '../workflows/contract.js';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
/** What every listing says about where it comes from. */
export const LIST_CONSISTENCY =
  "from Temporal's search index, which follows each saga by a moment (well under a second, longer while Temporal recovers from an outage): an order just placed may be missing, and a status or a saga state it has just left may still show; GET /orders/{orderId} reads the order itself";

const GRPC_INVALID_ARGUMENT = 3;
const CUSTOMER_ID = /^[\w.:@-]{1,128}$/;
const TOTAL = /^\d{1,12}(\.\d{1,4})?$/;
const CURSOR = /^[\w-]{1,4096}$/;

const timestamp = (what: string) =>
  z
    .string()
    .describe(`${what}, as an RFC 3339 time with its offset, e.g. 2026-12-06T09:30:00Z`)
    .meta({ format: 'date-time' });
const amount = (what: string) =>
  z.string().describe(`${what}, in the currency's major units (e.g. 12.50), whatever the currency`);

/**
 * The query parameters of GET /orders (public contract: docs/openapi.json is made from this).
 * A parameter not listed here is refused, so a typo does not silently list everything.
 */
export const listOrdersQuerySchema = z.strictObject({
  status: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe(
      `Orders in one of these statuses: repeat the parameter or separate them with commas (${ORDER_STATUSES.join(', ')})`,
    ),
  customerId: z
    .string()
    .optional()
    .describe("One customer's orders (a customer lists its own whatever it sends; another customer's is refused)"),
  createdAfter: timestamp(
    'Saga started at or after this time (within a second of the order being placed, unless orders waited in ORDERS)',
  ).optional(),
  createdBefore: timestamp('Saga started before this time').optional(),
  changedAfter: timestamp('Status last changed at or after this time').optional(),
  changedBefore: timestamp('Status last changed before this time (e.g. stuck for more than an hour)').optional(),
  minTotal: amount('Total at least this').optional(),
  maxTotal: amount('Total at most this').optional(),
  limit: z.string().optional().describe(`Orders per page, 1 to ${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})`),
  cursor: z
    .string()
    .optional()
    .describe('The nextCursor of the previous page, sent with the same filters, for the page after it'),
});
export type ListOrdersQuery = z.infer<typeof listOrdersQuerySchema>;

export interface OrderFilters {
  statuses?: OrderStatus[];
  customerId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  changedAfter?: Date;
  changedBefore?: Date;
  minTotal?: number;
  maxTotal?: number;
}

export interface ListRequest {
  filters: OrderFilters;
  limit: number;
  cursor?: string;
}

/** One order in a listing: what the search index holds of it. */
export interface OrderSummary {
  orderId: string;
  status: OrderStatus | undefined;
  customerId: string | undefined;
  /** Minor units (cents), as in the order; absent for an order placed before listings existed. */
  total?: number;
  currency?: string;
  /** When the order was accepted (for an order placed before listings existed: when its saga started). */
  createdAt: string;
  /** When the status last changed; for an order placed before listings existed, until its next change, when it was placed. */
  updatedAt: string;
  /** The saga's own state in Temporal: RUNNING until it ends (COMPENSATION_FAILED sagas keep running). */
  sagaStatus: string;
  links: { self: string };
}

export interface OrderPage {
  orders: OrderSummary[];
  /** Present when there may be more: send it as `cursor` with the same filters. */
  nextCursor?: string;
  source: 'search-index';
  consistency: string;
}

/** A filter that cannot be used: `parameter` names it, `message` says what it takes. */
export class InvalidListFilter extends Error {
  constructor(readonly problems: { field: string; message: string }[]) {
    super(problems.map((p) => `${p.field} ${p.message}`).join('; '));
    this.name = 'InvalidListFilter';
  }
}

/** The search index did not answer: 503. */
export class SearchIndexUnavailable extends Error {
  constructor(cause: unknown) {
    super('the search index (Temporal visibility) did not answer', { cause });
    this.name = 'SearchIndexUnavailable';
  }
}

/** Whether a customer id can hold orders (an order's customerId has this form): one that cannot lists nothing. */
export const isCustomerId = (id: string): boolean => CUSTOMER_ID.test(id);

/**
 * Temporal refused the query this code wrote: the namespace lacks the saga's search attributes
 * (a deployment that skipped their registration), not the caller's fault; a retry does not help.
 */
export class SearchIndexRefused extends Error {
  constructor(readonly temporalSaid: string) {
    super(
      `Temporal refused the listing query (${temporalSaid.slice(0, 300)}): its namespace may lack the saga's search attributes ` +
        '(OrderStatus, CustomerId, OrderTotal, OrderUpdatedAt); an operator registers them with ' +
        'deploy/helm/order-saga/files/register-search-attributes.sh (docs/deployment.md)',
    );
    this.name = 'SearchIndexRefused';
  }
}

/** Checks the query parameters of GET /orders; every problem is named, none is ignored. */
export function parseListQuery(query: Record<string, unknown>): ListRequest {
  const problems: { field: string; message: string }[] = [];
  const shape = listOrdersQuerySchema.safeParse(query);
  if (!shape.success) {
    for (const issue of shape.error.issues) {
      if (issue.code === 'unrecognized_keys')
        for (const key of issue.keys)
          problems.push({
            field: key.slice(0, 64),
            message: `is not a filter; the filters are ${Object.keys(listOrdersQuerySchema.shape).join(', ')}`,
          });
      else problems.push({ field: String(issue.path[0] ?? '(query)'), message: 'must be given once, as text' });
    }
    throw new InvalidListFilter(problems);
  }
  const q = shape.data;
  const filters: OrderFilters = {};
  const problem = (field: string, message: string) => problems.push({ field, message });

  if (q.status !== undefined) {
    const named = (Array.isArray(q.status) ? q.status : [q.status]).flatMap((text) => text.split(','));
    const unknown = named.filter((name) => !(ORDER_STATUSES as readonly string[]).includes(name));
    if (named.length === 0 || unknown.length > 0)
      problem(
        'status',
        `has ${unknown.length > 0 ? `unknown status ${JSON.stringify(unknown[0]!.slice(0, 40))}` : 'no status'}; use ${ORDER_STATUSES.join(', ')}`,
      );
    // In the contract's order: the same statuses in any order make the same query (and cursor).
    else filters.statuses = ORDER_STATUSES.filter((status) => named.includes(status));
  }
  if (q.customerId !== undefined) {
    if (CUSTOMER_ID.test(q.customerId)) filters.customerId = q.customerId;
    else problem('customerId', 'must be 1 to 128 letters, digits and . _ : @ - characters, as in the order');
  }
  for (const field of ['createdAfter', 'createdBefore', 'changedAfter', 'changedBefore'] as const) {
    const text = q[field];
    if (text === undefined) continue;
    const time = parseTime(text);
    if (time) filters[field] = time;
    else problem(field, 'must be an RFC 3339 time with its offset, e.g. 2026-12-06T09:30:00Z');
  }
  for (const field of ['minTotal', 'maxTotal'] as const) {
    const text = q[field];
    if (text === undefined) continue;
    if (TOTAL.test(text)) filters[field] = Number(text);
    else
      problem(field, "must be a number of at most 12 digits and 4 decimals, in the currency's major units, e.g. 12.50");
  }
  let limit = DEFAULT_PAGE_SIZE;
  if (q.limit !== undefined) {
    limit = /^\d{1,3}$/.test(q.limit) ? Number(q.limit) : 0;
    if (limit < 1 || limit > MAX_PAGE_SIZE) problem('limit', `must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
  }
  if (q.cursor !== undefined && !CURSOR.test(q.cursor))
    problem('cursor', "is not a cursor this API gave; send a page's nextCursor unchanged, or leave it out");
  if (problems.length > 0) throw new InvalidListFilter(problems);
  return { filters, limit, ...(q.cursor !== undefined && { cursor: q.cursor }) };
}

/** An RFC 3339 time with an offset (Z or ±hh:mm), between the years 1970 and 9999. */
function parseTime(text: string): Date | undefined {
  const parts = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(\.\d{1,9})?)?(Z|[+-](\d\d):(\d\d))$/i.exec(text);
  if (!parts) return undefined;
  const field = (index: number) => Number(parts[index] ?? 0);
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map(field) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [offsetHours, offsetMinutes] = [field(9), field(10)];
  // Each field in its range (Date would roll 2026-02-30 over to March); :60 is a leap second.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 60)
    return undefined;
  if (offsetHours > 23 || offsetMinutes > 59) return undefined;
  // A leap second is the last instant of its minute, as far as a filter can tell.
  const time = new Date(second === 60 ? text.replace(/:60(\.\d+)?/, ':59.999') : text);
  if (Number.isNaN(time.getTime()) || time.getUTCFullYear() < 1970 || time.getUTCFullYear() > 9999) return undefined;
  return time;
}

/**
 * The list query for these filters. Every literal is produced here: statuses from the contract's
 * list, a customer id checked against its pattern (no quote, no backslash, no space), times from
 * Date.toISOString(), numbers from Number. Exported for the test that tries to inject through it.
 */
export function listQuery(filters: OrderFilters): string {
  const clauses = [`WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}'`];
  if (filters.statuses) {
    for (const status of filters.statuses)
      if (!(ORDER_STATUSES as readonly string[]).includes(status)) throw new Error(`not a status: ${status}`);
    clauses.push(`OrderStatus IN (${filters.statuses.map((status) => `'${status}'`).join(', ')})`);
  }
  if (filters.customerId !== undefined) {
    if (!CUSTOMER_ID.test(filters.customerId)) throw new Error('a customer id outside its pattern reached the query');
    clauses.push(`CustomerId = '${filters.customerId}'`);
  }
  const time = (field: string, op: '>=' | '<', value: Date | undefined) => {
    if (value) clauses.push(`${field} ${op} '${value.toISOString()}'`);
  };
  time('StartTime', '>=', filters.createdAfter);
  time('StartTime', '<', filters.createdBefore);
  time(OrderUpdatedAtKey.name, '>=', filters.changedAfter);
  time(OrderUpdatedAtKey.name, '<', filters.changedBefore);
  const total = (op: '>=' | '<=', value: number | undefined) => {
    if (value === undefined) return;
    if (!Number.isFinite(value)) throw new Error('a total that is not a number reached the query');
    clauses.push(`${OrderTotalKey.name} ${op} ${value}`);
  };
  total('>=', filters.minTotal);
  total('<=', filters.maxTotal);
  return clauses.join(' AND ');
}

/** A cursor: Temporal's page token, tied to the query it pages through. */
function encodeCursor(query: string, token: Uint8Array): string {
  return Buffer.from(JSON.stringify({ q: fingerprint(query), t: Buffer.from(token).toString('base64') })).toString(
    'base64url',
  );
}

function decodeCursor(query: string, cursor: string): Buffer {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  const { q, t } = (decoded ?? {}) as { q?: unknown; t?: unknown };
  if (typeof q !== 'string' || typeof t !== 'string')
    throw new InvalidListFilter([
      {
        field: 'cursor',
        message: "is not a cursor this API gave; send a page's nextCursor unchanged, or leave it out",
      },
    ]);
  if (q !== fingerprint(query))
    throw new InvalidListFilter([
      {
        field: 'cursor',
        message:
          'belongs to a listing with other filters; send it with the filters of the page that gave it, or leave it out to start again',
      },
    ]);
  return Buffer.from(t, 'base64');
}

const fingerprint = (query: string) => createHash('sha256').update(query).digest('base64url').slice(0, 22);

/** One page of orders in the search index's order (docs/api.md, "Listing orders"): in progress first, newest first. */
export async function listOrders(
  client: Client,
  request: ListRequest,
  {
    deadlineMs = 5_000,
    onUndecodableMemo = () => {},
  }: {
    deadlineMs?: number;
    /** A memo the payload codec cannot read (a key missing from PAYLOAD_ENCRYPTION_KEYS): listed without its total. */
    onUndecodableMemo?: (workflowId: string, error: unknown) => void;
  } = {},
): Promise<OrderPage> {
  const query = listQuery(request.filters);
  const nextPageToken = request.cursor === undefined ? undefined : decodeCursor(query, request.cursor);
  let response;
  try {
    response = await client.connection.withDeadline(Date.now() + deadlineMs, () =>
      client.workflowService.listWorkflowExecutions({
        namespace: client.options.namespace,
        query,
        pageSize: request.limit,
        ...(nextPageToken && { nextPageToken }),
      }),
    );
  } catch (error) {
    const { code, details } = error as { code?: number; details?: string };
    if (code === GRPC_INVALID_ARGUMENT) {
      const said = details ?? (error as Error).message;
      // A cursor that passed its own check but not Temporal's (from another server, or expired).
      if (nextPageToken && !/search attribute/i.test(said))
        throw new InvalidListFilter([
          { field: 'cursor', message: 'is no longer valid (the index changed under it); leave it out to start again' },
        ]);
      throw new SearchIndexRefused(said);
    }
    throw new SearchIndexUnavailable(error instanceof ServiceError ? (error.cause ?? error) : error);
  }
  const { loadedDataConverter, namespace } = client.options;
  const orders = await Promise.all(
    response.executions.map(async (raw) => {
      try {
        return toSummary(await executionInfoFromRaw(raw, loadedDataConverter, raw, namespace));
      } catch (error) {
        onUndecodableMemo(raw.execution?.workflowId ?? '', error);
        // The same execution without its memo (a protobuf message: its defaults live on its prototype).
        const withoutMemo = Object.assign(Object.create(raw) as typeof raw, { memo: null });
        return toSummary(await executionInfoFromRaw(withoutMemo, loadedDataConverter, raw, namespace));
      }
    }),
  );
  const token = response.nextPageToken;
  return {
    orders,
    ...(token && token.length > 0 && { nextCursor: encodeCursor(query, token) }),
    source: 'search-index',
    consistency: LIST_CONSISTENCY,
  };
}

function toSummary(info: Awaited<ReturnType<typeof executionInfoFromRaw>>): OrderSummary {
  const orderId = info.workflowId.startsWith(ORDER_WORKFLOW_ID_PREFIX)
    ? info.workflowId.slice(ORDER_WORKFLOW_ID_PREFIX.length)
    : info.workflowId;
  const memo = info.memo?.[ORDER_SUMMARY_MEMO_KEY] as Partial<OrderSummaryMemo> | undefined;
  const updatedAt = info.typedSearchAttributes.get(OrderUpdatedAtKey);
  return {
    orderId,
    status: info.typedSearchAttributes.get(OrderStatusKey) as OrderStatus | undefined,
    customerId: info.typedSearchAttributes.get(CustomerIdKey),
    ...(typeof memo?.total === 'number' &&
      typeof memo.currency === 'string' && {
        total: memo.total,
        currency: memo.currency,
      }),
    createdAt: typeof memo?.createdAt === 'string' ? memo.createdAt : info.startTime.toISOString(),
    updatedAt: (updatedAt ?? info.startTime).toISOString(),
    sagaStatus: info.status.name,
    links: { self: `/orders/${orderId}` },
  };
}
