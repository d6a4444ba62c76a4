// Prometheus metrics of this service. One registry per process, default Node metrics included.
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** payment_process_duration_seconds: gateway calls by operation (charge, refund) and outcome. */
export function paymentDurationHistogram(registry: Registry): Histogram<'operation' | 'outcome'> {
  return new Histogram({
    name: 'payment_process_duration_seconds',
    help: 'Duration of payment gateway calls, by operation and outcome (success, declined, error, circuit_open)',
    labelNames: ['operation', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
}
