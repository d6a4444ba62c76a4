// Structured JSON logs. Secrets are redacted by path so a careless log call cannot leak them.
import { trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Field paths never written to logs, whatever object they appear in. */
export const REDACTED_PATHS = [
  'paymentToken',
  '*.paymentToken',
  '*.*.paymentToken',
  'order.paymentToken',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
];

/** The active span's ids, so every line written while handling an order names its trace. */
function traceFields(): Record<string, string> {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/**
 * Creates the process logger; `service` names the process on every line, and a line written
 * inside a span carries its `trace_id` and `span_id`.
 */
export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service },
    mixin: traceFields,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
