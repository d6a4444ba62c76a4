// Workflow interceptors bundled with the workflow code: the saga's spans (RunWorkflow, StartActivity,
// HandleSignal, HandleUpdate, ValidateUpdate), made inside the sandbox without the OpenTelemetry
// SDK and handed to the worker through the sink that Temporal's OpenTelemetry interceptors use
// (`exporter`, see workers/order-worker.ts), which turns them into spans of the process.
//
// Why not Temporal's own workflow interceptors: the reusable sandbox evaluates a workflow's modules
// once per workflow, and theirs bring the OpenTelemetry SDK (tracer provider, context manager,
// propagators, semantic conventions): about 10 ms of worker CPU per saga, more than the saga's own
// code (`npm run bench:replay`). Here a span is a plain record. What differs: a span's parent is the
// workflow's RunWorkflow span (or, for a signal or update, the sender's context), not whatever span
// is active, as the saga starts activities from its main body only; a workflow that starts child
// workflows or signals others would need those calls added. Spans follow the parent's sampling
// flag, like OpenTelemetry's default sampler (ParentBased(AlwaysOn)).
import {
  ApplicationFailure,
  ApplicationFailureCategory,
  defaultPayloadConverter,
  type Headers,
} from '@temporalio/common';
import { ContinueAsNew, proxySinks, workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import type { OpenTelemetrySinks, SerializableSpan } from '@temporalio/interceptors-opentelemetry';

/** The header Temporal's OpenTelemetry interceptors carry the W3C trace context in (client, activities). */
const TRACE_HEADER = '_tracer-data';
const SAMPLED = 1;
/** OpenTelemetry's SpanKind.INTERNAL and SpanStatusCode values (the API's enums, without the API). */
const INTERNAL = 0;
const Status = { UNSET: 0, OK: 1, ERROR: 2 } as const;
const INSTRUMENTATION = { name: 'order-saga-workflow' };

interface SpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

/** A span in the making: ended once, exported when sampled. */
class WorkflowSpan {
  readonly context: SpanContext;
  private readonly startMs = Date.now();
  private status: SerializableSpan['status'] = { code: Status.UNSET };
  private readonly events: SerializableSpan['events'] = [];

  constructor(
    readonly name: string,
    private readonly parent: SpanContext | undefined,
    private readonly attributes: Record<string, string> = {},
  ) {
    this.context = {
      traceId: parent?.traceId ?? randomHex(32),
      spanId: randomHex(16),
      traceFlags: parent ? parent.traceFlags : SAMPLED,
    };
  }

  succeeded(): void {
    this.status = { code: Status.OK };
  }

  failed(error: unknown, acceptable: (error: unknown) => boolean): void {
    if (acceptable(error)) return this.succeeded();
    const benign = error instanceof ApplicationFailure && error.category === ApplicationFailureCategory.BENIGN;
    const message = error instanceof Error ? error.message : String(error);
    this.status = benign ? { code: Status.UNSET } : { code: Status.ERROR, message };
    this.events.push({
      name: 'exception',
      time: hrTime(Date.now()),
      attributes: {
        'exception.type': error instanceof Error ? error.name : typeof error,
        'exception.message': message,
        ...(error instanceof Error && error.stack && { 'exception.stacktrace': error.stack }),
      },
    });
  }

  end(): void {
    if (!(this.context.traceFlags & SAMPLED)) return;
    const endMs = Date.now();
    const span: SerializableSpan = {
      name: this.name,
      kind: INTERNAL,
      spanContext: this.context,
      ...(this.parent && { parentSpanId: this.parent.spanId }),
      startTime: hrTime(this.startMs),
      endTime: hrTime(endMs),
      duration: hrTime(endMs - this.startMs),
      status: this.status,
      attributes: this.attributes,
      links: [],
      events: this.events,
      ended: true,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
      instrumentationLibrary: INSTRUMENTATION,
    };
    proxySinks<OpenTelemetrySinks>().exporter.export([span]);
  }
}

/** The W3C trace context a caller put in `headers`, if any. */
function extractContext(headers: Headers): SpanContext | undefined {
  const payload = headers[TRACE_HEADER];
  if (!payload) return undefined;
  const { traceparent } = defaultPayloadConverter.fromPayload<{ traceparent?: string }>(payload);
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent ?? '');
  return match ? { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16) } : undefined;
}

/** `headers` with `span` as the trace context, for the activity's own interceptor to continue from. */
function withContext(headers: Headers, { traceId, spanId, traceFlags }: SpanContext): Headers {
  const traceparent = `00-${traceId}-${spanId}-0${traceFlags & SAMPLED}`;
  return { ...headers, [TRACE_HEADER]: defaultPayloadConverter.toPayload({ traceparent }) };
}

/** Hex digits from the workflow's deterministic random source: a replay makes the same ids. */
function randomHex(length: number): string {
  let hex = '';
  while (hex.length < length)
    hex += Math.floor(Math.random() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  return hex.slice(0, length);
}

function hrTime(ms: number): [number, number] {
  return [Math.floor(ms / 1_000), (ms % 1_000) * 1_000_000];
}

const never = (_error: unknown) => false;

export const interceptors: WorkflowInterceptorsFactory = () => {
  /** The workflow's RunWorkflow span: the parent of the spans of what the workflow starts. */
  let root: WorkflowSpan | undefined;

  async function inSpan<T>(span: WorkflowSpan, work: () => Promise<T>, acceptable = never): Promise<T> {
    try {
      const result = await work();
      span.succeeded();
      return result;
    } catch (error) {
      span.failed(error, acceptable);
      throw error;
    } finally {
      span.end();
    }
  }

  /** A StartActivity span (regular or local), its context passed on in the activity's headers. */
  function startActivity<Input extends { activityType: string; headers: Headers }>(
    input: Input,
    next: (input: Input) => Promise<unknown>,
  ): Promise<unknown> {
    const span = new WorkflowSpan(`StartActivity:${input.activityType}`, root?.context);
    return inSpan(span, () => next({ ...input, headers: withContext(input.headers, span.context) }));
  }

  return {
    inbound: [
      {
        execute(input, next) {
          root = new WorkflowSpan(`RunWorkflow:${workflowInfo().workflowType}`, extractContext(input.headers));
          return inSpan(
            root,
            () => next(input),
            (error) => error instanceof ContinueAsNew,
          );
        },
        handleSignal(input, next) {
          const span = new WorkflowSpan(`HandleSignal:${input.signalName}`, extractContext(input.headers));
          return inSpan(span, () => next(input));
        },
        handleUpdate(input, next) {
          const span = new WorkflowSpan(`HandleUpdate:${input.name}`, extractContext(input.headers), {
            temporalUpdateId: input.updateId,
          });
          return inSpan(span, () => next(input));
        },
        validateUpdate(input, next) {
          const span = new WorkflowSpan(`ValidateUpdate:${input.name}`, extractContext(input.headers), {
            temporalUpdateId: input.updateId,
          });
          try {
            next(input);
            span.succeeded();
          } catch (error) {
            span.failed(error, never);
            throw error;
          } finally {
            span.end();
          }
        },
      },
    ],
    outbound: [
      {
        scheduleActivity: startActivity,
        scheduleLocalActivity: startActivity,
        getLogAttributes(input, next) {
          return next(root ? { trace_id: root.context.traceId, span_id: root.context.spanId, ...input } : input);
        },
      },
    ],
  };
};
