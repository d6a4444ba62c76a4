// The Temporal client of every process: one connection, and the OpenTelemetry interceptor that
// carries the active trace into workflow starts and signals (so a saga continues its order's trace).
import { Client, Connection } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { Config } from './config.js';

export async function connectTemporalClient(
  temporal: Config['temporal'],
): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({
    connection,
    namespace: temporal.namespace,
    interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
  });
  return { client, connection };
}
