// Prometheus metrics of this service. One registry per process, default Node metrics included.
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

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

/** Saga figures recorded by the activities. */
export interface SagaMetrics {
  stepDuration: Histogram<'step' | 'outcome'>;
  outcomes: Counter<'status'>;
}

export function sagaMetrics(registry: Registry): SagaMetrics {
  return {
    stepDuration: new Histogram({
      name: 'saga_step_duration_seconds',
      help: 'Duration of saga step and compensation attempts, by step and outcome (success, business_failure, error)',
      labelNames: ['step', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    outcomes: new Counter({
      name: 'saga_outcomes_total',
      help: 'Sagas that reached a final status (or COMPENSATION_FAILED), counted once per saga',
      labelNames: ['status'],
      registers: [registry],
    }),
  };
}
