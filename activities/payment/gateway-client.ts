// HTTP client for the payment gateway, behind circuit breakers (one per operation and worker
// process, so a refunds-only outage does not stop charges, nor the reverse).
// Idempotency keys come from the order id and the operation, so every retry, redelivery
// or restart asks the gateway for the same charge, never a second one.
import {
  BrokenCircuitError,
  circuitBreaker,
  ConsecutiveBreaker,
  CircuitState,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { Histogram } from 'prom-client';
import { trace } from '@opentelemetry/api';
import { activeTraceHeaders, inSpan, SpanKind } from '../../lib/telemetry.js';

/** The gateway refused the card; retrying will not change that. */
export class PaymentDeclinedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PaymentDeclinedError';
  }
}

/** The gateway could not be reached or failed (5xx, timeout, network); worth retrying later. */
export class GatewayUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatewayUnavailableError';
  }
}

/** The breaker is open: calls fail fast until `retryAfterMs` has passed. */
export class CircuitOpenError extends Error {
  constructor(readonly retryAfterMs: number) {
    super(`payment gateway circuit is open; next try in ${retryAfterMs} ms`);
    this.name = 'CircuitOpenError';
  }
}

/**
 * The gateway is still processing an earlier request for this order (the same charge key, or a
 * charge a refund must wait for): its outcome decides what to do, so ask again shortly. Not a
 * gateway failure: it does not count towards the breaker.
 */
export class PaymentInProgressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PaymentInProgressError';
  }
}

/** The gateway rejected our request as malformed: a bug on our side, not worth retrying. */
export class GatewayRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'GatewayRequestError';
  }
}

export interface ChargeRequest {
  orderId: string;
  amount: number;
  currency: string;
  paymentToken: string;
}

export interface PaymentGatewayOptions {
  baseUrl: string;
  timeoutMs: number;
  breakerFailureThreshold: number;
  breakerHalfOpenAfterMs: number;
  /** payment_process_duration_seconds, labelled by operation and outcome. */
  duration?: Histogram<'operation' | 'outcome'>;
}

/** Idempotency key of an operation on an order: the same for every attempt, run and worker. */
export function idempotencyKey(orderId: string, operation: 'charge' | 'refund'): string {
  return `order-${orderId}-${operation}`;
}

export type PaymentOperation = 'charge' | 'refund';
export const PAYMENT_OPERATIONS: readonly PaymentOperation[] = ['charge', 'refund'];

/** A breaker and when it last opened. */
interface Circuit {
  policy: CircuitBreakerPolicy;
  openedAt: number;
}

export class PaymentGatewayClient {
  private readonly circuits: Record<PaymentOperation, Circuit>;

  constructor(private readonly options: PaymentGatewayOptions) {
    const circuit = (): Circuit => {
      const policy = circuitBreaker(
        handleWhen((error) => error instanceof GatewayUnavailableError),
        {
          halfOpenAfter: options.breakerHalfOpenAfterMs,
          breaker: new ConsecutiveBreaker(options.breakerFailureThreshold),
        },
      );
      const created: Circuit = { policy, openedAt: 0 };
      policy.onBreak(() => (created.openedAt = Date.now()));
      return created;
    };
    this.circuits = { charge: circuit(), refund: circuit() };
  }

  /** The breaker of one operation: "closed", "open" or "half-open". */
  circuitState(operation: PaymentOperation): 'closed' | 'open' | 'half-open' {
    const state = this.circuits[operation].policy.state;
    return state === CircuitState.Closed ? 'closed' : state === CircuitState.HalfOpen ? 'half-open' : 'open';
  }

  /** Charges the order once; a repeated call returns the first charge. */
  async charge(request: ChargeRequest): Promise<{ chargeId: string }> {
    const body = await this.call('charge', '/v1/charges', idempotencyKey(request.orderId, 'charge'), {
      amount: request.amount,
      currency: request.currency,
      source: request.paymentToken,
      reference: request.orderId,
    });
    return { chargeId: String(body.id) };
  }

  /**
   * Refunds the order's charge, found by the order reference. The gateway settles the charge
   * first: while one is still being processed it answers 409 (PaymentInProgressError, retried);
   * when nothing was charged it closes the reference, so no charge can land after this answer.
   */
  async refund(orderId: string, amount: number, currency: string): Promise<{ refundId?: string; refunded: boolean }> {
    const body = await this.call('refund', '/v1/refunds', idempotencyKey(orderId, 'refund'), {
      reference: orderId,
      amount,
      currency,
    });
    return body.status === 'succeeded' ? { refundId: String(body.id), refunded: true } : { refunded: false };
  }

  private async call(
    operation: PaymentOperation,
    path: string,
    key: string,
    payload: object,
  ): Promise<Record<string, unknown>> {
    const stopTimer = this.options.duration?.startTimer({ operation });
    const circuit = this.circuits[operation];
    let outcome = 'error';
    try {
      const body = await circuit.policy.execute(() => this.post(path, key, payload));
      outcome = 'success';
      return body;
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        outcome = 'circuit_open';
        trace.getActiveSpan()?.addEvent(`payment gateway ${operation} circuit open: call not made`);
        const remaining = circuit.openedAt + this.options.breakerHalfOpenAfterMs - Date.now();
        throw new CircuitOpenError(Math.max(remaining, 100));
      }
      if (error instanceof PaymentDeclinedError) outcome = 'declined';
      if (error instanceof PaymentInProgressError) outcome = 'in_progress';
      throw error;
    } finally {
      stopTimer?.({ outcome });
    }
  }

  /** One HTTP call, as a client span whose context the gateway receives in `traceparent`. */
  private async post(path: string, key: string, payload: object): Promise<Record<string, unknown>> {
    const url = new URL(path, this.options.baseUrl);
    const attributes = { 'http.request.method': 'POST', 'url.full': url.href, 'server.address': url.hostname };
    return inSpan(`POST ${path}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key, ...activeTraceHeaders() },
          body: JSON.stringify(payload),
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
      } catch (error) {
        throw new GatewayUnavailableError(
          `payment gateway unreachable or too slow: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
      span.setAttribute('http.response.status_code', response.status);
      const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      if (response.ok) return body;
      const detail = (body.error ?? {}) as { code?: string; message?: string };
      if (response.status === 402)
        throw new PaymentDeclinedError(detail.code ?? 'card_declined', detail.message ?? 'the card was declined');
      if (response.status === 409 && (detail.code === 'idempotency_key_in_use' || detail.code === 'charge_in_progress'))
        throw new PaymentInProgressError(`payment gateway: ${detail.message ?? detail.code}`);
      if (response.status === 409 && detail.code === 'reference_closed')
        // A refund already settled this order with nothing charged: this charge must not happen.
        throw new PaymentDeclinedError(detail.code, detail.message ?? 'the order was closed by a refund');
      if (response.status >= 500 || response.status === 429) {
        throw new GatewayUnavailableError(
          `payment gateway answered ${response.status}: ${detail.message ?? 'no detail'}`,
        );
      }
      throw new GatewayRequestError(
        response.status,
        `payment gateway rejected the request (${response.status}): ${detail.message ?? 'no detail'}`,
      );
    });
  }
}
