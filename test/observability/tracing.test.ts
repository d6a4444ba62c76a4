// One trace per order, end to end, as an operator sees it in a tracing backend: the real
// ingress and worker export over OTLP/HTTP to a collector of this file's own, and the test
// follows the parent links from the HTTP request to the last audit publish.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connectNats } from '../../lib/nats.js';
import { startOtlpCollector, type OtlpCollector, type ReceivedSpan } from '../support/otlp-collector.js';
import { startProcessTier, type ProcessTier } from '../support/process-tier.js';
import type { ProductProcess } from '../support/processes.js';
import { readStream } from '../support/streams.js';

let collector: OtlpCollector;
let stack: ProcessTier;
let worker: ProductProcess;
let ingress: ProductProcess;

beforeAll(async () => {
  collector = await startOtlpCollector();
  stack = await startProcessTier('tracing', {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '100', // export within a tenth of a second instead of five
    LOG_LEVEL: 'debug', // so Temporal's workflow and activity lines are written too
  });
  [worker, ingress] = await Promise.all([stack.start('workers/main.ts'), stack.start('ingress/main.ts')]);
});

afterAll(async () => {
  await stack?.close();
  await collector?.close();
});

/** A caller's trace context, as a client that traces its own requests would send it. */
function callerContext() {
  return { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') };
}

async function postOrder(traceparent: string, unitPrice = 1_250): Promise<string> {
  const response = await fetch(`${stack.api}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent },
    body: JSON.stringify({
      customerId: 'c-tracing',
      items: [{ sku: stack.sku, quantity: 1, unitPrice }],
      currency: 'EUR',
      paymentToken: 'tok_visa',
      email: 'grace@example.com',
    }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { orderId: string }).orderId;
}

describe('tracing', () => {
  it('when an order completes, then one trace holds every step from POST /orders to the last audit publish, each span under its parent', async () => {
    const caller = callerContext();
    const orderId = await postOrder(`00-${caller.traceId}-${caller.spanId}-01`);
    expect(await stack.waitForTerminal(orderId)).toBe('COMPLETED');

    const inTrace = () => collector.spans().filter((s) => s.traceId === caller.traceId);
    // Workflow spans are exported when the workflow completes; the last audit publish comes just before.
    await expect
      .poll(() => inTrace().map((s) => s.name), { timeout: 15_000 })
      .toEqual(expect.arrayContaining(['RunWorkflow:orderSaga', 'publish audit.orders.OrderCompleted']));
    const spans = inTrace();
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const one = (name: string): ReceivedSpan => {
      const found = spans.filter((s) => s.name === name);
      expect(
        found.map((s) => s.name),
        `spans named ${name}`,
      ).toEqual([name]);
      return found[0]!;
    };
    const expectChild = (child: ReceivedSpan, parent: ReceivedSpan) =>
      expect(`${child.name} under ${byId.get(child.parentSpanId)?.name ?? child.parentSpanId}`).toBe(
        `${child.name} under ${parent.name}`,
      );

    // Ingress: the request joins the caller's trace, and the publish is its child.
    const request = one('POST /orders');
    expect(request).toMatchObject({ service: 'order-saga-ingress', parentSpanId: caller.spanId });
    expect(request.attributes).toMatchObject({ 'http.route': '/orders', 'http.response.status_code': 202 });
    const published = one('publish orders.created');
    expectChild(published, request);
    expect(published.attributes).toMatchObject({ 'messaging.system': 'nats', 'order.id': orderId });

    // Worker: the starter continues from the traceparent header, then Temporal's interceptors take over.
    const processed = one('process orders.created');
    expect(processed.service).toBe('order-saga-worker');
    expectChild(processed, published);
    const startWorkflow = one('StartWorkflow:orderSaga');
    expectChild(startWorkflow, processed);
    const runWorkflow = one('RunWorkflow:orderSaga');
    expectChild(runWorkflow, startWorkflow);
    const activity: Record<string, ReceivedSpan> = {};
    for (const name of ['reserveInventory', 'chargePayment', 'sendNotification']) {
      const scheduled = one(`StartActivity:${name}`);
      expectChild(scheduled, runWorkflow);
      activity[name] = one(`RunActivity:${name}`);
      expectChild(activity[name], scheduled);
    }

    // The payment call is a client span, and the gateway received exactly its context.
    const charge = one('POST /v1/charges');
    expectChild(charge, activity.chargePayment!);
    expect(charge.attributes).toMatchObject({ 'http.response.status_code': 201 });
    expect((await stack.gateway.ledger(orderId)).traceparents).toEqual([`00-${caller.traceId}-${charge.spanId}-01`]);

    // Audit: one publish span per stored event, under the activity that stored it (the step that
    // carried it, or the batch at the end), and each stored event carries the trace id and the
    // traceparent of the span that published it.
    const nc = await connectNats([stack.nats.url], 'tracing-test');
    const audit = (await readStream(jetstream(nc), await jetstreamManager(nc), 'AUDIT')).filter(
      (e) => e.aggregate_id === orderId,
    );
    await nc.close();
    const auditPublishes = spans.filter((s) => s.name.startsWith('publish audit.orders.'));
    expect(auditPublishes.map((s) => s.name).sort()).toEqual(audit.map((e) => `publish ${e.subject}`).sort());
    for (const event of audit) {
      const span = auditPublishes.find((s) => s.attributes['messaging.message.id'] === event.id)!;
      expect(event.trace_id).toBe(caller.traceId);
      expect(event.headers.traceparent).toBe(`00-${caller.traceId}-${span.spanId}-01`);
      const storedBy = byId.get(span.parentSpanId)!;
      expect(storedBy.name).toMatch(
        /^RunActivity:(reserveInventory|chargePayment|sendNotification|publishAuditEvents)$/,
      );
      expect(byId.get(storedBy.parentSpanId)?.name).toBe(storedBy.name.replace('Run', 'Start'));
      expect(byId.get(byId.get(storedBy.parentSpanId)!.parentSpanId)).toBe(runWorkflow);
    }
    // The steps carried the statuses entered before them (the reservation and the charge's first
    // attempt, local activities, carry none: their statuses go with the confirmation); the end went
    // in a batch of its own.
    const storer = (type: string) =>
      byId.get(auditPublishes.find((s) => s.name === `publish audit.orders.${type}`)!.parentSpanId)!.name;
    expect(storer('OrderReceived')).toBe('RunActivity:sendNotification');
    expect(storer('OrderReservingInventory')).toBe('RunActivity:sendNotification');
    expect(storer('OrderChargingPayment')).toBe('RunActivity:sendNotification');
    expect(storer('OrderNotifying')).toBe('RunActivity:sendNotification');
    expect(storer('OrderCompleted')).toBe('RunActivity:publishAuditEvents');

    // No broken link anywhere: every span but the request has its parent in the trace.
    expect(spans.filter((s) => s !== request && !byId.has(s.parentSpanId)).map((s) => s.name)).toEqual([]);
    expect(JSON.stringify(collector.spans())).not.toContain('tok_visa'); // traces leave the building: no payment token
  });

  it('when a customer cancels over HTTP, then the cancel is a trace of its own, from its request to the saga taking it', async () => {
    // Above the approval threshold: the saga waits for a decision, so the cancel finds it in progress.
    const orderId = await postOrder(`00-${callerContext().traceId}-${callerContext().spanId}-01`, 200_000);
    await expect.poll(() => stack.statusOf(orderId), { timeout: 15_000 }).toBe('AWAITING_APPROVAL');
    const caller = callerContext();
    const response = await fetch(`${stack.api}/orders/${orderId}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${caller.traceId}-${caller.spanId}-01` },
      body: JSON.stringify({ reason: 'tracing' }),
    });
    expect(response.status).toBe(202);
    expect(await stack.waitForTerminal(orderId)).toBe('CANCELLED');

    const inTrace = () => collector.spans().filter((s) => s.traceId === caller.traceId);
    await expect
      .poll(() => inTrace().map((s) => s.name), { timeout: 15_000 })
      .toEqual(expect.arrayContaining(['HandleUpdate:cancelOrder']));
    const byId = new Map(inTrace().map((s) => [s.spanId, s]));
    const lineage = (span: ReceivedSpan | undefined): string[] =>
      span ? [`${span.service}: ${span.name}`, ...lineage(byId.get(span.parentSpanId))] : [];
    const named = (name: string) => inTrace().find((s) => s.name === name);
    expect(lineage(named('HandleUpdate:cancelOrder'))).toEqual([
      'order-saga-worker: HandleUpdate:cancelOrder',
      'order-saga-ingress: StartWorkflowUpdate:cancelOrder',
      'order-saga-ingress: POST /orders/:orderId/cancel',
    ]);
    expect(lineage(named('ValidateUpdate:cancelOrder'))).toEqual([
      'order-saga-worker: ValidateUpdate:cancelOrder',
      'order-saga-ingress: StartWorkflowUpdate:cancelOrder',
      'order-saga-ingress: POST /orders/:orderId/cancel',
    ]);
    expect(named('POST /orders/:orderId/cancel')?.parentSpanId).toBe(caller.spanId);
  });

  it('when an order is handled, then every log line about it names the order, its workflow and its trace', async () => {
    const caller = callerContext();
    const orderId = await postOrder(`00-${caller.traceId}-${caller.spanId}-01`);
    expect(await stack.waitForTerminal(orderId)).toBe('COMPLETED');
    // Workflow lines reach the log when the worker finishes the workflow task: wait for the last one.
    const linesAbout = () =>
      `${ingress.output()}\n${worker.output()}`
        .split('\n')
        .filter((line) => line.includes(orderId))
        .map((line) => JSON.parse(line) as Record<string, string>);
    await expect.poll(() => linesAbout().some((l) => l.msg === 'Workflow completed'), { timeout: 5_000 }).toBe(true);
    const lines = linesAbout();
    expect(lines.map((l) => `${l.service}: ${l.msg}`)).toEqual(
      expect.arrayContaining([
        'ingress: order accepted',
        'worker: saga started',
        'worker: Workflow started',
        'worker: Activity started',
        'worker: Workflow completed',
      ]),
    );
    for (const line of lines) {
      // The SDK writes "Activity started" before any interceptor has seen the activity's trace
      // context, so that one debug line can name the order and workflow only.
      const ids = line.msg === 'Activity started' ? { orderId } : { orderId, trace_id: caller.traceId };
      expect(line, JSON.stringify(line)).toMatchObject({ ...ids, workflowId: `order-${orderId}` });
    }
    expect(lines.filter((l) => l.msg === 'Activity completed' && l.trace_id === caller.traceId).length).toBeGreaterThan(
      3,
    );
  });
});
