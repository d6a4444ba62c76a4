// The saga's three ways of calling its activities, each with the timeouts and retries its
// purpose needs: forward steps, compensations, and audit publishes.
import {
  ActivityCancellationType,
  proxyActivities,
  proxyLocalActivities,
  type ActivityInterfaceFor,
  type LocalActivityInterfaceFor,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { OrderActivities } from '../../activities/index.js';
import { BusinessFailure, FailureType } from '../../domain/failures.js';
import type { SagaSettings } from '../../domain/saga-settings.js';

/** Audit publishes are short; a local activity keeps them off the task queue. Retried until NATS takes them. */
const AUDIT_TIMEOUT = '10 seconds';

export interface SagaActivities {
  /** Forward steps: a cancel lets a running attempt finish (it may have charged) but stops pending retries. */
  steps: ActivityInterfaceFor<OrderActivities>;
  /**
   * Compensations with `attemptsLeft` attempts. An open circuit ends an attempt at once, so the
   * saga can wait it out instead of spending attempts on a gateway it knows is down.
   */
  compensationsWith(attemptsLeft: number): ActivityInterfaceFor<OrderActivities>;
  audit: LocalActivityInterfaceFor<OrderActivities>;
}

export function sagaActivities(settings: SagaSettings): SagaActivities {
  const retry = (maximumAttempts: number): RetryPolicy => ({
    initialInterval: settings.retryInitialIntervalMs,
    backoffCoefficient: 2,
    maximumInterval: settings.retryMaxIntervalMs,
    maximumAttempts,
    nonRetryableErrorTypes: Object.values(BusinessFailure),
  });
  return {
    steps: proxyActivities<OrderActivities>({
      startToCloseTimeout: settings.activityTimeoutMs,
      retry: retry(settings.stepMaxAttempts),
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }),
    compensationsWith: (attemptsLeft) =>
      proxyActivities<OrderActivities>({
        startToCloseTimeout: settings.activityTimeoutMs,
        retry: {
          ...retry(attemptsLeft),
          nonRetryableErrorTypes: [...Object.values(BusinessFailure), FailureType.circuitOpen],
        },
      }),
    audit: proxyLocalActivities<OrderActivities>({
      startToCloseTimeout: AUDIT_TIMEOUT,
      retry: {
        initialInterval: '200 milliseconds',
        backoffCoefficient: 2,
        maximumInterval: settings.retryMaxIntervalMs,
      },
    }),
  };
}
