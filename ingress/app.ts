// The HTTP API (public contract). Routes are thin: parse, validate, call one function, map
// the result. Every error is application/problem+json saying what is wrong and what to do.
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
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
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../lib/logger.js';
import { readinessReport, type ReadinessChecks } from '../lib/ops-server.js';
import { activeTraceId, contextFromHeaders, SpanKind, tracer } from '../lib/telemetry.js';
import {
  approveOrderUpdate,
  cancelOrderUpdate,
  DECISION_TEXT_LIMITS,
  decisionUpdateId,
  CustomerIdKey,
  getStatusQuery,
  orderWorkflowId,
  OrderStatusKey,
  type DecisionAccepted,
  type OrderStatusDocument,
} from '../workflows/contract.js';
import { FailureType } from '../domain/failures.js';
import { IdempotencyConflictError, OrderNotStoredError, type OrderIntake } from './order-intake.js';
import { parseOrderRequest, type FieldProblem } from './order-request.js';
import { IdentityProviderUnavailable, mayActOn, Unauthenticated, type Authenticator, type Caller } from './callers.js';
import { perAddressLimit, perIdentityLimit, RateLimited } from './rate-limits.js';
import {
  skuSchema,
  unitsSchema,
  type InventoryAdminReply,
  type InventoryAdminRequest,
} from '../lib/inventory-admin.js';

/** An error that carries its HTTP status and problem details (RFC 9457). */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

export interface IngressDeps {
  intake: OrderIntake;
  temporal: Client;
  logger: Logger;
  registry: Registry;
  readiness: ReadinessChecks;
  authenticator: Authenticator;
  /** Requests per minute per identity and per address (0: no limit). */
  rateLimits: { perIdentity: number; perAddress: number };
  /** Proxies in front of the ingress whose X-Forwarded-For is believed. */
  trustProxy?: number;
  /** Asks a worker to show or change stock (lib/inventory-admin.ts); rejects when no worker answers. */
  inventoryAdmin: (request: InventoryAdminRequest) => Promise<InventoryAdminReply>;
  bodyLimitBytes?: number;
  /** Seconds a client should wait before retrying after a 503. */
  retryAfterSeconds?: number;
}

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

/** What /ready and the start-up banner say when anyone may call the API. */
export const OPEN_API_WARNING =
  'authentication is OFF (AUTH_DISABLED=true): anyone who reaches this port may read, cancel and approve any order';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const ORDER_ID = /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/i;

export function createIngressApp(deps: IngressDeps): express.Express {
  const { intake, logger, registry } = deps;
  // Queries on a closed saga are refused by the server (no worker asked): its stored result answers instead.
  const temporal = new Client({
    ...deps.temporal.options,
    workflow: { ...deps.temporal.options.workflow, queryRejectCondition: 'NOT_OPEN' },
  });
  const retryAfter = String(deps.retryAfterSeconds ?? 5);
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });

  const { authenticator } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('trust proxy', deps.trustProxy ?? 0);
  app.use((req, res, next) => {
    res.on('finish', () =>
      requests.inc({
        route: (req.route as { path?: string } | undefined)?.path ?? 'unmatched',
        method: req.method,
        status: res.statusCode,
      }),
    );
    next();
  });

  // Probes need no credentials; /metrics and the readiness details are on the operations port only.
  const OPS_PATHS = new Set(['/health', '/ready']);
  // One server span per API request, joining the caller's trace when it sends `traceparent`.
  app.use((req, res, next) => {
    if (OPS_PATHS.has(req.path)) return next();
    const parent = contextFromHeaders((name) => req.get(name));
    const span = tracer.startSpan(
      `${req.method} ${req.path}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } },
      parent,
    );
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      if (route) span.updateName(`${req.method} ${route}`).setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    const active = trace.setSpan(parent, span);
    // Body parsing resumes from socket events: bind them so the handlers still see the span.
    context.bind(active, req);
    context.bind(active, res);
    context.with(active, next);
  });

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    const { ready } = await readinessReport(deps.readiness);
    res.status(ready ? 200 : 503).json({ ready, ...(authenticator.open && { warning: OPEN_API_WARNING }) });
  });

  const addressLimit = perAddressLimit(deps.rateLimits.perAddress);
  if (addressLimit) app.use(addressLimit);
  app.use(async (req, res, next) => {
    res.locals.caller = await authenticator.authenticate((name) => req.get(name));
    next();
  });
  const callerOf = (res: Response): Caller => res.locals.caller as Caller;
  const identityLimit = perIdentityLimit(deps.rateLimits.perIdentity, (req) => callerOf(req.res!));
  if (identityLimit) app.use(identityLimit);

  const jsonBody = express.json({ limit: deps.bodyLimitBytes ?? 64 * 1024, strict: true, type: () => true });
  const requireJson = (req: Request, _res: Response, next: NextFunction) => {
    if (!hasBody(req)) {
      throw new HttpProblem(400, 'Empty body', 'the request has no body; send the order as a JSON object');
    }
    if (!req.is('application/json')) {
      throw new HttpProblem(
        415,
        'Unsupported Media Type',
        `send the order as JSON with "Content-Type: application/json" (got ${req.get('content-type') ?? 'no content type'})`,
      );
    }
    next();
  };

  app.post('/orders', requireJson, jsonBody, async (req, res) => {
    const key = req.get('idempotency-key');
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      throw new HttpProblem(
        400,
        'Invalid Idempotency-Key',
        'the Idempotency-Key header must be 1 to 255 visible ASCII characters, e.g. a UUID',
      );
    }
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
        });
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
        throw new HttpProblem(
          503,
          'Service Unavailable',
          `${error.message}. Retry after ${retryAfter} seconds with the same Idempotency-Key.`,
          {},
          { 'Retry-After': retryAfter },
        );
      }
      throw error;
    }
  });

  app.get('/orders/:orderId', async (req, res) => {
    const orderId = orderIdParam(req);
    const view = await statusOf(orderId);
    if (!mayActOn(callerOf(res), view.customerId)) throw orderNotFound(orderId);
    res.json(view);
  });

  app.post('/orders/:orderId/cancel', requireJsonIfBody, jsonBody, async (req, res) => {
    const orderId = orderIdParam(req);
    const caller = callerOf(res);
    const reason = optionalText(req.body, 'reason') ?? `cancelled by the ${caller.role}`;
    if (caller.role === 'customer') await requireOwnOrder(caller, orderId);
    const decision = await decide(orderId, 'Order cannot be cancelled', (handle) =>
      handle.executeUpdate(cancelOrderUpdate, {
        args: [{ reason, cancelledBy: caller.id }],
        updateId: decisionUpdateId('cancelOrder', orderId),
      }),
    );
    res.status(202).json({ orderId, update: 'cancelOrder', ...decision, links: { self: `/orders/${orderId}` } });
  });

  app.post('/orders/:orderId/approve', requireJsonIfBody, jsonBody, async (req, res) => {
    const orderId = orderIdParam(req);
    const caller = callerOf(res);
    if (caller.role !== 'operator') {
      // A customer learns nothing about other customers' orders: those stay "not found".
      if (caller.role === 'customer') await requireOwnOrder(caller, orderId);
      throw new HttpProblem(
        403,
        'Forbidden',
        `approving an order is an operator's act; you are authenticated as a ${caller.role}`,
      );
    }
    // The approver is who the credentials say, whatever the body claims; open mode has no verified identity.
    const claimed = optionalText(req.body, 'approvedBy');
    const approvedBy = caller.via === 'open' ? `unverified:${claimed ?? 'anonymous'}` : caller.id;
    const decision = await decide(orderId, 'Order cannot be approved', (handle) =>
      handle.executeUpdate(approveOrderUpdate, {
        args: [{ approvedBy }],
        updateId: decisionUpdateId('approveOrder', orderId),
      }),
    );
    res.status(202).json({ orderId, update: 'approveOrder', ...decision, links: { self: `/orders/${orderId}` } });
  });

  // Stock, for operators: read it, set the available units, or add to them. Reserved units are never touched.
  // A change sent with an Idempotency-Key is applied once: a retry after a lost answer gets the first one's.
  app.get('/inventory/:sku', async (req, res) => {
    requireOperator(callerOf(res), 'reading stock');
    const sku = skuParam(req);
    const { level } = await inventoryAdmin({ op: 'show', sku });
    if (!level) throw new HttpProblem(404, 'SKU not found', `no stock was ever put in for ${sku}; set it with PUT`);
    res.json(level);
  });

  app.put('/inventory/:sku', requireJson, jsonBody, async (req, res) => {
    const caller = callerOf(res);
    requireOperator(caller, 'setting stock');
    const units = unitsField(req.body, 'available', 0);
    const idempotencyKey = stockChangeKey(req);
    res.json(await inventoryAdmin({ op: 'set', sku: skuParam(req), units, by: caller.id, idempotencyKey }));
  });

  app.post('/inventory/:sku/restock', requireJson, jsonBody, async (req, res) => {
    const caller = callerOf(res);
    requireOperator(caller, 'adding stock');
    const units = unitsField(req.body, 'units', 1);
    const idempotencyKey = stockChangeKey(req);
    res.json(await inventoryAdmin({ op: 'add', sku: skuParam(req), units, by: caller.id, idempotencyKey }));
  });

  // An order's reserved stock given back, for what `npm run reconcile` finds: an order that ended
  // without shipping but still holds stock, or stock reserved for an order with no saga. Refused
  // while the saga runs (it gives the stock back itself if the order does not complete), for a
  // completed order (its units went to the customer), and for an order with neither a saga nor a
  // reservation: its saga may not have started yet, and reserves when it does.
  app.post('/inventory/reservations/:orderId/release', requireJsonIfBody, jsonBody, async (req, res) => {
    const caller = callerOf(res);
    requireOperator(caller, 'releasing a reservation');
    const orderId = reservationOrderIdParam(req);
    const sagaExists = await requireSagaWithoutStock(orderId);
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
    res.json({ orderId, released, ...(!released && { detail: 'nothing was reserved for this order' }) });
  });

  app.use((_req, _res) => {
    throw new HttpProblem(
      404,
      'Not Found',
      'no such route; the API has POST /orders, GET /orders/:orderId, POST /orders/:orderId/cancel, POST /orders/:orderId/approve, ' +
        'and for operators GET and PUT /inventory/:sku, POST /inventory/:sku/restock and POST /inventory/reservations/:orderId/release',
    );
  });

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return void res.end();
    const problem = toProblem(error, (refused) => authenticator.challenge(refused));
    if (error instanceof IdentityProviderUnavailable) logger.warn({ err: error.cause }, 'JWKS unavailable');
    if (problem.status >= 500 && !(error instanceof HttpProblem))
      logger.error({ err: error, path: req.path }, 'request failed');
    res
      .status(problem.status)
      .set(problem.headers)
      .type('application/problem+json')
      .json({
        type: 'about:blank',
        title: problem.title,
        status: problem.status,
        detail: problem.detail,
        instance: req.originalUrl.slice(0, 200),
        ...problem.extra,
      });
  });

  type Handle = ReturnType<Client['workflow']['getHandle']>;
  const withinMs = <T>(ms: number, work: () => Promise<T>) => temporal.connection.withDeadline(Date.now() + ms, work);

  /** 404 for an order Temporal does not know, 503 when Temporal does not answer. */
  function temporalProblem(error: unknown, orderId: string, what: string): unknown {
    if (error instanceof WorkflowNotFoundError) return orderNotFound(orderId);
    if (error instanceof ServiceError || error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      logger.warn({ err: error, orderId }, 'Temporal unavailable');
      return new HttpProblem(
        503,
        'Service Unavailable',
        `${what} is unavailable right now; retry after ${retryAfter} seconds`,
        {},
        { 'Retry-After': retryAfter },
      );
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
    return new HttpProblem(
      503,
      'Service Unavailable',
      `the saga of order ${orderId} did not answer in time: Temporal answers, but ${task}; see workflow ${workflowId} ` +
        'in the Temporal Web UI (its worker may be down, or the task fails: the error is on the task). The decision may ' +
        `still take effect once the task completes: check GET /orders/${orderId} before you retry, after ${retryAfter} seconds`,
      {},
      { 'Retry-After': retryAfter },
    );
  }

  /** A worker's answer to a stock request, its level without the `ok` flag; a failure as a problem. */
  async function inventoryAdmin(request: InventoryAdminRequest) {
    let reply: InventoryAdminReply;
    try {
      reply = await deps.inventoryAdmin(request);
    } catch (error) {
      logger.warn({ err: error }, 'no worker answered an inventory request');
      // A worker may have applied a change and answered too late: a retry must not apply it twice.
      const change = request.op === 'set' || request.op === 'add';
      const retry = !change
        ? `retry after ${retryAfter} seconds`
        : request.idempotencyKey
          ? `the change may have been applied: retry after ${retryAfter} seconds with the same Idempotency-Key, which applies it at most once and answers what was applied`
          : `the change may have been applied by a slow worker: read the stock (GET /inventory/${request.sku}) before sending it again, and send stock changes with an Idempotency-Key so that a retry is applied at most once`;
      throw new HttpProblem(
        503,
        'Service Unavailable',
        `no worker answered in time (the inventory belongs to the workers); ${retry}`,
        {},
        { 'Retry-After': retryAfter },
      );
    }
    if (!reply.ok) {
      const title = { 400: 'Bad Request', 422: 'Idempotency-Key reused', 500: 'Stock not changed' }[reply.status];
      throw new HttpProblem(reply.status, title, reply.detail);
    }
    const { ok: _ok, ...result } = reply;
    return result;
  }

  /** A customer's cancel of someone else's order is "not found", as for an unknown order. */
  async function requireOwnOrder(caller: Caller, orderId: string): Promise<void> {
    const description = await describe(temporal.workflow.getHandle(orderWorkflowId(orderId)), orderId);
    if (!mayActOn(caller, description.typedSearchAttributes.get(CustomerIdKey))) throw orderNotFound(orderId);
  }

  async function describe(handle: Handle, orderId: string): Promise<WorkflowExecutionDescription> {
    try {
      return await withinMs(QUERY_DEADLINE_MS, () => handle.describe());
    } catch (error) {
      throw temporalProblem(error, orderId, 'order status');
    }
  }

  /** Refuses (409) to touch the stock of an order whose saga runs or completed; answers whether a saga exists. */
  async function requireSagaWithoutStock(orderId: string): Promise<boolean> {
    const handle = temporal.workflow.getHandle(orderWorkflowId(orderId));
    let description: WorkflowExecutionDescription;
    try {
      description = await withinMs(QUERY_DEADLINE_MS, () => handle.describe());
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
   * The saga's own answer while it runs (one call), its stored result once closed; what Temporal
   * recorded when the saga cannot answer in time or ended without a result.
   */
  async function statusOf(orderId: string): Promise<OrderView> {
    const handle = temporal.workflow.getHandle(orderWorkflowId(orderId));
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
    send: (handle: Handle) => Promise<DecisionAccepted>,
  ): Promise<DecisionAccepted> {
    const handle = temporal.workflow.getHandle(orderWorkflowId(orderId));
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
        throw new HttpProblem(
          503,
          'Service Unavailable',
          `the decision did not reach the saga of order ${orderId} (its worker may be restarting); nothing was decided: retry after ${retryAfter} seconds`,
          {},
          { 'Retry-After': retryAfter },
        );
      }
      await sleep(DECISION_RESEND_PAUSE_MS);
    }
  }

  return app;
}

function requireOperator(caller: Caller, what: string): void {
  if (caller.role !== 'operator') {
    throw new HttpProblem(403, 'Forbidden', `${what} is an operator's act; you are authenticated as a ${caller.role}`);
  }
}

/** The Idempotency-Key of a stock change, when sent; 400 when malformed. */
function stockChangeKey(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key))
    throw new HttpProblem(
      400,
      'Invalid Idempotency-Key',
      'the Idempotency-Key header must be 1 to 255 visible ASCII characters, e.g. a UUID',
    );
  return key;
}

function skuParam(req: Request): string {
  const parsed = skuSchema.safeParse(req.params.sku);
  if (!parsed.success) {
    throw new HttpProblem(400, 'Invalid SKU', 'a SKU is 1 to 128 letters, digits and . _ : @ - characters');
  }
  return parsed.data;
}

/** The whole-number field of a stock body, e.g. {"available": 40}; 400 naming the field otherwise. */
function unitsField(body: unknown, field: string, minimum: 0 | 1): number {
  const value =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)[field]
      : undefined;
  const parsed = unitsSchema(minimum).safeParse(value);
  if (!parsed.success) {
    const message = value === undefined ? 'is required' : parsed.error.issues[0]!.message;
    throw new HttpProblem(
      400,
      'Invalid stock change',
      `"${field}" ${message}; send e.g. {"${field}": ${minimum === 0 ? 40 : 10}}`,
      {
        errors: [{ field, message }],
      },
    );
  }
  return parsed.data;
}

function orderNotFound(orderId: string): HttpProblem {
  return new HttpProblem(
    404,
    'Order not found',
    `no order ${orderId}; an order accepted moments ago may take a second to appear, so retry shortly`,
  );
}

/**
 * The order body as the caller may send it: a customer orders as itself (the token's subject), so
 * its customerId is filled in, and a different one is refused; services and operators name the customer.
 */
function orderedAs(caller: Caller, body: unknown): unknown {
  if (caller.role !== 'customer' || typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const { customerId } = body as { customerId?: unknown };
  if (customerId !== undefined && customerId !== caller.customerId) {
    throw new HttpProblem(
      403,
      'Forbidden',
      'a customer orders as itself: your customer id comes from your token; leave customerId out or send your own',
    );
  }
  return { ...body, customerId: caller.customerId };
}

function hasBody(req: Request): boolean {
  return Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
}

function requireJsonIfBody(req: Request, _res: Response, next: NextFunction) {
  if (hasBody(req) && !req.is('application/json')) {
    throw new HttpProblem(
      415,
      'Unsupported Media Type',
      'send a JSON body with "Content-Type: application/json", or no body at all',
    );
  }
  next();
}

/** The order id of a reservation: any id the inventory may hold (a stray one need not be a UUID). */
function reservationOrderIdParam(req: Request): string {
  const orderId = String(req.params.orderId);
  if (!/^[\w.:@-]{1,128}$/.test(orderId))
    throw new HttpProblem(400, 'Invalid order id', 'an order id is 1 to 128 letters, digits and . _ : @ - characters');
  return orderId;
}

function orderIdParam(req: Request): string {
  const orderId = String(req.params.orderId);
  if (!ORDER_ID.test(orderId))
    throw new HttpProblem(400, 'Invalid order id', 'an order id is a UUID, as returned by POST /orders');
  return orderId.toLowerCase();
}

function optionalText(body: unknown, field: string): string | undefined {
  if (body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body) && !(field in body)))
    return undefined;
  const value = typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[field] : undefined;
  // The saga's own bound for a reason; a claimed approver stays within its actor bound with its prefix.
  const limit = DECISION_TEXT_LIMITS.reason;
  if (typeof value !== 'string' || value.length > limit) {
    throw new HttpProblem(
      400,
      'Invalid request body',
      `expected a JSON object with an optional "${field}" string of at most ${limit} characters`,
      {
        errors: [{ field, message: `must be a string of at most ${limit} characters` }],
      },
    );
  }
  return value;
}

function invalidOrder(problems: FieldProblem[]): HttpProblem {
  return new HttpProblem(
    400,
    'Invalid order',
    `the order has ${problems.length} invalid field(s): ${problems.map((p) => p.field).join(', ')}; fix them and send it again`,
    {
      errors: problems,
    },
  );
}

/** Maps any error to a problem; body-parser errors carry a status and a type. */
function toProblem(error: unknown, challenge: (tokenRefused: boolean) => string): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof Unauthenticated) {
    return new HttpProblem(
      401,
      'Unauthorized',
      error.message,
      {},
      {
        'WWW-Authenticate': challenge(error.credentialsRefused),
      },
    );
  }
  if (error instanceof IdentityProviderUnavailable) {
    return new HttpProblem(
      503,
      'Service Unavailable',
      `${error.message}; retry after 5 seconds`,
      {},
      {
        'Retry-After': '5',
      },
    );
  }
  if (error instanceof RateLimited) {
    return new HttpProblem(
      429,
      'Too Many Requests',
      error.message,
      {},
      {
        'Retry-After': String(error.retryAfterSeconds),
      },
    );
  }
  const parserError = error as { status?: number; type?: string; message?: string; length?: number; limit?: number };
  switch (parserError.type) {
    case 'entity.too.large':
      return new HttpProblem(
        413,
        'Payload Too Large',
        `the request body is ${parserError.length ?? 'more than'} bytes, over the ${parserError.limit ?? 'configured'}-byte limit; ` +
          'a valid order is far smaller (at most 100 items, short text fields), so look for an oversized field',
      );
    case 'entity.parse.failed':
      return new HttpProblem(
        400,
        'Malformed JSON',
        'the request body is not valid JSON; check quotes, commas and brackets',
      );
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new HttpProblem(415, 'Unsupported encoding', 'send the body as UTF-8 JSON without content encoding');
    case 'request.aborted':
      return new HttpProblem(400, 'Request aborted', 'the client closed the connection before the body was complete');
  }
  if (parserError.status && parserError.status >= 400 && parserError.status < 500) {
    return new HttpProblem(parserError.status, 'Bad Request', parserError.message ?? 'the request could not be read');
  }
  return new HttpProblem(
    500,
    'Internal Server Error',
    'something went wrong on our side; the order may be retried with the same Idempotency-Key',
  );
}
