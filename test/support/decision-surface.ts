// The generated side of the decision-surface property test (test/workflows/decision-surface.property.test.ts):
// what a run is (an order, gateway faults, the decisions people send and the faults between them),
// how fast-check draws one, and the invariants that need no server to check (audit against the
// status history). Payloads are kept symbolic (OVERSIZED stands for 600 KB of text) so a failing
// run's counterexample prints in a few lines.
import fc from 'fast-check';
import { auditEventTypeFor, COMPENSATION_EVENT_TYPES } from '../../domain/events.js';
import {
  auditEventId,
  ORDER_STATUSES,
  TERMINAL_STATUSES,
  type OrderStatus,
  type OrderStatusDocument,
} from '../../workflows/contract.js';

/** Stands for a string of OVERSIZED_LENGTH characters: past any sensible bound, under Temporal's 2 MB payload limit. */
export const OVERSIZED = '<600 KB of text>';
export const OVERSIZED_LENGTH = 600_000;

/**
 * What a payload is meant to be. `malformed`: a field of the wrong type, or no JSON object at all;
 * such a decision must change nothing (a signal is dropped, an update refused). `oversized` and
 * `null` may be taken (bounded, or read as absent) or refused; only the end-state invariants apply.
 */
export type PayloadKind = 'valid' | 'malformed' | 'oversized' | 'null';

export interface Payload {
  kind: PayloadKind;
  /** The argument, OVERSIZED standing for the long text; undefined: sent with no argument. */
  value: unknown;
}

export type DecisionName = 'cancel' | 'approve';
export type OperatorAnswerName = 'retryCompensation' | 'resolveManually';

export type Action =
  | {
      kind: DecisionName;
      via: 'signal' | 'update';
      payload: Payload;
      /** The workflow task in which it arrives is lost until the test heals the fault (test/support/workflow-faults). */
      loseTask: boolean;
      delayMs: number;
    }
  | { kind: OperatorAnswerName; payload: Payload; delayMs: number }
  | { kind: 'restartWorker'; delayMs: number };

/** Gateway faults for the run (see sandbox/payment-gateway/server.ts); cleared once the actions are done. */
export type GatewayFaults =
  | { kind: 'none' }
  | { kind: 'slowCharges'; chargeLatencyMs: number }
  | { kind: 'refundOutage' }
  | { kind: 'outage'; healAfterMs: number }
  | { kind: 'chargeThenTimeout' };

export interface Scenario {
  /** The order's total is above the approval threshold. */
  approval: boolean;
  approvalTimeoutMs: number;
  paymentToken: 'tok_visa' | 'tok_decline';
  /** `short`: one unit in stock for an order of two. */
  stock: 'enough' | 'short';
  faults: GatewayFaults;
  actions: Action[];
  /** How the test drives a saga out of COMPENSATION_FAILED at the end. */
  finalAnswer: OperatorAnswerName;
}

const text = fc.constantFrom('changed my mind', '  ops-lead  ', '', 'Zoë, ticket #12');
const wrongType = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.boolean(),
  fc.constant([]),
  fc.constant(['a']),
  fc.constant({}),
  fc.constant({ nested: 'x' }),
);
const notAnObject = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.constant('cancel'),
  fc.constant([1, 2]),
  fc.constant(true),
);

/** Payloads of a decision whose input object has these text `fields`. */
function payloadsWith(fields: readonly string[]): fc.Arbitrary<Payload> {
  const validObject = fc.record(Object.fromEntries(fields.map((f) => [f, text])), {
    requiredKeys: [],
    noNullPrototype: true,
  });
  const valid = fc.oneof(fc.constant(undefined), validObject).map((value) => ({ kind: 'valid' as const, value }));
  const badField =
    fields.length === 0
      ? notAnObject
      : fc
          .tuple(fc.constantFrom(...fields), wrongType, validObject)
          .map(([field, bad, rest]) => ({ ...rest, [field]: bad }));
  const malformed = fc.oneof(badField, notAnObject).map((value) => ({ kind: 'malformed' as const, value }));
  const kinds: fc.Arbitrary<Payload>[] = [
    valid,
    valid,
    malformed,
    malformed,
    fc.constant({ kind: 'null', value: null }),
  ];
  if (fields.length > 0)
    kinds.push(
      fc
        .tuple(fc.constantFrom(...fields), validObject)
        .map(([field, rest]) => ({ kind: 'oversized' as const, value: { ...rest, [field]: OVERSIZED } })),
    );
  return fc.oneof(...kinds);
}

const delayMs = fc.integer({ min: 0, max: 400 });
const decision = (kind: DecisionName, fields: readonly string[]) =>
  fc.record(
    {
      kind: fc.constant(kind),
      via: fc.constantFrom('signal' as const, 'update' as const),
      payload: payloadsWith(fields),
      loseTask: fc.boolean().chain((lose) => (lose ? fc.boolean() : fc.constant(false))), // one in four
      delayMs,
    },
    { noNullPrototype: true },
  );
const operatorAnswer = (kind: OperatorAnswerName, fields: readonly string[]) =>
  fc.record({ kind: fc.constant(kind), payload: payloadsWith(fields), delayMs }, { noNullPrototype: true });

export const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: decision('cancel', ['reason', 'cancelledBy']) },
  { weight: 4, arbitrary: decision('approve', ['approvedBy']) },
  { weight: 1, arbitrary: operatorAnswer('retryCompensation', []) },
  { weight: 1, arbitrary: operatorAnswer('resolveManually', ['note']) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('restartWorker' as const), delayMs }, { noNullPrototype: true }),
  },
);

export const scenarioArbitrary: fc.Arbitrary<Scenario> = fc.record(
  {
    approval: fc.boolean(),
    approvalTimeoutMs: fc.integer({ min: 2_000, max: 5_000 }),
    paymentToken: fc.constantFrom('tok_visa' as const, 'tok_visa' as const, 'tok_decline' as const),
    stock: fc.constantFrom('enough' as const, 'enough' as const, 'enough' as const, 'short' as const),
    faults: fc.oneof(
      { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
      fc.record(
        { kind: fc.constant('slowCharges' as const), chargeLatencyMs: fc.integer({ min: 100, max: 600 }) },
        { noNullPrototype: true },
      ),
      fc.constant({ kind: 'refundOutage' as const }),
      fc.record(
        { kind: fc.constant('outage' as const), healAfterMs: fc.integer({ min: 200, max: 2_000 }) },
        { noNullPrototype: true },
      ),
      fc.constant({ kind: 'chargeThenTimeout' as const }),
    ),
    actions: fc.array(actionArbitrary, { minLength: 1, maxLength: 6 }),
    finalAnswer: fc.constantFrom('retryCompensation' as const, 'resolveManually' as const),
  },
  { noNullPrototype: true },
);

/** The payload as sent: OVERSIZED replaced by the long text. */
export function materialize(value: unknown): unknown {
  if (value === OVERSIZED) return 'x'.repeat(OVERSIZED_LENGTH);
  if (Array.isArray(value)) return value.map(materialize);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, materialize(v)]));
  return value;
}

/** A payload for a log line (symbolic, so short). */
export function show(payload: Payload): string {
  return payload.value === undefined ? '(no argument)' : JSON.stringify(payload.value);
}

const STATUS_EVENT_TYPES = new Set(ORDER_STATUSES.map((status) => auditEventTypeFor(status)));
const FORWARD_STATUSES: readonly OrderStatus[] = [
  'RECEIVED',
  'AWAITING_APPROVAL',
  'RESERVING_INVENTORY',
  'CHARGING_PAYMENT',
  'NOTIFYING',
];
const RESOLVED_EVENT = 'CompensationResolvedManually';

/** Exactly one terminal status in the lived history, and it is the last one and the result's. */
export function outcomeViolations(result: OrderStatusDocument): string[] {
  const lived = result.history.map((h) => h.status);
  const terminal = lived.filter((s) => TERMINAL_STATUSES.includes(s));
  const violations: string[] = [];
  if (terminal.length !== 1)
    violations.push(`the history holds ${terminal.length} terminal statuses: ${lived.join(' → ')}`);
  if (!TERMINAL_STATUSES.includes(result.status))
    violations.push(`the saga returned in ${result.status}, not an outcome`);
  if (lived.at(-1) !== result.status)
    violations.push(`the history ends in ${String(lived.at(-1))} but the result says ${result.status}`);
  return violations;
}

/**
 * The audit trail against the lived history: ids unique and numbered 1..n in order; the status
 * events are the history's statuses; the other events are one per compensation (its event when
 * done, CompensationResolvedManually when resolved by hand), in the compensations' order, after
 * the last forward status and before the outcome, which comes last; a manual resolution right
 * after COMPENSATION_FAILED and before COMPENSATING.
 */
export function auditViolations(
  audit: readonly { id: string; type: string }[],
  result: OrderStatusDocument,
  workflowId: string,
  runId: string,
): string[] {
  const violations: string[] = [];
  const types = audit.map((e) => e.type);
  const ids = audit.map((e) => e.id);
  if (new Set(ids).size !== ids.length) violations.push(`audit ids repeat: ${ids.join(', ')}`);
  const expectedIds = audit.map((_, i) => auditEventId(workflowId, runId, i + 1));
  if (ids.join() !== expectedIds.join())
    violations.push(
      `audit ids are not numbered 1..${ids.length} in order: ${ids.map((id) => id.split(':').at(-1)).join(', ')}`,
    );

  const statusEvents = types.filter((t) => STATUS_EVENT_TYPES.has(t));
  const lived = result.history.map((h) => auditEventTypeFor(h.status));
  if (statusEvents.join() !== lived.join())
    violations.push(
      `audit status events [${statusEvents.join(', ')}] differ from the lived history [${lived.join(', ')}]`,
    );

  const otherEvents = types.filter((t) => !STATUS_EVENT_TYPES.has(t));
  const expectedOther = result.compensations.map((c) =>
    c.status === 'DONE'
      ? COMPENSATION_EVENT_TYPES[c.step]
      : c.status === 'RESOLVED_MANUALLY'
        ? RESOLVED_EVENT
        : `(${c.step} ${c.status})`,
  );
  if (otherEvents.join() !== expectedOther.join())
    violations.push(
      `audit compensation events [${otherEvents.join(', ')}] differ from the compensations [${expectedOther.join(', ')}]`,
    );

  const forwardTypes = new Set(FORWARD_STATUSES.map((s) => auditEventTypeFor(s)));
  const lastForward = types.findLastIndex((t) => forwardTypes.has(t));
  const firstOther = types.findIndex((t) => !STATUS_EVENT_TYPES.has(t));
  if (firstOther !== -1 && firstOther < lastForward)
    violations.push(`a compensation event precedes a forward status in the audit: ${types.join(', ')}`);
  if (types.at(-1) !== auditEventTypeFor(result.status))
    violations.push(`the audit does not end with the outcome ${auditEventTypeFor(result.status)}: ${types.join(', ')}`);
  types.forEach((t, i) => {
    if (t === RESOLVED_EVENT && (types[i - 1] !== 'OrderCompensationFailed' || types[i + 1] !== 'OrderCompensating'))
      violations.push(`a manual resolution is not between COMPENSATION_FAILED and COMPENSATING: ${types.join(', ')}`);
  });
  return violations;
}
