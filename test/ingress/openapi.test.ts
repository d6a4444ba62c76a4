// The HTTP API's published contract (docs/openapi.json): current with the code that makes it (npm
// run openapi), a valid OpenAPI 3.1 document by an independent validator, served by the ingress at
// GET /openapi.json without credentials, naming only routes the ingress has; and the checker that
// every test's answers go through (test/harness/check-api-responses.ts) refuses what it should.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { openApiDocument, renderOpenApi } from '../../ingress/openapi.js';
import { freePort } from '../../scripts/local-servers.mjs';
import { ApiContract, OPENAPI_PATH, registerIngressOrigin, unregisterIngressOrigin } from '../support/api-contract.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';

const OPERATOR_KEY = `op_${randomUUID()}`;
const asOperator = { 'x-api-key': OPERATOR_KEY };
const ORDER_ID = '0b9e7f2a-5c1d-4e8f-9a3b-2c4d6e8f0a1b';

describe('the OpenAPI document', () => {
  it('when it is generated again, then docs/openapi.json is what it gives (run npm run openapi)', () => {
    expect(readFileSync(OPENAPI_PATH, 'utf8'), 'docs/openapi.json is out of date: run npm run openapi').toBe(
      renderOpenApi(),
    );
  });

  it('when an OpenAPI validator reads it, then it is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(openApiDocument());
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('when a document breaks the OpenAPI schema, then the validator says so (it is not a rubber stamp)', async () => {
    const broken = openApiDocument() as { paths: Record<string, Record<string, { responses: unknown }>> };
    broken.paths['/health']!.get!.responses = { 200: { content: {} } }; // a response without its description
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });
});

describe('the contract checker', () => {
  const contract = new ApiContract(openApiDocument());
  const api = 'http://127.0.0.1:1';
  const json = (type = 'application/json', extra: Record<string, string> = {}) =>
    new Headers({ 'content-type': `${type}; charset=utf-8`, ...extra });
  const accepted = {
    orderId: ORDER_ID,
    workflowId: `order-${ORDER_ID}`,
    status: 'RECEIVED',
    links: {
      self: `/orders/${ORDER_ID}`,
      cancel: `/orders/${ORDER_ID}/cancel`,
      approve: `/orders/${ORDER_ID}/approve`,
    },
  };
  const problem = (status: number) => ({ type: 'about:blank', title: 'x', status, detail: 'y', instance: '/x' });

  it('when an answer is what the document says, then it passes', () => {
    const headers = json('application/json', { location: `/orders/${ORDER_ID}` });
    expect(contract.check('POST', `${api}/orders`, 202, headers, JSON.stringify(accepted))).toEqual([]);
    expect(contract.routeOf('GET', `${api}/orders/${ORDER_ID}`)?.path).toBe('/orders/{orderId}');
    expect(contract.routeOf('POST', `${api}/inventory/reservations/o-1/release`)?.path).toBe(
      '/inventory/reservations/{orderId}/release',
    );
  });

  it('when an answer has an undocumented status, field, type or a missing header, then each is named', () => {
    const withLocation = json('application/json', { location: '/orders/x' });
    expect(contract.check('POST', `${api}/orders`, 200, withLocation, JSON.stringify(accepted))[0]).toMatch(
      /status 200 is not documented/,
    );
    expect(contract.check('POST', `${api}/orders`, 202, json(), JSON.stringify(accepted))).toEqual([
      'header Location is missing',
    ]);
    expect(
      contract.check('POST', `${api}/orders`, 202, withLocation, JSON.stringify({ ...accepted, total: 3 }))[0],
    ).toMatch(/does not match its schema: \(body\) must NOT have additional properties.*total/);
    expect(contract.check('GET', `${api}/orders/${ORDER_ID}`, 404, json(), JSON.stringify(problem(404)))[0]).toMatch(
      /content type "application\/json"/,
    );
    expect(
      contract.check('GET', `${api}/orders`, 503, json('application/problem+json'), JSON.stringify(problem(503))),
    ).toEqual(['header Retry-After is missing']);
    expect(
      contract.check('GET', `${api}/orders`, 401, json('application/problem+json'), JSON.stringify(problem(401))),
    ).toEqual(['header WWW-Authenticate is missing']);
  });

  it('when a path the API does not have is answered, then only the documented 404 problem (or an answer before routing) passes', () => {
    const problemJson = json('application/problem+json');
    expect(contract.check('DELETE', `${api}/orders`, 404, problemJson, JSON.stringify(problem(404)))).toEqual([]);
    expect(contract.check('GET', `${api}/nowhere`, 200, json(), '{}')[0]).toMatch(/status 200 is not documented/);
    expect(contract.check('GET', `${api}/nowhere`, 404, problemJson, '{"detail":"x"}')[0]).toMatch(/does not match/);
  });
});

describe('the ingress serves its contract', () => {
  let stack: ProcessTier;

  beforeAll(async () => {
    stack = await startProcessTier('openapi', {
      AUTH_DISABLED: '',
      AUTH_API_KEYS: `ops:operator:${createHash('sha256').update(OPERATOR_KEY).digest('hex')}`,
    });
    await stack.start('ingress/main.ts');
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('when GET /openapi.json is asked without credentials, then it is docs/openapi.json', async () => {
    const response = await fetch(`${stack.api}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.text()).toBe(readFileSync(OPENAPI_PATH, 'utf8'));
  });

  it('when every documented route is asked with a malformed request, then the ingress has each (none is "no such route")', async () => {
    const document = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
    const filled = (path: string) => path.replace('{orderId}', 'not an id!').replace('{sku}', 'not a sku!');
    const asked: string[] = [];
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const method of Object.keys(operations)) {
        const response = await fetch(`${stack.api}${filled(path)}${path === '/orders' ? '?nofilter=1' : ''}`, {
          method: method.toUpperCase(),
          headers: { ...asOperator, 'content-type': 'application/json' },
          ...(method !== 'get' && { body: '{' }),
        });
        const body = await response.text();
        expect(body, `${method} ${path}`).not.toContain('no such route');
        asked.push(`${method.toUpperCase()} ${path} ${response.status}`);
      }
    }
    expect(asked).toHaveLength(12);
  });

  it('when a route the API does not have is asked, then the answer is the documented 404 problem (checked by the setup file)', async () => {
    expect(globalThis.fetch.name).toBe('fetchCheckedAgainstContract');
    const response = await fetch(`${stack.api}/nowhere`, { headers: asOperator });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { detail: string }).detail).toContain('GET /openapi.json');
    const unauthenticated = await fetch(`${stack.api}/orders`);
    expect(unauthenticated.status).toBe(401);
  });

  it('when a path is asked with a method it does not have, OPTIONS included, then the answer is 405 with Allow, before credentials', async () => {
    const cases: [method: string, path: string, allow: string][] = [
      ['OPTIONS', '/orders', 'POST, GET, HEAD'],
      ['DELETE', '/orders/6f1c1f1e-0000-4000-8000-000000000000', 'GET, HEAD'],
      ['GET', '/orders/6f1c1f1e-0000-4000-8000-000000000000/cancel', 'POST'],
      ['PATCH', '/inventory/SKU-1', 'GET, PUT, HEAD'],
      ['POST', '/health', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const response = await fetch(`${stack.api}${path}`, { method });
      expect({ method, path, status: response.status }).toEqual({ method, path, status: 405 });
      expect(response.headers.get('allow')).toBe(allow);
      expect(((await response.json()) as { detail: string }).detail).toContain(`takes ${allow}, not ${method}`);
    }
  });

  it('when the ingress is starting and waits for NATS, then it serves its contract already and answers the API 503', async () => {
    const [port, opsPort, nowhere] = [await freePort(), await freePort(), await freePort()];
    const starting = stack.launch('ingress/main.ts', {
      PORT: String(port),
      METRICS_PORT: String(opsPort),
      NATS_URL: `nats://127.0.0.1:${nowhere}`,
    });
    const base = `http://127.0.0.1:${port}`;
    registerIngressOrigin(base);
    try {
      await expect
        .poll(async () => (await fetch(`${base}/health`).catch(() => undefined))?.status, { timeout: 20_000 })
        .toBe(200);
      const contract = await fetch(`${base}/openapi.json`);
      expect(contract.status).toBe(200);
      expect(await contract.text()).toBe(readFileSync(OPENAPI_PATH, 'utf8'));
      const api = await fetch(`${base}/orders`, { headers: asOperator });
      expect(api.status).toBe(503);
      expect(api.headers.get('retry-after')).toBe('5');
      expect(((await api.json()) as { instance: string }).instance).toBe('/orders');
    } finally {
      unregisterIngressOrigin(base);
      await starting.stop();
    }
  });
});
