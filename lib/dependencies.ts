// Start-up against dependencies that may not answer yet: a process waits for NATS and Temporal
// (not ready meanwhile, saying what it waits for) instead of exiting, and checks that the
// Temporal namespace keeps histories at least as long as ORDERS keeps events.
import type { Connection } from '@temporalio/client';
import type { Logger } from './logger.js';

/** The namespace keeps closed sagas for less time than ORDERS keeps events: a replay could start an order twice. */
export class RetentionTooShortError extends Error {
  constructor(
    readonly namespace: string,
    readonly retentionMs: number,
    readonly ordersMaxAgeMs: number,
  ) {
    const days = (ms: number) => `${(ms / 86_400_000).toFixed(1)} days`;
    super(
      `namespace "${namespace}" keeps closed workflows ${days(retentionMs)}, but the ORDERS stream keeps events ` +
        `${days(ordersMaxAgeMs)}: an event replayed after its saga's history was deleted could start that order again. ` +
        `Raise the retention (temporal operator namespace update --namespace ${namespace} --retention ${Math.ceil(ordersMaxAgeMs / 3_600_000)}h) and start again.`,
    );
    this.name = 'RetentionTooShortError';
  }
}

/** Calls `connect` until it succeeds, logging while it waits (every 1 s, then up to every 10 s). */
export async function untilAvailable<T>(what: string, connect: () => Promise<T>, logger: Logger): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const connected = await connect();
      if (attempt > 0) logger.info(`${what} answers: carrying on`);
      return connected;
    } catch (error) {
      const delayMs = Math.min(1_000 * 2 ** attempt, 10_000);
      logger.warn(
        { err: error instanceof Error ? error.message : String(error), retryInMs: delayMs },
        `waiting for ${what}; not ready until it answers`,
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** How long the namespace keeps closed workflows, in milliseconds. */
export async function namespaceRetentionMs(connection: Connection, namespace: string): Promise<number> {
  const { namespaceInfo, config } = await connection.workflowService.describeNamespace({ namespace });
  const ttl = config?.workflowExecutionRetentionTtl;
  if (!namespaceInfo || !ttl) throw new Error(`namespace "${namespace}" reported no retention`);
  return Number(ttl.seconds ?? 0) * 1_000 + Math.round((ttl.nanos ?? 0) / 1e6);
}

/** Throws RetentionTooShortError when ORDERS could hand out an event older than the namespace's memory of its saga. */
export function assertRetentionCoversOrders(namespace: string, retentionMs: number, ordersMaxAgeMs: number): void {
  if (retentionMs < ordersMaxAgeMs) throw new RetentionTooShortError(namespace, retentionMs, ordersMaxAgeMs);
}
