// Reading the failures activities raise: the business reason for the status document, and
// whether the payment circuit was open (and for how long the saga should wait).
import { FailureType } from '../../domain/failures.js';
import type { OrderStatus } from '../contract.js';

/** Longest wait for an open payment circuit before the compensation tries again. */
const MAX_CIRCUIT_WAIT_MS = 60_000;

interface FailureInfo {
  type?: string;
  message?: string;
  details?: unknown[];
}

/** The innermost cause of a failure: the ApplicationFailure an activity raised. */
function innermost(error: unknown): FailureInfo | undefined {
  let current: unknown = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current as FailureInfo | undefined;
}

/** The business reason of a step failure: the innermost ApplicationFailure's type and message. */
export function describeFailure(error: unknown, status: OrderStatus): { type: string; message: string; step: string } {
  const failure = innermost(error);
  return { type: failure?.type ?? 'Error', message: failure?.message ?? String(error), step: status };
}

/**
 * When `error` says the payment circuit is open: how long to wait, and the number of the attempt
 * that met it (the attempts before it really failed). Undefined for any other failure.
 */
export function openCircuit(error: unknown): { waitMs: number; attempt: number } | undefined {
  const failure = innermost(error);
  if (failure?.type !== FailureType.circuitOpen) return undefined;
  const { retryAfterMs, attempt } = (failure.details?.[0] ?? {}) as { retryAfterMs?: unknown; attempt?: unknown };
  return {
    waitMs: typeof retryAfterMs === 'number' && retryAfterMs > 0 ? Math.min(retryAfterMs, MAX_CIRCUIT_WAIT_MS) : 1_000,
    attempt: typeof attempt === 'number' && attempt >= 1 ? attempt : 1,
  };
}
