// The saga's three ways of calling its activities, each with the timeouts and retries its
// purpose needs: forward steps, compensations, and audit publishes.
import {
  ActivityCancellationType,
  proxyActivities,
  patched,
  proxyLocalActivities,
  type ActivityInterfaceFor,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { OrderActivities } from '../../activities/index.js';
import { BusinessFailure, FailureType } from '../../domain/failures.js';
import type { SagaSettings } from '../../domain/saga-settings.js';

/** An audit publish is short; retried until NATS takes it. */
const AUDIT_TIMEOUT = '10 seconds';

/**
 * Audit events are published by regular activities, which run only once the workflow task that
 * scheduled them is committed. They were local activities, which run inside the workflow task:
 * when that task then failed (its worker frozen or killed, the server restarted) and its retry saw
 * a cancel that had arrived meanwhile, the saga took another path while the event already
 * published stayed in AUDIT (a state the saga never entered, holding the id of the event that
 * should have had it). Sagas started before keep the local activity: their histories say so.
 */
const AUDIT_AS_ACTIVITY = 'audit-as-activity';

/**
 * A forward step carries the audit events of the statuses entered before it and stores them
 * before it acts (one activity and one workflow task per step instead of two each); the events
 * left over where no step follows go in one batch (publishAuditEvents). Both run only once the
 * workflow task that entered the statuses is committed, as above. Sagas started before keep one
 * audit activity per event.
 */
const AUDIT_WITH_STEPS = 'audit-with-steps';

/**
 * The audit event of the saga's final status (COMPLETED, or how an undone order ended) is stored
 * by a local activity in the saga's last workflow task, instead of a regular activity and one
 * more workflow task (one workflow task and one activity task less per saga). The phantom-state
 * defect above cannot come back there: by then the outcome is settled (a late cancel is refused),
 * so a retried last workflow task takes the same path and stores the same event id again, which
 * JetStream's duplicate window keeps once. Implies AUDIT_WITH_STEPS (one marker per saga).
 */
const FINAL_AUDIT_LOCAL = 'final-audit-local';

/**
 * The inventory step runs as a local activity, inside the workflow task that enters it (the first
 * one, or the one that takes the approval), instead of a regular activity and one more workflow
 * task: one workflow task and one activity task less per saga. It touches only the service's own
 * database, is idempotent per order, and its undo (release) is too, so two things keep it exact:
 * - it carries no audit events: the statuses entered go with the charge, which is scheduled only
 *   when the task that reserved is committed (no event for a path a retried task did not take);
 * - a workflow task that reserved and then failed is retried, and a cancel that arrived meanwhile
 *   is seen before the saga gets to the reservation again: the retry goes straight to CANCELLED
 *   without having registered the release. So the saga releases whenever it may have reserved in
 *   any attempt (ForwardSteps.toUndo); release is a no-op, reported as such, when nothing was.
 * Implies FINAL_AUDIT_LOCAL (one marker per saga).
 */
const RESERVE_LOCAL = 'reserve-local';

export interface SagaActivities {
  /** Forward steps: a cancel lets a running attempt finish (it may have charged) but stops pending retries. */
  steps: ActivityInterfaceFor<OrderActivities>;
  /** The inventory step as a local activity, same timeouts and retries (RESERVE_LOCAL); undefined for older sagas. */
  localReserve: Pick<ActivityInterfaceFor<OrderActivities>, 'reserveInventory'> | undefined;
  /**
   * Compensations with `attemptsLeft` attempts. An open circuit ends an attempt at once, so the
   * saga can wait it out instead of spending attempts on a gateway it knows is down.
   */
  compensationsWith(attemptsLeft: number): ActivityInterfaceFor<OrderActivities>;
  audit: Pick<OrderActivities, 'publishAudit' | 'publishAuditEvents'>;
  /** Whether audit events ride with the forward steps and go in batches (AUDIT_WITH_STEPS). */
  auditWithSteps: boolean;
  /** The final status's audit events by local activity (FINAL_AUDIT_LOCAL); undefined for older sagas. */
  finalAudit: Pick<OrderActivities, 'publishAuditEvents'> | undefined;
}

export function sagaActivities(settings: SagaSettings): SagaActivities {
  const retry = (maximumAttempts: number): RetryPolicy => ({
    initialInterval: settings.retryInitialIntervalMs,
    backoffCoefficient: 2,
    maximumInterval: settings.retryMaxIntervalMs,
    maximumAttempts,
    nonRetryableErrorTypes: Object.values(BusinessFailure),
  });
  // A saga with a newer patch has no need for the older ones' markers: each implies those before it.
  const reserveLocal = patched(RESERVE_LOCAL);
  const finalAuditLocal = reserveLocal || patched(FINAL_AUDIT_LOCAL);
  const auditWithSteps = finalAuditLocal || patched(AUDIT_WITH_STEPS);
  const auditAsActivity = auditWithSteps || patched(AUDIT_AS_ACTIVITY);
  const auditOptions = {
    startToCloseTimeout: AUDIT_TIMEOUT,
    retry: {
      initialInterval: '200 milliseconds',
      backoffCoefficient: 2,
      maximumInterval: settings.retryMaxIntervalMs,
    },
  };
  const stepOptions = {
    startToCloseTimeout: settings.activityTimeoutMs,
    retry: retry(settings.stepMaxAttempts),
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  };
  return {
    auditWithSteps,
    finalAudit: finalAuditLocal ? proxyLocalActivities<OrderActivities>(auditOptions) : undefined,
    steps: proxyActivities<OrderActivities>(stepOptions),
    localReserve: reserveLocal ? proxyLocalActivities<OrderActivities>(stepOptions) : undefined,
    compensationsWith: (attemptsLeft) =>
      proxyActivities<OrderActivities>({
        startToCloseTimeout: settings.activityTimeoutMs,
        retry: {
          ...retry(attemptsLeft),
          nonRetryableErrorTypes: [...Object.values(BusinessFailure), FailureType.circuitOpen],
        },
      }),
    audit: (auditAsActivity ? proxyActivities : proxyLocalActivities)<OrderActivities>(auditOptions),
  };
}
