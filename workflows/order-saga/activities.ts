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
 * The way forward runs inside the workflow task that enters it (the first one, or the one that
 * takes the approval): the reservation, and the first attempt at the charge, as local activities;
 * only the confirmation is a regular activity. One workflow task and one activity task per saga
 * instead of three of each. A charge whose first attempt fails in a way worth retrying (gateway
 * unavailable or slow, circuit open, charge in progress) goes on as the regular activity it was,
 * with the step's retries, where a cancel stops them as before; a decline or a rejected request
 * ends it at once. Three things keep this exact:
 * - local steps carry no audit events: the statuses entered go with the next regular activity
 *   (the confirmation, or the charge's retries, or the compensations' batch), which runs only
 *   when the task that entered them is committed: no event for a path a retried task did not take;
 * - a workflow task that reserved or charged and was then lost (its worker died or lost the
 *   server) is retried, and the retry may stop before it gets back to those steps, without having
 *   registered their undos (a cancel that arrived meanwhile is seen first; a step now fails for
 *   good). So a saga that did not complete undoes each local step it may have run in any attempt
 *   (ForwardSteps.toUndo); release and refund are idempotent per order and report a no-op when
 *   there was nothing to undo;
 * - while a local step runs, a cancel or an approval waits for the task to end (the SDK
 *   heartbeats a task whose local activities outlast 80 % of its timeout, committing the status
 *   entered, so operators still find a saga stuck in a step by OrderStatus).
 * Implies FINAL_AUDIT_LOCAL (one marker per saga).
 */
const FORWARD_LOCAL = 'forward-local';

/**
 * Decisions hold whether or not a workflow task that took them was lost. Two races closed:
 * - An approval given by update is not in the history until the workflow task that took it is
 *   committed: when that task is lost, Temporal drops the update, and its retry waits for the
 *   approval again. Had that task also reserved and charged by local activity (FORWARD_LOCAL),
 *   the saga would not know it, and a later cancel or the approval timeout would end the order
 *   with the card charged and the stock held. So after an approval the reservation is a regular
 *   activity, scheduled by (and run only after the commit of) the task that took the approval.
 * - The final status's audit event is stored by a local activity (FINAL_AUDIT_LOCAL) in the task
 *   that learns the confirmation was sent. When that task is lost after storing OrderCompleted
 *   and a cancel arrives before its retry, the retry meets the cancel first (the SDK hands a task
 *   its signals and updates before activity results) while the saga is still NOTIFYING: the
 *   cancel was taken and the order ended CANCELLED, with OrderCompleted in AUDIT under the id of
 *   its next event. So a cancel applies only until the confirmation is being sent: NOTIFYING is
 *   past the point of no return, whichever attempt of a task decides.
 * Implies FORWARD_LOCAL (one marker per saga).
 */
const DECISIONS_HOLD = 'decisions-hold';

export interface SagaActivities {
  /** DECISIONS_HOLD: the reservation after an approval is a regular activity; NOTIFYING cannot be cancelled. */
  decisionsHold: boolean;
  /** Forward steps: a cancel lets a running attempt finish (it may have charged) but stops pending retries. */
  steps: ActivityInterfaceFor<OrderActivities>;
  /**
   * FORWARD_LOCAL: the reservation (same timeouts and retries as `steps`) and the charge's first
   * attempt, as local activities; undefined for older sagas.
   */
  local:
    | {
        reserve: Pick<ActivityInterfaceFor<OrderActivities>, 'reserveInventory'>;
        firstCharge: Pick<ActivityInterfaceFor<OrderActivities>, 'chargePayment'>;
      }
    | undefined;
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
  const decisionsHold = patched(DECISIONS_HOLD);
  const forwardLocal = decisionsHold || patched(FORWARD_LOCAL);
  const finalAuditLocal = forwardLocal || patched(FINAL_AUDIT_LOCAL);
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
    decisionsHold,
    auditWithSteps,
    finalAudit: finalAuditLocal ? proxyLocalActivities<OrderActivities>(auditOptions) : undefined,
    steps: proxyActivities<OrderActivities>(stepOptions),
    local: forwardLocal
      ? {
          reserve: proxyLocalActivities<OrderActivities>(stepOptions),
          firstCharge: proxyLocalActivities<OrderActivities>({ ...stepOptions, retry: { maximumAttempts: 1 } }),
        }
      : undefined,
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
