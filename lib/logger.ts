// Structured JSON logs. Secrets are redacted by path so a careless log call cannot leak them.
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

/** Creates the process logger; `service` names the process on every line. */
export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
