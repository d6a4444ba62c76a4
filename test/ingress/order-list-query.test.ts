// The list query GET /orders writes: whatever a caller sends through any filter, the query holds
// only literals this code produced, or the request is refused naming the filter. Property-based;
// reproduce a failing run with its seed: LIST_QUERY_SEED=<seed> npm test -- <this file>.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidListFilter, listOrdersQuerySchema, listQuery, parseListQuery } from '../../ingress/order-list.js';
import { ORDER_STATUSES } from '../../workflows/contract.js';

const SEED = Number(process.env.LIST_QUERY_SEED ?? Date.now() % 2 ** 31);
const FILTERS = Object.keys(listOrdersQuerySchema.shape);

const TIME = `'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'`;
const CLAUSE = [
  `OrderStatus IN \\('(?:${ORDER_STATUSES.join('|')})'(?:, '(?:${ORDER_STATUSES.join('|')})')*\\)`,
  `CustomerId = '[\\w.:@-]{1,128}'`,
  `StartTime (?:>=|<) ${TIME}`,
  `OrderUpdatedAt (?:>=|<) ${TIME}`,
  `OrderTotal (?:>=|<=) \\d{1,13}(?:\\.\\d{1,4})?`,
].join('|');
/** The whole language the ingress may write: anything else reaching Temporal is a defect. */
const GRAMMAR = new RegExp(`^WorkflowType = 'orderSaga'(?: AND (?:${CLAUSE}))*$`);

/** Values an attacker or a typo would send: near-valid ones, quotes, operators, control characters. */
const hostileText = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    ...ORDER_STATUSES,
    "'",
    "\\'",
    "''",
    ' OR 1=1',
    ') OR (',
    '2026-12-06T10:00:00Z',
    '12.50',
    '1e3',
    'NaN',
    'Infinity',
    '-0',
  ),
  fc
    .tuple(
      fc.constantFrom(...ORDER_STATUSES, '2026-12-06T10:00:00Z', '100', 'cust-1'),
      fc.constantFrom("'", "' OR '1'='1", ',', '\\', '\n'),
    )
    .map(([valid, tail]) => valid + tail),
);
/** A value each filter takes, so that queries of several clauses are reached, not only refusals. */
const validValue: Record<string, fc.Arbitrary<string>> = {
  status: fc.subarray([...ORDER_STATUSES], { minLength: 1 }).map((statuses) => statuses.join(',')),
  customerId: fc.stringMatching(/^[\w.:@-]{1,40}$/),
  createdAfter: fc
    .date({ min: new Date('1970-01-01'), max: new Date('9999-12-31'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  createdBefore: fc
    .date({ min: new Date('1970-01-01'), max: new Date('9999-12-31'), noInvalidDate: true })
    .map((d) => d.toISOString().replace('Z', '+05:30')),
  changedAfter: fc
    .date({ min: new Date('1971-01-01'), max: new Date('2100-12-31'), noInvalidDate: true })
    .map((d) => d.toISOString().slice(0, 19) + 'Z'),
  changedBefore: fc
    .date({ min: new Date('1971-01-01'), max: new Date('2100-12-31'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  minTotal: fc.tuple(fc.nat(999_999_999), fc.nat(9999)).map(([whole, cents]) => `${whole}.${cents}`),
  maxTotal: fc.nat(999_999_999_999).map(String),
  limit: fc.integer({ min: 1, max: 100 }).map(String),
};
const filterValue = (filter: string) =>
  fc.oneof(
    // Own keys only: a drawn name such as `constructor` must not find Object's.
    { weight: 4, arbitrary: Object.hasOwn(validValue, filter) ? validValue[filter]! : hostileText },
    { weight: 1, arbitrary: hostileText },
    { weight: 1, arbitrary: fc.array(hostileText, { maxLength: 3 }) },
  );
const query = fc
  .uniqueArray(fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...FILTERS) }, fc.string({ maxLength: 12 })), {
    maxLength: 6,
  })
  .chain((keys) =>
    keys.length === 0
      ? fc.constant({})
      : fc
          .tuple(...keys.map((key) => filterValue(key)))
          .map((values) => Object.fromEntries(keys.map((key, i) => [key, values[i]]))),
  );

describe('the list query', () => {
  it(`when any text arrives through any filter, then the query holds only literals the ingress wrote, or the filter is refused (seed ${SEED})`, () => {
    const clauses: number[] = [];
    fc.assert(
      fc.property(query, (params) => {
        let request;
        try {
          request = parseListQuery(params);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidListFilter);
          expect((error as InvalidListFilter).problems.length).toBeGreaterThan(0);
          return;
        }
        const written = listQuery(request.filters);
        expect(written).toMatch(GRAMMAR);
        clauses.push(written.split(' AND ').length - 1);
      }),
      { seed: SEED, numRuns: 3_000 },
    );
    // The generator reaches queries of several clauses, not only refusals and the bare query.
    expect(clauses.filter((count) => count >= 2).length).toBeGreaterThan(150);
    expect(Math.max(...clauses)).toBeGreaterThanOrEqual(5);
  });

  it('when every filter is valid, then each becomes its clause, times in UTC and totals as numbers', () => {
    const request = parseListQuery({
      status: ['COMPLETED,AWAITING_APPROVAL', 'COMPLETED'],
      customerId: 'cust-1@shop',
      createdAfter: '2026-12-06T10:00:00+02:00',
      createdBefore: '2026-12-07T00:00:00Z',
      changedAfter: '2026-12-06T08:00:00.5Z',
      changedBefore: '2026-12-06T09:00:00Z',
      minTotal: '012.50',
      maxTotal: '99',
      limit: '7',
    });
    expect(request.limit).toBe(7);
    expect(listQuery(request.filters)).toBe(
      "WorkflowType = 'orderSaga' AND OrderStatus IN ('AWAITING_APPROVAL', 'COMPLETED') AND CustomerId = 'cust-1@shop' " +
        "AND StartTime >= '2026-12-06T08:00:00.000Z' AND StartTime < '2026-12-07T00:00:00.000Z' " +
        "AND OrderUpdatedAt >= '2026-12-06T08:00:00.500Z' AND OrderUpdatedAt < '2026-12-06T09:00:00.000Z' " +
        'AND OrderTotal >= 12.5 AND OrderTotal <= 99',
    );
  });

  it('when nothing is asked, then every order saga is listed, 20 to a page', () => {
    const request = parseListQuery({});
    expect(request).toEqual({ filters: {}, limit: 20 });
    expect(listQuery(request.filters)).toBe("WorkflowType = 'orderSaga'");
  });
});
