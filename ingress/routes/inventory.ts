// Stock, for operators: read it, set the available units, or add to them. Reserved units are
// never touched. A change sent with an Idempotency-Key is applied once: a retry after a lost
// answer gets the first one's. The inventory belongs to the workers: the ingress asks one.
import { Router, type RequestHandler, type Response } from 'express';
import type { Logger } from '../../lib/logger.js';
import type { InventoryAdminReply, InventoryAdminRequest } from '../../lib/inventory-admin.js';
import type { ReservationRelease, StockChange, StockLevel } from '../api-schemas.js';
import type { Caller } from '../callers.js';
import { requireOperator } from '../order-access.js';
import type { OrderSagas } from '../order-sagas.js';
import { HttpProblem, serviceUnavailable } from '../problems.js';
import {
  idempotencyKeyHeader,
  requireJson,
  requireJsonIfBody,
  reservationOrderIdParam,
  skuParam,
  unitsField,
} from '../request-params.js';

export interface InventoryRouteDeps {
  /** Asks a worker to show or change stock (lib/inventory-admin.ts); rejects when no worker answers. */
  inventoryAdmin: (request: InventoryAdminRequest) => Promise<InventoryAdminReply>;
  sagas: OrderSagas;
  logger: Logger;
  callerOf: (res: Response) => Caller;
  jsonBody: RequestHandler;
  retryAfter: string;
}

export function inventoryRoutes(deps: InventoryRouteDeps): Router {
  const { sagas, callerOf, jsonBody } = deps;
  const router = Router();
  const inventoryAdmin = askWorker(deps);

  router.get('/inventory/:sku', async (req, res) => {
    requireOperator(callerOf(res), 'reading stock');
    const sku = skuParam(req);
    const { level } = await inventoryAdmin({ op: 'show', sku });
    if (!level) throw new HttpProblem(404, 'SKU not found', `no stock was ever put in for ${sku}; set it with PUT`);
    res.json(level satisfies StockLevel);
  });

  router.put('/inventory/:sku', requireJson, jsonBody, async (req, res) => {
    const caller = callerOf(res);
    requireOperator(caller, 'setting stock');
    const units = unitsField(req.body, 'available', 0);
    const idempotencyKey = idempotencyKeyHeader(req);
    const changed = await inventoryAdmin({ op: 'set', sku: skuParam(req), units, by: caller.id, idempotencyKey });
    const answer = changed as StockChange; // the worker's reply to a change: level, before, applied, replayed
    res.json(answer);
  });

  router.post('/inventory/:sku/restock', requireJson, jsonBody, async (req, res) => {
    const caller = callerOf(res);
    requireOperator(caller, 'adding stock');
    const units = unitsField(req.body, 'units', 1);
    const idempotencyKey = idempotencyKeyHeader(req);
    const changed = await inventoryAdmin({ op: 'add', sku: skuParam(req), units, by: caller.id, idempotencyKey });
    const answer = changed as StockChange; // the worker's reply to a change: level, before, applied, replayed
    res.json(answer);
  });

  // An order's reserved stock given back, for what `npm run reconcile` finds: an order that ended
  // without shipping but still holds stock, or stock reserved for an order with no saga. Refused
  // while the saga runs (it gives the stock back itself if the order does not complete), for a
  // completed order (its units went to the customer), and for an order with neither a saga nor a
  // reservation: its saga may not have started yet, and reserves when it does.
  router.post('/inventory/reservations/:orderId/release', requireJsonIfBody, jsonBody, async (req, res) => {
    const caller = callerOf(res);
    requireOperator(caller, 'releasing a reservation');
    const orderId = reservationOrderIdParam(req);
    const sagaExists = await sagas.requireSagaWithoutStock(orderId);
    const { released = false, reservationBefore } = await inventoryAdmin({ op: 'release', orderId, by: caller.id });
    if (!sagaExists && reservationBefore === 'NONE')
      throw new HttpProblem(
        409,
        'Reservation not released',
        `order ${orderId} has no saga yet and nothing reserved, so nothing was changed: if the order was accepted, ` +
          'its saga has not started (the starter may be behind, or its event is on ORDERS_DLQ: `npm run dlq -- list`) and ' +
          'reserves its stock when it starts; releasing it now would make that saga fail. Once the saga runs, cancel the ' +
          'order instead: it gives its stock back itself',
      );
    res.json({
      orderId,
      released,
      ...(!released && { detail: 'nothing was reserved for this order' }),
    } satisfies ReservationRelease);
  });

  return router;
}

/** A worker's answer to a stock request, its level without the `ok` flag; a failure as a problem. */
function askWorker({ inventoryAdmin, logger, retryAfter }: InventoryRouteDeps) {
  return async (request: InventoryAdminRequest) => {
    let reply: InventoryAdminReply;
    try {
      reply = await inventoryAdmin(request);
    } catch (error) {
      logger.warn({ err: error }, 'no worker answered an inventory request');
      // A worker may have applied a change and answered too late: a retry must not apply it twice.
      const change = request.op === 'set' || request.op === 'add';
      const retry = !change
        ? `retry after ${retryAfter} seconds`
        : request.idempotencyKey
          ? `the change may have been applied: retry after ${retryAfter} seconds with the same Idempotency-Key, which applies it at most once and answers what was applied`
          : `the change may have been applied by a slow worker: read the stock (GET /inventory/${request.sku}) before sending it again, and send stock changes with an Idempotency-Key so that a retry is applied at most once`;
      throw serviceUnavailable(
        `no worker answered in time (the inventory belongs to the workers); ${retry}`,
        retryAfter,
      );
    }
    if (!reply.ok) {
      const title = { 400: 'Bad Request', 422: 'Idempotency-Key reused', 500: 'Stock not changed' }[reply.status];
      throw new HttpProblem(reply.status, title, reply.detail);
    }
    const { ok: _ok, ...result } = reply;
    return result;
  };
}
