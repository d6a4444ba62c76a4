// Installs the Temporal runtime of the worker process: the SDK's and core's logs (including
// workflow `log` calls) go to the process logger, and the SDK's metrics are exported on a
// loopback port that the process's own /metrics endpoint appends to its output.
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../lib/logger.js';
import { ORDER_WORKFLOW_ID_PREFIX } from '../workflows/contract.js';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Installs the runtime (once per process, before any worker). `metricsPort` is a free loopback
 * port for the SDK's Prometheus exporter; returns a function reading its metrics text.
 */
export function installTemporalRuntime(logger: Logger, metricsPort: number): () => Promise<string> {
  const temporalLogger = logger.child({ component: 'temporal' });
  const threshold: LogLevel = logger.isLevelEnabled('debug') ? 'DEBUG' : 'INFO';
  Runtime.install({
    logger: new DefaultLogger(threshold, ({ level, message, meta }) =>
      temporalLogger[LEVELS[level]](withOrderId(meta), message),
    ),
    telemetryOptions: {
      logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } },
      metrics: {
        metricPrefix: 'temporal_',
        prometheus: {
          bindAddress: `127.0.0.1:${metricsPort}`,
          countersTotalSuffix: true,
          useSecondsForDurations: true,
        },
      },
    },
    // The process drains in its own order (starter, then worker): the SDK must not react to signals itself.
    shutdownSignals: [],
  });
  return async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => undefined);
    return response?.ok ? response.text() : '';
  };
}

/** Workflow and activity lines carry the workflow id; a saga's (`order-<id>`) also gets `orderId`. */
function withOrderId(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  const workflowId = meta?.workflowId;
  if (typeof workflowId !== 'string' || !workflowId.startsWith(ORDER_WORKFLOW_ID_PREFIX)) return meta ?? {};
  return { orderId: workflowId.slice(ORDER_WORKFLOW_ID_PREFIX.length), ...meta };
}
