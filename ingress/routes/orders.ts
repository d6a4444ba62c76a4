// Orders: place one, read one, cancel, approve. Each route parses, authorizes, calls one
// function and maps its result; errors leave as problems (../problems.ts).
import { Router, type RequestHandler, type Response } from 'express';
import { trace } from '@opentelemetry/api';
import type { Logger } from '../../lib/logger.js';
import { activeTraceId } from '../../lib/telemetry.js';
import { approveOrderUpdate, cancelOrderUpdate, decisionUpdateId } from '../../workflows/contract.js';
import type { DecisionAcceptedBody, OrderAccepted, OrderPageBody, OrderViewBody } from '../api-schemas.js';
import type { Caller } from '../callers.js';
import { listableCustomer, mayActOn, orderedAs } from '../order-access.js';
import { isCustomerId, LIST_CONSISTENCY, parseListQuery } from '../order-list.js';
import { IdempotencyConflictError, OrderNotStoredError, type OrderIntake } from '../order-intake.js';
import { parseOrderRequest } from '../order-request.js';
import type { OrderSagas } from '../order-sagas.js';
import { HttpProblem, invalidOrder, orderNotFound, serviceUnavailable } from '../problems.js';
import { idempotencyKeyHeader, optionalText, orderIdParam, requireJson, requireJsonIfBody } from '../request-params.js';

export interface OrderRouteDeps {
  intake: OrderIntake;
  sagas: OrderSagas;
  logger: Logger;
  callerOf: (res: Response) => Caller;
  jsonBody: RequestHandler;
  retryAfter: string;
}

export function orderRoutes({ intake, sagas, logger, callerOf, jsonBody, retryAfter }: OrderRouteDeps): Router {
  const router = Router();

  router.post('/orders', requireJson, jsonBody, async (req, res) => {
    const key = idempotencyKeyHeader(req);
    const parsed = parseOrderRequest(orderedAs(callerOf(res), req.body));
    if (!parsed.ok) throw invalidOrder(parsed.problems);
    const traceId = activeTraceId(); // the request's server span: the caller's trace when it sent one
    try {
      const idempotency = key === undefined ? undefined : { key, caller: callerOf(res) };
      const accepted = await intake.accept(parsed.value, idempotency, traceId);
      trace.getActiveSpan()?.setAttribute('order.id', accepted.orderId);
      logger.info(
        { orderId: accepted.orderId, workflowId: accepted.workflowId, replayed: accepted.replayed },
        accepted.replayed ? 'order already accepted for this Idempotency-Key' : 'order accepted',
      );
      res
        .status(202)
        .location(`/orders/${accepted.orderId}`)
        .json({
          orderId: accepted.orderId,
          workflowId: accepted.workflowId,
          status: 'RECEIVED',
          links: {
            self: `/orders/${accepted.orderId}`,
            cancel: `/orders/${accepted.orderId}/cancel`,
            approve: `/orders/${accepted.orderId}/approve`,
          },
        } satisfies OrderAccepted);
    } catch (error) {
      if (error instanceof IdempotencyConflictError) {
        throw new HttpProblem(
          422,
          'Idempotency-Key reused',
          `${error.message}; use a new key for a new order, or resend the original body`,
        );
      }
      if (error instanceof OrderNotStoredError) {
        logger.warn({ err: error.cause }, 'order not stored: JetStream unavailable');
        throw serviceUnavailable(
          `${error.message}. Retry after ${retryAfter} seconds with the same Idempotency-Key.`,
          retryAfter,
        );
      }
      throw error;
    }
  });

  // Orders by filter, newest first, a page at a time, from the search index (order-list.ts). A
  // customer lists its own whatever it asks for; services and operators list any.
  router.get('/orders', async (req, res) => {
    const request = parseListQuery(req.query);
    const caller = callerOf(res);
    const customerId = listableCustomer(caller, request.filters.customerId);
    const page =
      customerId !== undefined && !isCustomerId(customerId)
        ? { orders: [], source: 'search-index' as const, consistency: LIST_CONSISTENCY } // no order can have it
        : await sagas.list({ ...request, filters: { ...request.filters, customerId } });
    // The query already holds a customer to its own orders; checked again here, as GET /orders/:id
    // does, so that a search store comparing ids loosely (e.g. without case) cannot widen it.
    if (caller.role === 'customer') {
      const own = page.orders.filter((order) => mayActOn(caller, order.customerId));
      if (own.length < page.orders.length)
        logger.warn({ dropped: page.orders.length - own.length }, "the search index listed another customer's orders");
      page.orders = own;
    }
    const next = new URLSearchParams(req.query as Record<string, string | string[]>);
    if (page.nextCursor) next.set('cursor', page.nextCursor);
    res.json({
      ...page,
      ...(page.nextCursor && { links: { next: `/orders?${next.toString()}` } }),
    } satisfies OrderPageBody);
  });

  router.get('/orders/:orderId', async (req, res) => {
    const orderId = orderIdParam(req);
    const view = await sagas.statusOf(orderId);
    if (!mayActOn(callerOf(res), view.customerId)) throw orderNotFound(orderId);
    res.json(view satisfies OrderViewBody);
  });

  router.post('/orders/:orderId/cancel', requireJsonIfBody, jsonBody, async (req, res) => {
    const orderId = orderIdParam(req);
    const caller = callerOf(res);
    const reason = optionalText(req.body, 'reason') ?? `cancelled by the ${caller.role}`;
    if (caller.role === 'customer') await sagas.requireOwnOrder(caller, orderId);
    const decision = await sagas.decide(orderId, 'Order cannot be cancelled', (handle) =>
      handle.executeUpdate(cancelOrderUpdate, {
        args: [{ reason, cancelledBy: caller.id }],
        updateId: decisionUpdateId('cancelOrder', orderId),
      }),
    );
    res.status(202).json({
      orderId,
      update: 'cancelOrder',
      ...decision,
      links: { self: `/orders/${orderId}` },
    } satisfies DecisionAcceptedBody);
  });

  router.post('/orders/:orderId/approve', requireJsonIfBody, jsonBody, async (req, res) => {
    const orderId = orderIdParam(req);
    const caller = callerOf(res);
    if (caller.role !== 'operator') {
      // A customer learns nothing about other customers' orders: those stay "not found".
      if (caller.role === 'customer') await sagas.requireOwnOrder(caller, orderId);
      throw new HttpProblem(
        403,
        'Forbidden',
        `approving an order is an operator's act; you are authenticated as a ${caller.role}`,
      );
    }
    // The approver is who the credentials say, whatever the body claims; open mode has no verified identity.
    const claimed = optionalText(req.body, 'approvedBy');
    const approvedBy = caller.via === 'open' ? `unverified:${claimed ?? 'anonymous'}` : caller.id;
    const decision = await sagas.decide(orderId, 'Order cannot be approved', (handle) =>
      handle.executeUpdate(approveOrderUpdate, {
        args: [{ approvedBy }],
        updateId: decisionUpdateId('approveOrder', orderId),
      }),
    );
    res.status(202).json({
      orderId,
      update: 'approveOrder',
      ...decision,
      links: { self: `/orders/${orderId}` },
    } satisfies DecisionAcceptedBody);
  });

  return router;
}
