// The HTTP API (public contract: docs/openapi.json), wired: request metrics and tracing, probes,
// rate limits, authentication, the routes of each resource (routes/), and the problem responder
// that turns every error into application/problem+json (problems.ts).
import express, { type Response } from 'express';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Client } from '@temporalio/client';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../lib/logger.js';
import { readinessReport, type ReadinessChecks } from '../lib/ops-server.js';
import { contextFromHeaders, SpanKind, tracer } from '../lib/telemetry.js';
import type { InventoryAdminReply, InventoryAdminRequest } from '../lib/inventory-admin.js';
import type { Authenticator, Caller } from './callers.js';
import type { OrderIntake } from './order-intake.js';
import type { Health, Readiness } from './api-schemas.js';
import { methodsOf, renderOpenApi } from './openapi.js';
import { orderSagas } from './order-sagas.js';
import { methodNotAllowed, problemResponder, routeNotFound } from './problems.js';
import { perAddressLimit, perIdentityLimit } from './rate-limits.js';
import { inventoryRoutes } from './routes/inventory.js';
import { orderRoutes } from './routes/orders.js';

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

/** What /ready and the start-up banner say when anyone may call the API. */
export const OPEN_API_WARNING =
  'authentication is OFF (AUTH_DISABLED=true): anyone who reaches this port may read, cancel and approve any order';

/** Probes and the contract need no credentials; /metrics and the readiness details are on the operations port only. */
const OPS_PATHS = new Set(['/health', '/ready', '/openapi.json']);

export function createIngressApp(deps: IngressDeps): express.Express {
  const { logger, authenticator } = deps;
  const retryAfter = String(deps.retryAfterSeconds ?? 5);
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'],
    registers: [deps.registry],
  });

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
    res.json({ status: 'ok' } satisfies Health);
  });
  app.get('/ready', async (_req, res) => {
    const { ready } = await readinessReport(deps.readiness);
    res
      .status(ready ? 200 : 503)
      .json({ ready, ...(authenticator.open && { warning: OPEN_API_WARNING }) } satisfies Readiness);
  });
  // The contract (docs/openapi.json: the same text, made by the same code).
  const openApi = renderOpenApi();
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(openApi);
  });

  // A method a path does not have: 405 with Allow, before credentials (the contract is public).
  app.use(methodNotAllowed(methodsOf));

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
  const sagas = orderSagas(deps.temporal, logger, retryAfter);
  const shared = { sagas, logger, callerOf, jsonBody, retryAfter };
  app.use(orderRoutes({ ...shared, intake: deps.intake }));
  app.use(inventoryRoutes({ ...shared, inventoryAdmin: deps.inventoryAdmin }));

  app.use(routeNotFound);
  app.use(problemResponder(logger, (refused) => authenticator.challenge(refused)));
  return app;
}
