// The HTTP API as an OpenAPI 3.1 document (docs/openapi.json; the ingress serves it at GET
// /openapi.json): the routes, who may call each, what they take and every answer they give. Its
// schemas are made by zod from the ones the ingress parses requests with (order-request.ts,
// order-list.ts, request-params.ts) and types its answers with (api-schemas.ts); the route table
// below adds what zod cannot know: paths, statuses, headers and roles. `npm run openapi` writes
// the file, a test fails when it is not what this makes, and every answer the tests receive from
// an ingress is checked against it (test/harness/api-contract.ts).
import { z } from 'zod';
import { skuSchema } from '../lib/inventory-admin.js';
import {
  approveBodySchema,
  cancelBodySchema,
  decisionAcceptedSchema,
  fieldProblemSchema,
  healthSchema,
  orderAcceptedSchema,
  orderPageSchema,
  orderStatusSchema,
  orderSummarySchema,
  orderViewSchema,
  problemSchema,
  readinessSchema,
  reservationReleaseSchema,
  restockBodySchema,
  setStockBodySchema,
  stockChangeSchema,
  stockLevelSchema,
} from './api-schemas.js';
import type { Role } from './callers.js';
import { listOrdersQuerySchema } from './order-list.js';
import { orderRequestSchema } from './order-request.js';
import { IDEMPOTENCY_KEY, ORDER_ID, RESERVATION_ORDER_ID } from './request-params.js';

type Json = Record<string, unknown>;

const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

/** Answers, by component name (output: what the ingress sends). */
const RESPONSE_SCHEMAS = {
  OrderAccepted: orderAcceptedSchema,
  OrderView: orderViewSchema,
  DecisionAccepted: decisionAcceptedSchema,
  OrderPage: orderPageSchema,
  OrderSummary: orderSummarySchema,
  OrderStatus: orderStatusSchema,
  StockLevel: stockLevelSchema,
  StockChange: stockChangeSchema,
  ReservationRelease: reservationReleaseSchema,
  Health: healthSchema,
  Readiness: readinessSchema,
  Problem: problemSchema,
  FieldProblem: fieldProblemSchema,
};

/** Request bodies, by component name (input: what the ingress accepts). */
const REQUEST_SCHEMAS = {
  OrderRequest: orderRequestSchema,
  CancelRequest: cancelBodySchema,
  ApproveRequest: approveBodySchema,
  SetStockRequest: setStockBodySchema,
  RestockRequest: restockBodySchema,
};

type ResponseSchema = keyof typeof RESPONSE_SCHEMAS;
type RequestSchema = keyof typeof REQUEST_SCHEMAS;

/**
 * A regular expression with the `i` flag, as JSON Schema can say it (its patterns have no flags):
 * each letter outside a class becomes [xX], and a class takes the other case of its letters.
 */
export function caselessPattern(source: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i += 1) {
    const char = source[i]!;
    if (char === '\\') {
      out += source.slice(i, i + 2);
      i += 1;
    } else if (inClass && char === ']') {
      inClass = false;
      out += char;
    } else if (!inClass && char === '[') {
      inClass = true;
      out += char;
    } else if (inClass && /[a-z]/i.test(char) && source[i + 1] === '-' && /[a-z]/i.test(source[i + 2] ?? '')) {
      const range = source.slice(i, i + 3);
      const other = char === char.toLowerCase() ? range.toUpperCase() : range.toLowerCase();
      out += range + other;
      i += 2;
    } else if (/[a-z]/i.test(char)) {
      const both = char.toLowerCase() + char.toUpperCase();
      out += inClass ? both : `[${both}]`;
    } else {
      out += char;
    }
  }
  return out;
}

const conversion = (io: 'input' | 'output') =>
  ({
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
    uri: (id: string) => `#/components/schemas/${id}`,
    override: ({ zodSchema, jsonSchema }) => {
      const checks = (zodSchema._zod.def as { checks?: { _zod: { def: { pattern?: unknown } } }[] }).checks ?? [];
      const pattern = checks.map((check) => check._zod.def.pattern).find((p) => p instanceof RegExp);
      if (pattern instanceof RegExp && pattern.flags.includes('i'))
        jsonSchema.pattern = caselessPattern(pattern.source);
    },
  }) satisfies Parameters<typeof z.toJSONSchema>[1];

/** A zod schema as a JSON Schema inside the document (no $schema of its own: the document names the dialect). */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, conversion(io)) as Json;
  return rest;
}

/** Component schemas made from a set of named zod schemas, referring to each other by name. */
function componentSchemas(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: made } = z.toJSONSchema(registry, conversion(io)) as { schemas: Record<string, Json> };
  return Object.fromEntries(
    Object.entries(made).map(([id, { $schema: _dialect, $id: _id, ...schema }]) => [id, schema]),
  );
}

const ref = (section: 'schemas' | 'responses' | 'headers' | 'parameters', name: string) => ({
  $ref: `#/components/${section}/${name}`,
});

// ---- Headers -----------------------------------------------------------------------------------

const HEADERS = {
  Location: {
    description: 'The path of the order just accepted',
    required: true,
    schema: { type: 'string' },
  },
  'Retry-After': {
    description: 'Seconds to wait before sending the request again',
    required: true,
    schema: { type: 'integer', minimum: 0 },
  },
  Allow: {
    description: 'The methods the path has, e.g. `GET, HEAD`',
    required: true,
    schema: { type: 'string' },
  },
  'WWW-Authenticate': {
    description:
      'The schemes accepted: `Bearer realm="order-saga"` (with `error="invalid_token"` when a token was refused) and/or `ApiKey realm="order-saga", header="X-Api-Key"`',
    required: true,
    schema: { type: 'string' },
  },
  'RateLimit-Policy': {
    description: 'The rate limit applied (IETF draft 7), when rate limits are on: e.g. `120;w=60`',
    schema: { type: 'string' },
  },
  RateLimit: {
    description: 'What is left of it (IETF draft 7): e.g. `limit=120, remaining=119, reset=60`',
    schema: { type: 'string' },
  },
} satisfies Record<string, Json>;
type HeaderName = keyof typeof HEADERS;

// ---- Answers -----------------------------------------------------------------------------------

interface Answer {
  description: string;
  /** The body's schema; a problem (application/problem+json) when absent. */
  body?: ResponseSchema;
  headers?: HeaderName[];
}

/** Answers every authenticated route may give, before or whatever its own work. */
const SHARED_ANSWERS = {
  Unauthorized: {
    status: 401,
    description:
      'No credentials, or credentials refused: send `Authorization: Bearer <token>` or `X-Api-Key: <key>` (docs/security.md)',
    headers: ['WWW-Authenticate'],
  },
  TooManyRequests: {
    status: 429,
    description: 'Over a rate limit, per client address or per caller',
    headers: ['Retry-After'],
  },
  InternalServerError: {
    status: 500,
    description: 'Something went wrong on the server; an order may be retried with the same Idempotency-Key',
  },
  ServiceUnavailable: {
    status: 503,
    description:
      'A dependency did not answer in time (Temporal, NATS, a worker, the identity provider), or the ingress is ' +
      'starting and waits for NATS and Temporal: nothing was decided unless the detail says it may have been; retry ' +
      'after Retry-After seconds',
    headers: ['Retry-After'],
  },
} satisfies Record<string, Answer & { status: number }>;
type SharedAnswer = keyof typeof SHARED_ANSWERS;

/** A path or method the API does not have: 404, unless an answer before routing came first. */
const UNMATCHED_ANSWERS = {
  RouteNotFound: { status: 404, description: 'No such route; the problem names those the API has' },
  MethodNotAllowed: {
    status: 405,
    description:
      'The path exists, but not with this method (OPTIONS included: the API answers no CORS preflight); Allow lists its methods',
    headers: ['Allow'],
  },
  ...SHARED_ANSWERS,
} satisfies Record<string, Answer & { status: number }>;

/** Answers of a route that reads a JSON body (besides its own 400). */
const BODY_ANSWERS = {
  413: { description: 'The body is over the size limit (64 KiB by default)' },
  415: {
    description: 'The body is not JSON (`Content-Type: application/json`), or not UTF-8 without content encoding',
  },
} satisfies Record<number, Answer>;

// ---- Parameters --------------------------------------------------------------------------------

const PARAMETERS = {
  orderId: {
    name: 'orderId',
    in: 'path',
    required: true,
    description: 'The order id: a UUID (any case), as POST /orders answered it',
    schema: jsonSchemaOf(z.string().regex(ORDER_ID), 'input'),
  },
  reservationOrderId: {
    name: 'orderId',
    in: 'path',
    required: true,
    description: 'The id of the order that holds the reservation (a stray reservation need not have a UUID)',
    schema: jsonSchemaOf(z.string().regex(RESERVATION_ORDER_ID), 'input'),
  },
  sku: {
    name: 'sku',
    in: 'path',
    required: true,
    description: 'The stock keeping unit',
    schema: jsonSchemaOf(skuSchema, 'input'),
  },
  idempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description:
      'Makes a retry safe: the same key (per caller) with the same body is answered like the first request and ' +
      'changes nothing more; with another body it is a 422. For orders, kept for IDEMPOTENCY_TTL (docs/api.md, Idempotency keys)',
    schema: jsonSchemaOf(z.string().regex(IDEMPOTENCY_KEY), 'input'),
  },
} satisfies Record<string, Json>;
type ParameterName = keyof typeof PARAMETERS;

/** The query parameters of GET /orders, from the schema the route parses them with. */
function listQueryParameters(): Json[] {
  return Object.entries(listOrdersQuerySchema.shape).map(([name, schema]) => {
    const { description, ...json } = jsonSchemaOf(schema, 'input');
    return { name, in: 'query', required: false, description, schema: json };
  });
}

// ---- Routes ------------------------------------------------------------------------------------

interface Route {
  method: 'get' | 'post' | 'put';
  /** OpenAPI's form: /orders/{orderId}. */
  path: string;
  operationId: string;
  tag: 'orders' | 'inventory' | 'service';
  summary: string;
  description?: string;
  /** Who may call it; `public`: no credentials needed. */
  roles: Role[] | 'public';
  parameters?: (ParameterName | Json[])[];
  body?: { schema: RequestSchema; required: boolean; description: string };
  responses: Record<number, Answer>;
  /** Shared answers the route does not give (all of them apply to authenticated routes by default). */
  without?: SharedAnswer[];
}

const EVERY_ROLE: Role[] = ['customer', 'service', 'operator'];
const OPERATOR: Role[] = ['operator'];

const ROUTES: Route[] = [
  {
    method: 'post',
    path: '/orders',
    operationId: 'placeOrder',
    tag: 'orders',
    summary: 'Place an order',
    description:
      'Answered 202 only once JetStream has stored the order; its saga then starts. A customer orders as itself ' +
      '(customerId may be left out); a service or an operator names the customer. The server computes the total.',
    roles: EVERY_ROLE,
    parameters: ['idempotencyKey'],
    body: { schema: 'OrderRequest', required: true, description: 'The order' },
    responses: {
      202: { description: 'Accepted: the order is stored', body: 'OrderAccepted', headers: ['Location'] },
      400: {
        description:
          'Invalid order (each bad field named in `errors`; a total of 0 too), empty body, malformed JSON or Idempotency-Key',
      },
      403: { description: 'A customer ordering for another customer' },
      ...BODY_ANSWERS,
      422: { description: 'The Idempotency-Key was already used by this caller with another body' },
    },
  },
  {
    method: 'get',
    path: '/orders',
    operationId: 'listOrders',
    tag: 'orders',
    summary: 'List orders',
    description:
      "Orders by filter from Temporal's search index, in progress first, newest first, a page at a time; the index " +
      'follows each saga by a moment. A customer lists its own orders only.',
    roles: EVERY_ROLE,
    parameters: [listQueryParameters()],
    responses: {
      200: { description: 'One page', body: 'OrderPage' },
      400: {
        description: 'A filter that cannot be used: an unknown parameter, a bad value, a foreign cursor (`errors`)',
      },
      403: { description: "A customer asking for another customer's orders" },
    },
  },
  {
    method: 'get',
    path: '/orders/{orderId}',
    operationId: 'getOrder',
    tag: 'orders',
    summary: 'Read an order',
    description: "The saga's own answer while it runs, its stored result once closed; `source` says which.",
    roles: EVERY_ROLE,
    parameters: ['orderId'],
    responses: {
      200: { description: 'The order', body: 'OrderView' },
      400: { description: 'The order id is not a UUID' },
      404: {
        description: "No such order (or another customer's); one accepted moments ago may take a second to appear",
      },
    },
  },
  {
    method: 'post',
    path: '/orders/{orderId}/cancel',
    operationId: 'cancelOrder',
    tag: 'orders',
    summary: 'Cancel an order',
    description:
      'Sends the saga a cancelOrder update and answers what it decided. A cancel applies until the confirmation is ' +
      'being sent; a repeat of a cancel the saga took is answered 202 like the first.',
    roles: EVERY_ROLE,
    parameters: ['orderId'],
    body: { schema: 'CancelRequest', required: false, description: 'Optional' },
    responses: {
      202: { description: 'The saga took the cancel', body: 'DecisionAccepted' },
      400: { description: 'The order id is not a UUID, or the body is malformed (`errors`)' },
      404: { description: "No such order (or another customer's)" },
      409: { description: 'The cancel no longer applies (`orderStatus` says why), also once the saga has closed' },
      ...BODY_ANSWERS,
      422: { description: 'The saga refused the input (a text over its bound)' },
    },
  },
  {
    method: 'post',
    path: '/orders/{orderId}/approve',
    operationId: 'approveOrder',
    tag: 'orders',
    summary: 'Approve an order waiting for approval',
    description:
      'Sends the saga an approveOrder update and answers what it decided. The approver is who the credentials ' +
      'name; a repeat of an approval the saga took is answered 202 like the first.',
    roles: OPERATOR,
    parameters: ['orderId'],
    body: { schema: 'ApproveRequest', required: false, description: 'Optional' },
    responses: {
      202: { description: 'The saga took the approval', body: 'DecisionAccepted' },
      400: { description: 'The order id is not a UUID, or the body is malformed (`errors`)' },
      403: { description: 'The caller is not an operator' },
      404: { description: "No such order (or, to a customer, another customer's)" },
      409: { description: 'The approval no longer applies (`orderStatus` says why), also once the saga has closed' },
      ...BODY_ANSWERS,
      422: { description: 'The saga refused the input (a text over its bound)' },
    },
  },
  {
    method: 'get',
    path: '/inventory/{sku}',
    operationId: 'getStock',
    tag: 'inventory',
    summary: "Read a SKU's stock",
    roles: OPERATOR,
    parameters: ['sku'],
    responses: {
      200: { description: 'The stock level', body: 'StockLevel' },
      400: { description: 'The SKU is malformed' },
      403: { description: 'The caller is not an operator' },
      404: { description: 'No stock was ever put in for this SKU' },
    },
  },
  {
    method: 'put',
    path: '/inventory/{sku}',
    operationId: 'setStock',
    tag: 'inventory',
    summary: 'Set the units available',
    description: 'Reserved units are never changed. Audited as audit.inventory.StockSet.',
    roles: OPERATOR,
    parameters: ['sku', 'idempotencyKey'],
    body: { schema: 'SetStockRequest', required: true, description: 'The units available' },
    responses: {
      200: { description: 'The change as applied', body: 'StockChange' },
      400: { description: 'The SKU, the units (`errors`), the body or the Idempotency-Key is malformed' },
      403: { description: 'The caller is not an operator' },
      ...BODY_ANSWERS,
      422: { description: 'The Idempotency-Key was already used for another change' },
    },
  },
  {
    method: 'post',
    path: '/inventory/{sku}/restock',
    operationId: 'restock',
    tag: 'inventory',
    summary: 'Add units to those available',
    description: 'Audited as audit.inventory.StockAdded.',
    roles: OPERATOR,
    parameters: ['sku', 'idempotencyKey'],
    body: { schema: 'RestockRequest', required: true, description: 'The units to add' },
    responses: {
      200: { description: 'The change as applied', body: 'StockChange' },
      400: { description: 'The SKU, the units (`errors`), the body or the Idempotency-Key is malformed' },
      403: { description: 'The caller is not an operator' },
      ...BODY_ANSWERS,
      422: { description: 'The Idempotency-Key was already used for another change' },
    },
  },
  {
    method: 'post',
    path: '/inventory/reservations/{orderId}/release',
    operationId: 'releaseReservation',
    tag: 'inventory',
    summary: "Give back the stock an order's reservation holds",
    description:
      'For what `npm run reconcile` finds: an order that ended without shipping but still holds stock, or stock ' +
      'reserved for an order with no saga. Audited as audit.inventory.ReservationReleased.',
    roles: OPERATOR,
    parameters: ['reservationOrderId'],
    responses: {
      200: { description: 'Released, or nothing was reserved (`released: false`)', body: 'ReservationRelease' },
      400: { description: 'The order id or the body is malformed' },
      403: { description: 'The caller is not an operator' },
      409: {
        description:
          'Refused: the saga runs, or the order completed (`orderStatus`), or it has neither a saga nor a reservation yet',
      },
      ...BODY_ANSWERS,
    },
  },
  {
    method: 'get',
    path: '/health',
    operationId: 'health',
    tag: 'service',
    summary: 'Liveness',
    roles: 'public',
    responses: { 200: { description: 'The process runs', body: 'Health' } },
  },
  {
    method: 'get',
    path: '/ready',
    operationId: 'ready',
    tag: 'service',
    summary: 'Readiness: NATS and Temporal answer',
    description: 'The details are on the operations port (METRICS_PORT), with /metrics.',
    roles: 'public',
    responses: {
      200: { description: 'Ready', body: 'Readiness' },
      503: { description: 'Not ready (starting, or NATS or Temporal does not answer)', body: 'Readiness' },
    },
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openApi',
    tag: 'service',
    summary: 'This document',
    roles: 'public',
    responses: {
      200: { description: 'The OpenAPI document of this API' },
      503: { description: 'The ingress is starting', headers: ['Retry-After'] },
    },
  },
];

const RATE_LIMIT_HEADERS: HeaderName[] = ['RateLimit-Policy', 'RateLimit'];

function answer({ description, body, headers = [] }: Answer, rateLimited: boolean, status: number): Json {
  const names = [...headers, ...(rateLimited ? RATE_LIMIT_HEADERS : [])];
  const mediaType = body ? 'application/json' : status < 400 ? 'application/json' : 'application/problem+json';
  return {
    description,
    ...(names.length > 0 && { headers: Object.fromEntries(names.map((name) => [name, ref('headers', name)])) }),
    content: {
      [mediaType]: {
        schema: body ? ref('schemas', body) : status < 400 ? { type: 'object' } : ref('schemas', 'Problem'),
      },
    },
  };
}

function operation(route: Route): Json {
  const authenticated = route.roles !== 'public';
  const responses: Record<string, unknown> = {};
  const shared = authenticated
    ? (Object.entries(SHARED_ANSWERS) as [SharedAnswer, (typeof SHARED_ANSWERS)[SharedAnswer]][]).filter(
        ([name]) => !route.without?.includes(name),
      )
    : [];
  const statuses = [...Object.keys(route.responses).map(Number), ...shared.map(([, { status }]) => status)];
  for (const status of statuses.sort((a, b) => a - b)) {
    const own = route.responses[status];
    const sharedName = shared.find(([, answer]) => answer.status === status)?.[0];
    responses[String(status)] = own ? answer(own, authenticated, status) : ref('responses', sharedName!);
  }
  const parameters = (route.parameters ?? []).flatMap((p) => (typeof p === 'string' ? [ref('parameters', p)] : p));
  const roles = route.roles;
  return {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    description: [route.description, roles === 'public' ? 'No credentials needed.' : `Roles: ${roles.join(', ')}.`]
      .filter(Boolean)
      .join(' '),
    ...(parameters.length > 0 && { parameters }),
    ...(route.body && {
      requestBody: {
        description: route.body.description,
        required: route.body.required,
        content: { 'application/json': { schema: ref('schemas', route.body.schema) } },
      },
    }),
    security:
      roles === 'public'
        ? []
        : [
            { bearerAuth: roles },
            ...(roles.some((role) => role !== 'customer')
              ? [{ apiKey: roles.filter((role) => role !== 'customer') }]
              : []),
          ],
    responses,
  };
}

const DESCRIPTION = [
  'The order saga service: place orders, read, list, cancel and approve them; operators manage stock.',
  '',
  'Every route but /health, /ready and /openapi.json needs credentials: a bearer JWT from the identity provider ' +
    '(without a role the caller is a customer, whose customer id is the token subject; with the role `service` or ' +
    '`operator` it is that) or an API key in `X-Api-Key` (role service or operator). A route lists the roles it ' +
    'takes as the security requirement; a customer acts on its own orders only (another customer\'s is "not found").',
  '',
  'Every error is `application/problem+json` (RFC 9457). A path the API does not have is answered 404 ' +
    'with a problem (after authentication: 401 and 429 come first); a method a path does not have (OPTIONS too), 405 with ' +
    'Allow, before authentication. A request that does not arrive in time or is not ' +
    'valid HTTP is answered 408, 431 or 400 and its connection closed. Rate limits (when on) send RateLimit headers.',
  '',
  'Prose, with the reasons: docs/api.md. Generated by `npm run openapi` from ingress/openapi.ts; do not edit.',
].join('\n');

/** The OpenAPI 3.1 document of the HTTP API. */
export function openApiDocument(): Json {
  const paths: Record<string, Json> = {};
  for (const route of ROUTES) paths[route.path] = { ...paths[route.path], [route.method]: operation(route) };
  const schemas = { ...componentSchemas(RESPONSE_SCHEMAS, 'output'), ...componentSchemas(REQUEST_SCHEMAS, 'input') };
  return {
    openapi: '3.1.1',
    jsonSchemaDialect: JSON_SCHEMA_DIALECT,
    info: {
      title: 'Order saga HTTP API',
      version: '0.1.0',
      description: DESCRIPTION,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags: [
      { name: 'orders', description: 'Place, read, list, cancel and approve orders' },
      { name: 'inventory', description: 'Stock, for operators' },
      { name: 'service', description: 'Probes and this document' },
    ],
    paths,
    'x-unmatched-route': {
      description:
        'What a request for a path or method the API does not have is answered: 404, or an answer given before routing',
      responses: Object.fromEntries(
        Object.entries(UNMATCHED_ANSWERS).map(([name, { status }]) => [String(status), ref('responses', name)]),
      ),
    },
    components: {
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
      responses: Object.fromEntries(
        Object.entries(UNMATCHED_ANSWERS).map(([name, shared]) => [name, answer(shared, true, shared.status)]),
      ),
      headers: HEADERS,
      parameters: PARAMETERS,
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'A token from the identity provider; roles in its `roles` claim (AUTH_JWT_ROLES_CLAIM)',
        },
        apiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'X-Api-Key',
          description: 'A key made with `npm run api-key`, with the role service or operator',
        },
      },
    },
  };
}

/**
 * The methods a request path has (HEAD wherever GET is), or undefined when the API has no such
 * path: what the ingress answers 405 with, from the same route table as the document.
 */
export function methodsOf(requestPath: string): string[] | undefined {
  const path = requestPath.length > 1 ? requestPath.replace(/\/$/, '') : requestPath;
  const methods = ROUTES.filter(({ path: template }) => templatePattern(template).test(path)).map(({ method }) =>
    method.toUpperCase(),
  );
  if (methods.length === 0) return undefined;
  return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
}

const patterns = new Map<string, RegExp>();
/** /orders/{orderId} as a pattern: each parameter one non-empty segment; literals in any case, as Express matches. */
function templatePattern(template: string): RegExp {
  let pattern = patterns.get(template);
  if (!pattern) {
    const source = template
      .split(/\{[^}]+\}/)
      .map((literal) => literal.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))
      .join('[^/]+');
    pattern = new RegExp(`^${source}$`, 'i');
    patterns.set(template, pattern);
  }
  return pattern;
}

/** docs/openapi.json as `npm run openapi` writes it and GET /openapi.json serves it. */
export function renderOpenApi(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}
