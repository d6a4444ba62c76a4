// The HTTP API's published contract (docs/openapi.json) as a check on answers: which statuses a
// route may answer, the headers each must carry, and the body's schema (checked with Ajv, a JSON
// Schema validator independent of zod). test/harness/check-api-responses.ts runs every answer
// the tests receive from an ingress through it; the origins of those ingresses are registered
// here by whatever starts one (process-tier.ts, chaos-tier.ts, the local stack's test).
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export const OPENAPI_PATH = new URL('../../docs/openapi.json', import.meta.url);

/** Shared by every copy of this module in the test process (the setup file's and the test file's). */
const origins: Set<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for('order-saga.ingress-origins')] ??=
  new Set<string>()) as Set<string>;

/** Answers from `base` (an ingress's API URL) are checked against the contract from now on. */
export function registerIngressOrigin(base: string): void {
  origins.add(new URL(base).origin);
}

/** `base` is no longer an ingress (stopped; its port may serve something else). */
export function unregisterIngressOrigin(base: string): void {
  origins.delete(new URL(base).origin);
}

export function isIngressOrigin(url: string): boolean {
  return origins.has(new URL(url).origin);
}

export function forgetIngressOrigins(): void {
  origins.clear();
}

type Json = Record<string, unknown>;
interface ResponseObject {
  headers?: Record<string, Json>;
  content?: Record<string, { schema: Json }>;
}
interface Operation {
  method: string;
  path: string;
  pattern: RegExp;
  literals: number;
  responses: Record<string, ResponseObject>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'];
const BASE = 'https://order-saga.example/openapi.json';

/** A checker for one document: `check` lists every way an answer departs from it (none: it conforms). */
export class ApiContract {
  private readonly operations: Operation[] = [];
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly document: Json) {
    addFormats.default(this.ajv);
    this.ajv.addSchema({ $id: BASE, components: document.components });
    for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, Json>>)) {
      const segments = path.split('/').filter(Boolean);
      // Express matches paths case-insensitively, a parameter as one segment, and a trailing slash too.
      const source = segments.map((s) => (/^\{.+\}$/.test(s) ? '[^/]+' : escape(s))).join('/');
      for (const method of METHODS.filter((m) => item[m])) {
        this.operations.push({
          method: method.toUpperCase(),
          path,
          pattern: new RegExp(`^/${source}/?$`, 'i'),
          literals: segments.filter((s) => !s.startsWith('{')).length,
          responses: item[method]!.responses as Record<string, ResponseObject>,
        });
      }
    }
    this.operations.sort((a, b) => b.literals - a.literals);
  }

  static fromFile(): ApiContract {
    return new ApiContract(JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as Json);
  }

  /** The documented route an answer to `method url` belongs to, e.g. `GET /orders/{orderId}`; undefined when none. */
  routeOf(method: string, url: string): Operation | undefined {
    const pathname = new URL(url).pathname;
    const asked = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
    return this.operations.find((op) => op.method === asked && op.pattern.test(pathname));
  }

  /**
   * Every departure of an answer from the contract: an undocumented status, a required header
   * missing, a content type or a body the status does not have. A route the API does not have
   * may answer what the document's shared responses say (404 and those before routing).
   */
  check(method: string, url: string, status: number, headers: Headers, body: string | undefined): string[] {
    const operation = this.routeOf(method, url);
    const responses = operation?.responses ?? this.unmatchedResponses();
    const documented = responses[String(status)];
    if (!documented) return [`status ${status} is not documented (documented: ${Object.keys(responses).join(', ')})`];
    const response = this.resolve<ResponseObject>(documented);
    const problems: string[] = [];
    for (const [name, header] of Object.entries(response.headers ?? {})) {
      if (this.resolve<{ required?: boolean }>(header).required === true && !headers.has(name))
        problems.push(`header ${name} is missing`);
    }
    if (body === undefined) return problems; // HEAD
    const contentType = (headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const content = response.content ?? {};
    if (Object.keys(content).length === 0) {
      if (body !== '') problems.push('a body where none is documented');
      return problems;
    }
    const media = content[contentType];
    if (!media) return [...problems, `content type "${contentType}" (documented: ${Object.keys(content).join(', ')})`];
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return [...problems, `the body is not JSON: ${body.slice(0, 200)}`];
    }
    const validate = this.validatorOf(media.schema);
    if (!validate(parsed)) {
      const errors = (validate.errors ?? []).map(
        (e) => `${e.instancePath || '(body)'} ${e.message ?? ''}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
      );
      problems.push(`the body does not match its schema: ${errors.join('; ')}; body: ${body.slice(0, 500)}`);
    }
    return problems;
  }

  /** The name of what answered, for messages: `GET /orders/{orderId}`, or the path asked for when no route has it. */
  describe(method: string, url: string): string {
    const operation = this.routeOf(method, url);
    return operation
      ? `${method.toUpperCase()} ${operation.path}`
      : `${method.toUpperCase()} ${new URL(url).pathname} (no such route)`;
  }

  /** What a request for a route the API does not have may be answered (the document's x-unmatched-route). */
  private unmatchedResponses(): Record<string, ResponseObject> {
    return (this.document['x-unmatched-route'] as { responses: Record<string, ResponseObject> }).responses;
  }

  private resolve<T>(value: unknown): T {
    const pointer = (value as { $ref?: string }).$ref;
    if (!pointer) return value as T;
    let target: unknown = this.document;
    for (const part of pointer.replace(/^#\//, '').split('/'))
      target = (target as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    return this.resolve<T>(target);
  }

  private validatorOf(schema: Json): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.validators.get(key);
    if (!validate) {
      const ref = (schema as { $ref?: string }).$ref;
      validate = ref?.startsWith('#/') ? this.ajv.getSchema(`${BASE}${ref}`)! : this.ajv.compile(schema);
      this.validators.set(key, validate);
    }
    return validate;
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
