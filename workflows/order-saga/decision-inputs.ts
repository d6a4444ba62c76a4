// The inputs of the saga's signals and updates, checked where they arrive. Operators type them
// (`temporal workflow signal --input`, `tctl`, the Web UI), so anything may come: a number where
// text belongs, null, an array, megabytes of text. A handler that threw on such input would fail
// its workflow task, and since a signal stays in the history every retry (and every reset) would
// meet it again: the saga would be wedged for good. So each input is parsed here into what the
// saga needs, or into a reason it does not fit, which the handler logs and counts (signals) or
// the update's validator refuses with (updates). Free text is bounded: it goes into the status
// document, every later audit event and the customer's notice.
//
// Plain code without a schema library: the workflow bundle is evaluated once per saga.
import { DECISION_TEXT_LIMITS } from '../contract.js';

/** What the saga takes from a decision's input, or why the input does not fit. */
export type Parsed<T> = { ok: true; value: T; ignoredFields: string[] } | { ok: false; problem: string };

export interface CancelDecision {
  reason: string | undefined;
  cancelledBy: string | undefined;
}
export interface ApproveDecision {
  approvedBy: string | undefined;
}
export interface ResolveDecision {
  note: string | undefined;
}

export function parseCancelInput(input: unknown, bounded = true): Parsed<CancelDecision> {
  return parseObject(
    input,
    { reason: DECISION_TEXT_LIMITS.reason, cancelledBy: DECISION_TEXT_LIMITS.actor },
    bounded,
  ) as Parsed<CancelDecision>;
}

export function parseApproveInput(input: unknown, bounded = true): Parsed<ApproveDecision> {
  return parseObject(input, { approvedBy: DECISION_TEXT_LIMITS.actor }, bounded) as Parsed<ApproveDecision>;
}

export function parseResolveInput(input: unknown, bounded = true): Parsed<ResolveDecision> {
  return parseObject(input, { note: DECISION_TEXT_LIMITS.note }, bounded) as Parsed<ResolveDecision>;
}

export function parseRetryInput(input: unknown, bounded = true): Parsed<Record<string, never>> {
  return parseObject(input, {}, bounded) as Parsed<Record<string, never>>;
}

/**
 * An input is absent, or a JSON object whose known fields are each absent, null or a string within
 * its limit (trimmed; empty counts as absent). Unknown fields are ignored and reported, not refused:
 * a saga that took such a signal before must take it again when its history is replayed. Not
 * `bounded`: a saga started before the limits took text of any length, and replays it alike.
 */
function parseObject(
  input: unknown,
  limits: Record<string, number>,
  bounded: boolean,
): Parsed<Record<string, string | undefined>> {
  const expected = describeExpected(limits);
  if (input === undefined || input === null) return { ok: true, value: {}, ignoredFields: [] };
  if (typeof input !== 'object' || Array.isArray(input))
    return { ok: false, problem: `expected a JSON object ${expected}, got ${describe(input)}` };
  const fields = input as Record<string, unknown>;
  const value: Record<string, string | undefined> = {};
  for (const [field, limit] of Object.entries(limits)) {
    const given = fields[field];
    if (given === undefined || given === null) continue;
    if (typeof given !== 'string')
      return {
        ok: false,
        problem: `"${field}" must be a string of at most ${limit} characters, got ${describe(given)}`,
      };
    if (bounded && given.length > limit)
      return {
        ok: false,
        problem: `"${field}" is ${given.length} characters long; at most ${limit} are allowed`,
      };
    const trimmed = given.trim();
    if (trimmed) value[field] = trimmed;
  }
  const ignoredFields = Object.keys(fields).filter((field) => !(field in limits));
  return { ok: true, value, ignoredFields };
}

function describeExpected(limits: Record<string, number>): string {
  const fields = Object.entries(limits).map(([field, limit]) => `"${field}" (text, at most ${limit} characters)`);
  return fields.length === 0 ? '({})' : `with optional ${fields.join(', ')}`;
}

/** A short description of a value for a log line, never the value itself (it may be huge). */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  return `a value of type ${typeof value}`;
}
