// Every answer a test receives from an ingress is checked against the published contract
// (docs/openapi.json, test/support/api-contract.ts): an undocumented status, a missing required
// header, a content type or body the document does not give that status, and fetch throws,
// naming the route, the status and what is wrong, so the test that met it fails. A test that
// catches fetch's errors (a client that counts refusals, say) still fails: the departures are
// also reported after each test. Requests sent without fetch (raw sockets, malformed HTTP) are
// not checked. Runs in every test file's process (vitest.config.ts, setupFiles).
import { afterAll, afterEach } from 'vitest';
import { ApiContract, forgetIngressOrigins, isIngressOrigin } from '../support/api-contract.js';

const contract = ApiContract.fromFile();
const departures: string[] = [];
const unchecked = globalThis.fetch;
// A fresh file: origins registered by an earlier file in this process are no longer ingresses.
forgetIngressOrigins();

function requestOf(input: Parameters<typeof fetch>[0], init?: RequestInit): { method: string; url: string } {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
  return { method: method.toUpperCase(), url };
}

globalThis.fetch = async function fetchCheckedAgainstContract(input, init) {
  const response = await unchecked(input, init);
  const { method, url } = requestOf(input, init);
  if (!isIngressOrigin(url)) return response;
  let body: string | undefined;
  if (method !== 'HEAD') {
    try {
      body = await response.clone().text();
    } catch {
      return response; // the body did not arrive whole: the test meets that itself when it reads it
    }
  }
  const problems = contract.check(method, url, response.status, response.headers, body);
  if (problems.length > 0) {
    const message =
      `${contract.describe(method, url)} answered ${response.status}, which docs/openapi.json does not allow: ` +
      `${problems.join('; ')} (request: ${method} ${url})`;
    departures.push(message);
    throw new Error(message);
  }
  return response;
};

function reportDepartures(): void {
  if (departures.length === 0) return;
  const found = departures.splice(0);
  throw new Error(`answers that depart from the HTTP API contract (docs/openapi.json):\n${found.join('\n')}`);
}

afterEach(reportDepartures);
afterAll(reportDepartures);
