// The ingress's access to the order sagas in Temporal: read an order (the saga's answer, its
// stored result, or what Temporal recorded), send a decision, check an order's owner or whether
// its stock may be released. Temporal's errors leave as problems: 404 for an order Temporal does
// not know, 409 for a decision that no longer applies, 503 with Retry-After when nobody answers.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApplicationFailure,
  Client,
  QueryRejectedError,
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import type { Logger } from '../lib/logger.js';
import {
  CustomerIdKey,
  getStatusQuery,
  orderWorkflowId,
  OrderStatusKey,
  type DecisionAccepted,
  type OrderStatusDocument,
} from '../workflows/contract.js';
import { FailureType } from '../domain/failures.js';
import type { Caller } from './callers.js';
import { mayActOn } from './order-access.js';
import { listOrders, type ListRequest } from './order-list.js';
import { HttpProblem, orderNotFound, serviceUnavailable } from './problems.js';

/** How long a read waits for the saga's own answer before it falls back to what Temporal recorded. */
const QUERY_DEADLINE_MS = 3_000;
/** How long cancel and approve wait for the saga to take or refuse the update. */
const UPDATE_DEADLINE_MS = 10_000;
/** Between a decision Temporal lost on its way to a running saga and sending it again. */
const DECISION_RESEND_PAUSE_MS = 250;

/**
 * What GET /orders/:orderId answers. `source` says where it came from: `saga` (the running saga
 * answered), `result` (the closed saga's stored result), or `recorded` (the saga could not answer
 * in time, or ended without a result: the status and customer Temporal recorded at its last change).
 */
export type OrderView =
  | (OrderStatusDocument & { source: 'saga' | 'result' })
  | {
      source: 'recorded';
      orderId: string;
      workflowId: string;
      status: string | undefined;
      customerId: string | undefined;
      workflowStatus: string;
      detail: string;
    };

export type SagaHandle = ReturnType<Client['workflow']['getHandle']>;
export type OrderSagas = ReturnType<typeof orderSagas>;

export function orderSagas(client: Client, logger: Logger, retryAfter: string) {
  // Queries on a closed saga are refused by the server (no worker asked): its stored result answers instead.
  const temporal = new Client({
    ...client.options,
    workflow: { ...client.options.workflow, queryRejectCondition: 'NOT_OPEN' },
  });
  const withinMs = <T>(ms: number, work: () => Promise<T>) => temporal.connection.withDeadline(Date.now() + ms, work);
  const handleOf = (orderId: string) => temporal.workflow.getHandle(orderWorkflowId(orderId));

  /** 404 for an order Temporal does not know, 503 when Temporal does not answer. */
  function temporalProblem(error: unknown, orderId: string, what: string): unknown {
    if (error instanceof WorkflowNotFoundError) return orderNotFound(orderId);
    if (error instanceof ServiceError || error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      logger.warn({ err: error, orderId }, 'Temporal unavailable');
      return serviceUnavailable(`${what} is unavailable right now; retry after ${retryAfter} seconds`, retryAfter);
    }
    return error;
  }

  /**
   * A decision whose update timed out: Temporal unreachable, or Temporal answers but the saga did
   * not take the update in time because no worker completed its workflow task (its worker is down,
   * or the task fails on every attempt). Told apart by asking Temporal about the saga, so the log
   * and the answer send the operator to the saga, not to a Temporal server that is fine.
   */
  async function updateTimedOut(error: unknown, orderId: string): Promise<unknown> {
    const workflowId = orderWorkflowId(orderId);
    let description: WorkflowExecutionDescription;
    try {
      description = await withinMs(QUERY_DEADLINE_MS, () => temporal.workflow.getHandle(workflowId).describe());
    } catch {
      return temporalProblem(error, orderId, 'the order'); // Temporal does not answer either
    }
    const attempt = description.raw.pendingWorkflowTask?.attempt ?? 0;
    const task =
      attempt > 1
        ? `its workflow task has failed ${attempt - 1} time(s) in a row`
        : 'its workflow task was not completed (no worker took it, or it failed)';
    logger.warn(
      { err: error, orderId, workflowId, workflowStatus: description.status.name, workflowTaskAttempt: attempt },
      'the saga did not answer in time (its workflow task may be failing; see the Web UI)',
    );
    return serviceUnavailable(
      `the saga of order ${orderId} did not answer in time: Temporal answers, but ${task}; see workflow ${workflowId} ` +
        'in the Temporal Web UI (its worker may be down, or the task fails: the error is on the task). The decision may ' +
        `still take effect once the task completes: check GET /orders/${orderId} before you retry, after ${retryAfter} seconds`,
      retryAfter,
    );
  }

  async function describe(handle: SagaHandle, orderId: string): Promise<WorkflowExecutionDescription> {
    try {
      return await withinMs(QUERY_DEADLINE_MS, () => handle.describe());
    } catch (error) {
      throw temporalProblem(error, orderId, 'order status');
    }
  }

  /**
   * The saga's own answer while it runs (one call), its stored result once closed; what Temporal
   * recorded when the saga cannot answer in time or ended without a result.
   */
  async function statusOf(orderId: string): Promise<OrderView> {
    const handle = handleOf(orderId);
    try {
      return { ...(await withinMs(QUERY_DEADLINE_MS, () => handle.query(getStatusQuery))), source: 'saga' };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw temporalProblem(error, orderId, 'order status');
      if (error instanceof QueryRejectedError) {
        const result = await withinMs(QUERY_DEADLINE_MS, () => handle.result() as Promise<OrderStatusDocument>).catch(
          () => undefined,
        );
        if (result) return { ...result, source: 'result' };
      } else {
        logger.warn({ err: error, orderId }, 'the saga did not answer; answering what Temporal recorded');
      }
    }
    const description = await describe(handle, orderId);
    return {
      source: 'recorded',
      orderId,
      workflowId: description.workflowId,
      status: description.typedSearchAttributes.get(OrderStatusKey),
      customerId: description.typedSearchAttributes.get(CustomerIdKey),
      workflowStatus: description.status.name,
      detail:
        description.status.name === 'RUNNING'
          ? 'the saga did not answer in time (its worker may be down): this is the status recorded at its last change'
          : `the saga ended ${description.status.name} without a result: this is the status recorded at its last change`,
    };
  }

  /** A customer's decision on someone else's order is "not found", as for an unknown order. */
  async function requireOwnOrder(caller: Caller, orderId: string): Promise<void> {
    const description = await describe(handleOf(orderId), orderId);
    if (!mayActOn(caller, description.typedSearchAttributes.get(CustomerIdKey))) throw orderNotFound(orderId);
  }

  /** Refuses (409) to touch the stock of an order whose saga runs or completed; answers whether a saga exists. */
  async function requireSagaWithoutStock(orderId: string): Promise<boolean> {
    let description: WorkflowExecutionDescription;
    try {
      description = await withinMs(QUERY_DEADLINE_MS, () => handleOf(orderId).describe());
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw temporalProblem(error, orderId, 'the order');
    }
    const refused = (detail: string, orderStatus: string | undefined) =>
      new HttpProblem(409, 'Reservation not released', detail, { orderStatus });
    if (description.status.name === 'RUNNING') {
      const status = description.typedSearchAttributes.get(OrderStatusKey);
      throw refused(
        `the saga of order ${orderId} is running (${status ?? 'status not recorded yet'}): it gives the stock back itself ` +
          'if the order does not complete; cancel the order instead',
        status,
      );
    }
    const { status } = await statusOf(orderId);
    if (status === 'COMPLETED')
      throw refused(`order ${orderId} completed: its reserved units went to the customer and stay reserved`, status);
    return true;
  }

  /**
   * Sends a cancel or approve update and answers what the saga decided: taken, or a 409 naming the
   * status when it no longer applies (also when the saga has already closed).
   *
   * Temporal answers "not found" for an unknown or closed saga, but also for a running one when it
   * lost the update on its way (the worker holding the saga died while the update was being
   * delivered): the update then took no effect. So "not found" is checked against the saga itself:
   * closed → 409, running → the update is sent again within the deadline, then 503 (nothing was
   * decided; the client retries). It used to be answered 409 "it has ended", with the saga still
   * waiting for the approval that was dropped.
   *
   * Each decision has one update id per order (decisionUpdateId): a repeat of a decision the saga
   * took, by a client's retry or by the resend above, is answered by Temporal with the first one's
   * answer, also after the saga closed; a refused update is not kept, so a repeat is asked anew.
   */
  async function decide(
    orderId: string,
    refusedTitle: string,
    send: (handle: SagaHandle) => Promise<DecisionAccepted>,
  ): Promise<DecisionAccepted> {
    const handle = handleOf(orderId);
    const deadline = Date.now() + UPDATE_DEADLINE_MS;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await withinMs(Math.max(deadline - Date.now(), 1), () => send(handle));
      } catch (error) {
        const refusal = error instanceof WorkflowUpdateFailedError ? error.cause : undefined;
        if (refusal instanceof ApplicationFailure && refusal.type === FailureType.updateRefused) {
          const { status } = (refusal.details?.[0] ?? {}) as { status?: string };
          throw new HttpProblem(409, refusedTitle, refusal.message, { orderStatus: status });
        }
        // The saga's bounds on a decision's text (e.g. a caller id longer than an actor may be).
        if (refusal instanceof ApplicationFailure && refusal.type === FailureType.decisionInputInvalid)
          throw new HttpProblem(422, refusedTitle, refusal.message);
        if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) throw await updateTimedOut(error, orderId);
        if (!(error instanceof WorkflowNotFoundError)) throw temporalProblem(error, orderId, 'the order');
      }
      const description = await describe(handle, orderId); // 404 for an order with no saga
      if (description.status.name !== 'RUNNING') {
        const closed = await statusOf(orderId);
        throw new HttpProblem(409, refusedTitle, `order ${orderId} is ${closed.status}; it has ended`, {
          orderStatus: closed.status,
        });
      }
      logger.warn({ orderId, attempt }, 'Temporal lost a decision on its way to a running saga; sending it again');
      if (Date.now() + DECISION_RESEND_PAUSE_MS >= deadline) {
        throw serviceUnavailable(
          `the decision did not reach the saga of order ${orderId} (its worker may be restarting); nothing was decided: retry after ${retryAfter} seconds`,
          retryAfter,
        );
      }
      await sleep(DECISION_RESEND_PAUSE_MS);
    }
  }

  /** One page of orders from the search index (order-list.ts). */
  const list = (request: ListRequest) =>
    listOrders(temporal, request, {
      onUndecodableMemo: (workflowId, error) =>
        logger.warn({ err: error, workflowId }, 'listed an order without its total: its memo could not be decoded'),
    });

  return { statusOf, requireOwnOrder, requireSagaWithoutStock, decide, list };
}
