// Sends the Temporal SDK's and core's logs (including workflow `log` calls) to the process logger.
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../lib/logger.js';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Installs the Temporal runtime with a logger that writes into `logger` (call once per process, before any worker). */
export function installTemporalLogging(logger: Logger): void {
  const temporalLogger = logger.child({ component: 'temporal' });
  const threshold: LogLevel = logger.isLevelEnabled('debug') ? 'DEBUG' : 'INFO';
  Runtime.install({
    logger: new DefaultLogger(threshold, ({ level, message, meta }) =>
      temporalLogger[LEVELS[level]](meta ?? {}, message),
    ),
    telemetryOptions: { logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } } },
    // The process drains in its own order (starter, then worker): the SDK must not react to signals itself.
    shutdownSignals: [],
  });
}
