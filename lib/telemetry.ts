// OpenTelemetry tracing for every process: one trace per order, from POST /orders through
// JetStream (W3C `traceparent` header), the starter, the workflow and its activities, to the
// payment gateway call and the audit publishes. Spans are exported over OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT is set; without it they are still created (trace ids in logs,
// events and headers stay meaningful) but not sent anywhere.
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResourcesSync, envDetector, hostDetector, processDetector, Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

/** The tracer of the product's own spans (Temporal's interceptors use their own). */
export const tracer = trace.getTracer('order-saga');

export interface Telemetry {
  /** The process's resource (service.name …), also given to the Temporal workflow span exporter. */
  resource: Resource;
  /** Where finished spans go; the worker hands it to Temporal's workflow span exporter too. */
  spanProcessor: SpanProcessor;
  /** Where spans are exported, or undefined when only created. */
  exportUrl: string | undefined;
  /** Flushes spans still buffered and stops the SDK. */
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK for this process. `serviceName` is overridden by OTEL_SERVICE_NAME;
 * the standard OTEL_BSP_* (batching) and OTEL_TRACES_SAMPLER variables apply.
 */
export function startTelemetry(serviceName: string, otlpEndpoint: string | undefined): Telemetry {
  const resource = new Resource({ 'service.name': serviceName }).merge(
    detectResourcesSync({ detectors: [envDetector, processDetector, hostDetector] }),
  );
  const exportUrl = otlpEndpoint ? new URL('v1/traces', otlpEndpoint.replace(/\/?$/, '/')).href : undefined;
  const spanProcessor: SpanProcessor = exportUrl
    ? new BatchSpanProcessor(new OTLPTraceExporter({ url: exportUrl }))
    : new NoopSpanProcessor();
  const sdk = new NodeSDK({ resource, autoDetectResources: false, spanProcessors: [spanProcessor] });
  sdk.start();
  return { resource, spanProcessor, exportUrl, shutdown: () => sdk.shutdown() };
}

/**
 * Runs `fn` inside a new active span (a child of the active one, or of `parent`), marks the span
 * as failed when `fn` throws, and ends it.
 */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  return tracer.startActiveSpan(name, { kind: options.kind, attributes: options.attributes }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      markFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Records an error on a span and sets its status to ERROR. */
function markFailed(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/** The trace id of the active span, if there is a valid one. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

/** The trace context carried by headers (`traceparent`, `tracestate`), or the root context. */
export function contextFromHeaders(get: (name: string) => string | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, undefined, {
    keys: () => ['traceparent', 'tracestate'],
    get: (_carrier, key) => get(key),
  });
}

/** The active trace context as headers (`traceparent`, and `tracestate` when set); empty when there is none. */
export function activeTraceHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  propagation.inject(context.active(), headers);
  return headers;
}

export { SpanKind };
