// Undoing an order: the registered compensations newest first, then the customer's notice. A
// compensation that meets an open payment circuit waits it out without spending its attempts;
// one that gives up parks the saga in COMPENSATION_FAILED until an operator answers.
import { metricMeter, setCurrentDetails, sleep } from '@temporalio/workflow';
import { COMPENSATION_EVENT_TYPES, type CompensationStep, type NotificationKind } from '../../domain/events.js';
import type { CompensationRecord, OrderStatus } from '../contract.js';
import type { SagaActivities } from './activities.js';
import type { SagaDecisions } from './decisions.js';
import { openCircuit } from './failures.js';
import type { SagaRecord } from './record.js';

/** How a saga that did not complete ends, and the notice its customer gets. */
export interface Outcome {
  status: Extract<OrderStatus, 'CANCELLED' | 'COMPENSATED' | 'REJECTED'>;
  notice: NotificationKind;
}

export class Compensations {
  private readonly circuitWaits = metricMeter.createCounter(
    'saga_compensation_circuit_waits',
    'waits',
    'Compensations that waited for an open payment circuit instead of spending an attempt',
  );

  constructor(
    private readonly record: SagaRecord,
    private readonly decisions: SagaDecisions,
    private readonly activities: SagaActivities,
    private readonly maxAttempts: number,
  ) {}

  /** Undoes `registered` newest first, then sends the outcome's notice, then enters the outcome's status. */
  async run(registered: readonly CompensationStep[], outcome: Outcome): Promise<void> {
    const { record } = this;
    const queue: CompensationStep[] = [...registered].reverse();
    queue.push('notify');
    record.doc.compensations = queue.map((step) => ({ step, status: 'PENDING' }));
    if (registered.length > 0) await record.enter('COMPENSATING', `Undoing: ${queue.join(' → ')}`);
    for (const compensation of record.doc.compensations) await this.complete(compensation, outcome.notice);
    const { resolution } = record.doc;
    await record.enter(
      outcome.status,
      resolution
        ? `Ended ${outcome.status}; "${resolution.step}" resolved manually: ${resolution.note}`
        : `Ended ${outcome.status}`,
      { final: true },
    );
  }

  /**
   * Runs one compensation until it is done or an operator resolved it by hand: waits out an open
   * circuit (attempts that really failed count across the waits), and after `maxAttempts` real
   * failures asks an operator, who may have it tried again (with the whole budget) or resolve it.
   */
  private async complete(compensation: CompensationRecord, notice: NotificationKind): Promise<void> {
    const { record } = this;
    let attemptsSpent = 0;
    for (;;) {
      try {
        const effect = await this.attempt(compensation.step, notice, this.maxAttempts - attemptsSpent);
        compensation.status = 'DONE';
        delete compensation.error;
        await record.publishAudit(COMPENSATION_EVENT_TYPES[compensation.step], {
          step: compensation.step,
          ...effect,
          ...(compensation.step === 'notify' && { notice }),
        });
        return;
      } catch (error) {
        const circuit = openCircuit(error);
        if (circuit) attemptsSpent += circuit.attempt - 1; // the attempts before the one that met the open circuit
        if (circuit && attemptsSpent < this.maxAttempts) {
          compensation.error = `waiting ${circuit.waitMs} ms for the payment circuit to close`;
          setCurrentDetails(`Compensation "${compensation.step}" is waiting for the payment circuit to close`);
          this.circuitWaits.add(1, { step: compensation.step });
          await sleep(circuit.waitMs);
          continue;
        }
        attemptsSpent = 0;
        if (await this.askOperator(compensation, error)) return;
      }
    }
  }

  /** Parks the saga in COMPENSATION_FAILED; true when the operator resolved the step by hand, false for a retry. */
  private async askOperator(compensation: CompensationRecord, error: unknown): Promise<boolean> {
    const { record } = this;
    compensation.status = 'FAILED';
    compensation.error =
      error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    await record.enter(
      'COMPENSATION_FAILED',
      `Compensation "${compensation.step}" failed: ${compensation.error}. Signal retryCompensation {} to try again, or resolveManually {"note": "..."} once handled by hand.`,
    );
    const decision = await this.decisions.operator();
    const resolved = 'note' in decision;
    if (resolved) {
      compensation.status = 'RESOLVED_MANUALLY';
      record.doc.resolution = { note: decision.note, step: compensation.step };
      await record.publishAudit('CompensationResolvedManually', { step: compensation.step, note: decision.note });
    }
    await record.enter(
      'COMPENSATING',
      `Continuing compensations on operator request (${resolved ? 'resolved manually' : 'retry'})`,
    );
    return resolved;
  }

  /** One try of a compensation (with its own retries); resolves with what it changed, for the audit event. */
  private attempt(
    step: CompensationStep,
    notice: NotificationKind,
    attemptsLeft: number,
  ): Promise<Record<string, unknown>> {
    const { order } = this.record;
    const compensations = this.activities.compensationsWith(attemptsLeft);
    const ref = { orderId: order.orderId };
    if (step === 'refund') {
      return compensations.refundPayment.executeWithOptions({ summary: 'Refund the charge' }, [
        { ...ref, amount: order.total, currency: order.currency },
      ]);
    }
    if (step === 'release') {
      return compensations.releaseInventory.executeWithOptions({ summary: 'Release the reserved stock' }, [ref]);
    }
    return compensations.sendNotification.executeWithOptions({ summary: `Send the ${notice} notice` }, [
      {
        ...ref,
        kind: notice,
        customerId: order.customerId,
        email: order.email,
        total: order.total,
        currency: order.currency,
        traceId: order.traceId,
      },
    ]);
  }
}
